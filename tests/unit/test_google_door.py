"""How Google's Veo requests map onto catalogue models (no server needed)."""

from __future__ import annotations

import pytest

from reelforge.catalog import MODELS
from reelforge.doors.google.errors import error_body, is_google_path
from reelforge.doors.google.protocol import PredictRequest
from reelforge.doors.google.translate import (
    GOOGLE_MODELS,
    catalogue_request,
    google_input_message,
    google_message,
    google_model_id,
)
from reelforge.doors.google.videos import job_ids, validated
from reelforge.engines.google_models import DEFAULT_MODELS
from reelforge.errors import InvalidImage, InvalidRequest, NotFound

pytestmark = pytest.mark.unit

PNG = {"bytesBase64Encoded": "iVBORw0KGgo=", "mimeType": "image/png"}
MP4 = {"bytesBase64Encoded": "AAAAIGZ0eXA=", "mimeType": "video/mp4"}


def request(instance: dict | None = None, **parameters: object) -> PredictRequest:
    return validated(
        PredictRequest,
        {"instances": [{"prompt": "a kite", **(instance or {})}], "parameters": parameters},
    )


def model_for(google_model: str, instance: dict | None = None) -> str:
    return catalogue_request(google_model, request(instance))[0].name


def test_the_mapping_is_the_reverse_of_the_engines() -> None:
    assert {name for names in GOOGLE_MODELS.values() for name in names} == set(DEFAULT_MODELS)
    for google_model, names in GOOGLE_MODELS.items():
        assert all(DEFAULT_MODELS[name] == google_model for name in names)


@pytest.mark.parametrize(
    ("google_model", "instance", "expected"),
    [
        ("veo-2.0-generate-001", None, "veo2"),
        ("veo-2.0-generate-001", {"image": PNG, "lastFrame": PNG}, "veo2/image-to-video"),
        ("veo-3.0-generate-001", None, "google/veo3"),
        ("veo-3.0-generate-001", {"image": PNG}, "google/veo-3.0-i2v"),
        ("veo-3.0-fast-generate-001", {"image": PNG}, "google/veo-3.0-i2v-fast"),
        ("veo-3.1-generate-001", None, "google/veo-3.1-t2v"),
        ("veo-3.1-generate-001", {"image": PNG}, "google/veo-3.1-i2v"),
        (
            "veo-3.1-generate-001",
            {"image": PNG, "lastFrame": PNG},
            "google/veo-3.1-first-last-image-to-video",
        ),
        (
            "veo-3.1-generate-001",
            {"referenceImages": [{"image": PNG, "referenceType": "ASSET"}]},
            "google/veo-3.1-reference-to-video",
        ),
        ("veo-3.1-generate-001", {"video": MP4}, "google/veo3-1-extend-video"),
        ("veo-3.1-fast-generate-001", {"video": MP4}, "google/veo3-1-fast-extend-video"),
        ("veo-3.1-lite-generate-preview", {"image": PNG}, "google/veo-3-1-lite-generate-preview"),
        ("veo-3.1-lite-generate-001", None, "veo-3.1-lite-generate-001"),
    ],
)
def test_inputs_pick_the_catalogue_model(google_model, instance, expected) -> None:
    assert model_for(google_model, instance) == expected


def test_inputs_land_in_the_models_fields() -> None:
    _, body = catalogue_request(
        "veo-2.0-generate-001", request({"image": PNG, "lastFrame": PNG}, durationSeconds=6)
    )
    assert body["tail_image_url"] == "data:image/png;base64,iVBORw0KGgo="
    assert body["duration"] == 6 and "last_image_url" not in body
    _, body = catalogue_request(
        "veo-3.0-generate-001",
        request(resolution="1080p", seed=9, generateAudio=False, personGeneration="allow_adult"),
    )
    assert (body["resolution"], body["seed"], body["generate_audio"]) == ("1080P", 9, False)
    assert "person_generation" not in body  # Google's default, not published by Veo 3
    _, lite = catalogue_request("veo-3.1-lite-generate-preview", request())
    assert lite["resolution"] == "720p"  # Google's default, not the catalogue's 1080p


def test_inline_data_is_the_same_as_bytes() -> None:
    inline = {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}}
    _, body = catalogue_request("veo-3.0-generate-001", request({"image": inline}))
    assert body["image_url"] == "data:image/jpeg;base64,/9j/4AAQ"
    with pytest.raises(InvalidRequest, match="mimeType"):
        request({"image": {"bytesBase64Encoded": "AA==", "mimeType": "image/png;x=1,"}})


def test_preview_ids_and_unknown_models() -> None:
    assert google_model_id("veo-3.1-generate-preview") == "veo-3.1-generate-001"
    assert google_model_id("veo-3.1-fast-generate-preview") == "veo-3.1-fast-generate-001"
    assert google_model_id("veo-3.1-lite-generate-preview") == "veo-3.1-lite-generate-preview"
    with pytest.raises(NotFound, match="is not served here"):
        google_model_id("imagen-4.0-generate-001")


@pytest.mark.parametrize(
    ("google_model", "instance", "parameters", "words"),
    [
        ("veo-3.0-generate-001", {"video": MP4}, {}, "does not take instances[0].video"),
        (
            "veo-3.1-fast-generate-001",
            {"referenceImages": [{"image": PNG}]},
            {},
            "does not take instances[0].referenceImages",
        ),
        (
            "veo-3.1-generate-001",
            {"referenceImages": [{"image": PNG, "referenceType": "STYLE"}]},
            {},
            "only ASSET",
        ),
        ("veo-3.0-generate-001", {"image": {"gcsUri": "gs://b/i.png"}}, {}, "Cloud Storage"),
        ("veo-3.0-generate-001", None, {"storageUri": "gs://bucket/"}, "storageUri"),
        ("veo-3.1-generate-001", {"image": PNG}, {"seed": 1}, "parameters.seed is not offered"),
        ("veo-3.0-generate-001", {"prompt": ""}, {}, "instances[0].prompt is required"),
    ],
)
def test_what_cannot_be_made_is_refused(google_model, instance, parameters, words) -> None:
    with pytest.raises(InvalidRequest) as refused:
        catalogue_request(google_model, request(instance, **parameters))
    assert words in refused.value.message


def test_catalogue_errors_name_googles_parameters() -> None:
    renamed = google_message(
        InvalidRequest("Body validation error: duration: Invalid enum value", "duration")
    )
    assert renamed.message == "parameters.durationSeconds: Invalid enum value"
    assert renamed.field == "parameters.durationSeconds"
    image = google_input_message(InvalidImage("image_urls[1] is not a supported image"))
    assert image.message == "instances[0].referenceImages[1] is not a supported image"
    last = google_input_message(InvalidImage("tail_image_url: too small"))
    assert last.message == "instances[0].lastFrame: too small"


def test_the_protocol_refuses_unknown_names_and_more_than_one_instance() -> None:
    with pytest.raises(InvalidRequest, match=r'Unknown name "instances\[0\]\.colour"'):
        validated(PredictRequest, {"instances": [{"prompt": "x", "colour": "red"}]})
    with pytest.raises(InvalidRequest, match="instances"):
        validated(PredictRequest, {"instances": [{"prompt": "x"}, {"prompt": "y"}]})
    with pytest.raises(InvalidRequest, match="sampleCount"):
        validated(
            PredictRequest, {"instances": [{"prompt": "x"}], "parameters": {"sampleCount": 5}}
        )


def test_paths_ids_and_error_shape() -> None:
    assert is_google_path("/v1beta1/publishers/google/models/veo-3.0-generate-001:x")
    assert is_google_path("/v1/projects/p/locations/l/publishers/google/models/m:x")
    assert is_google_path("/v1beta/files/abc:download")
    assert not is_google_path("/v1/videos") and not is_google_path("/v2/video/generations")
    assert error_body(429, "slow down") == {
        "error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}
    }
    assert len(job_ids("0" * 32, "Operation")) == len(MODELS)
    for bad in ("xyz", "0" * 31, "0" * 8 + "-" + "0" * 23):
        with pytest.raises(NotFound):
            job_ids(bad, "Operation")
