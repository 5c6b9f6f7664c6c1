"""Per-model mappings of the upstream engines: what the ``aimlapi`` engine forwards (every
model's body validated against its published schema) and how the ``google`` engine maps
each model onto Google's Veo, refusing what Google does not offer."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
from PIL import Image

from published_specs import PublishedModel, published_models
from reelforge.catalog import MODELS, validate_request
from reelforge.engines.aimlapi_models import request_body
from reelforge.engines.base import GenerationRequest, Inputs, VideoInput
from reelforge.engines.google_models import DEFAULT_MODELS, inputs_for, request_parts
from reelforge.errors import EngineError
from support import picture
from video_samples import write_video

pytestmark = pytest.mark.unit

PUBLISHED = published_models()
IDS = [model.name for model in PUBLISHED]
URL = "https://example.com/a.jpg"
FULL = {
    "image_url": URL,
    "last_image_url": URL,
    "image_urls": [URL, URL],
    "video_url": "https://example.com/a.mp4",
    "provider": "fal",
    "auto_fix": False,
    "person_generation": "dont_allow",
}


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> VideoInput:
    path = write_video(tmp_path_factory.mktemp("video") / "in.mp4", seconds=1)
    return VideoInput(path=path, width=320, height=180, fps=24, frame_count=24, duration_seconds=1)


def job_request(model: PublishedModel) -> tuple[GenerationRequest, dict]:
    """A request as the worker builds it from a body with every published field set."""
    body = {"model": model.name, "prompt": "a fox"}
    body.update({k: v for k, v in FULL.items() if k in model.properties})
    _, params = validate_request(body)
    request = GenerationRequest(
        model=model.name,
        prompt="an enhanced fox",
        original_prompt="a fox",
        duration_seconds=params.duration,
        width=1280,
        height=720,
        seed=42,
        enhance_prompt=bool(params.value("enhance_prompt", False)),
        generate_audio=params.wants_audio,
        aspect_ratio="16:9",
        resolution=params.resolution_name,
        params=params.model_dump(mode="json"),
    )
    return request, body


def inputs_for_model(model: str, video: VideoInput) -> Inputs:
    roles = set(MODELS[model].params_type.input_roles.values())
    return Inputs(
        image=picture((640, 360), seed=1) if "image" in roles else None,
        last_frame=picture((640, 360), seed=2) if "last_frame" in roles else None,
        references=(picture((400, 400), seed=3),) * 2 if "references" in roles else (),
        video=video if "video" in roles else None,
    )


@pytest.mark.parametrize("model", PUBLISHED, ids=IDS)
def test_aimlapi_forwards_each_models_published_fields(model: PublishedModel, video) -> None:
    request, body = job_request(model)
    sent = request_body(request, inputs_for_model(model.name, video))
    jsonschema.validate(sent, model.schema)
    assert set(sent) <= set(model.properties)
    assert sent["prompt"] == "a fox"  # the user's prompt: the upstream enhances itself
    for name in ("provider", "auto_fix", "person_generation"):
        if name in model.properties:
            assert sent[name] == body[name]
    if "resolution" in model.properties:
        assert sent["resolution"] == model.properties["resolution"]["default"]
    if "seed" in model.properties:
        assert sent["seed"] == 42
    for name, role in MODELS[model.name].params_type.input_roles.items():
        values = sent[name] if isinstance(sent[name], list) else [sent[name]]
        prefix = "data:video/mp4;base64," if role == "video" else "data:image/jpeg;base64,"
        assert all(value.startswith(prefix) for value in values), name


def test_every_model_has_a_google_model() -> None:
    assert set(DEFAULT_MODELS) == set(MODELS)


@pytest.mark.parametrize("model", PUBLISHED, ids=IDS)
def test_google_maps_each_model(model: PublishedModel, video) -> None:
    request, _ = job_request(model)
    google_model = DEFAULT_MODELS[model.name]
    inputs = inputs_for_model(model.name, video)
    assert inputs.kinds <= inputs_for(google_model), "Google offers what the model needs"
    source, config = request_parts(request, inputs, google_model)
    assert source.prompt == "a fox"
    assert config.duration_seconds == request.duration_seconds and config.number_of_videos == 1
    assert (source.image is not None) == (inputs.image is not None)
    assert (config.last_frame is not None) == (inputs.last_frame is not None)
    assert len(config.reference_images or []) == len(inputs.references)
    assert (source.video is not None) == (inputs.video is not None)
    if inputs.video is not None:
        assert source.video.video_bytes == video.path.read_bytes()
        assert config.aspect_ratio is None  # `auto`: Google follows the input video
    veo2 = google_model.startswith("veo-2")
    assert (config.generate_audio is None, config.resolution is None) == (veo2, veo2)
    if not veo2:
        assert config.resolution == request.resolution.lower()
    assert (config.enhance_prompt is not None) == ("enhance_prompt" in model.properties)
    person = config.person_generation
    assert person == ("dont_allow" if "person_generation" in model.properties else None)


def test_google_offers_references_and_extension_only_on_veo_31() -> None:
    assert "reference_images" in inputs_for("veo-3.1-generate-001")
    assert "reference_images" not in inputs_for("veo-3.1-fast-generate-001")
    assert "video" in inputs_for("veo-3.1-fast-generate-001")
    for older in ("veo-2.0-generate-001", "veo-3.0-generate-001", "veo-3.1-lite-generate-001"):
        assert not {"reference_images", "video"} & inputs_for(older)
    assert "last_frame" not in inputs_for("veo-3.0-fast-generate-001")
    assert inputs_for("veo-9-imaginary") >= {"reference_images", "video"}


def test_google_refuses_a_last_frame_alone_and_long_videos(tmp_path: Path) -> None:
    model = next(m for m in PUBLISHED if m.name == "veo-3.1-lite-generate-001")
    request, _ = job_request(model)
    last = Inputs(last_frame=Image.new("RGB", (400, 300)))
    with pytest.raises(EngineError, match="needs a first frame"):
        request_parts(request, last, "veo-3.1-lite-generate-001")
    extend = next(m for m in PUBLISHED if m.name == "google/veo3-1-extend-video")
    request, _ = job_request(extend)
    long = VideoInput(tmp_path / "x.mp4", 1280, 720, 24.0, 24 * 40, 40.0)
    with pytest.raises(EngineError, match="at most 30 seconds"):
        request_parts(request, Inputs(video=long), "veo-3.1-generate-001")
