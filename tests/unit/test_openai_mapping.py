"""How OpenAI's video requests map onto reelforge models (no server needed)."""

from __future__ import annotations

import uuid

import pytest

from reelforge.catalog import MODELS
from reelforge.errors import ConfigurationError, InvalidRequest, NotFound
from reelforge.openai_videos import (
    IMAGE_SIBLINGS,
    OpenAIVideos,
    check_model_map,
    durations,
    job_ids,
    sizes,
    video_id,
)
from reelforge.settings import Settings


def test_sizes_are_what_each_model_makes() -> None:
    assert sizes(MODELS["veo2"]) == {
        "1280x720": {"aspect_ratio": "16:9"},
        "720x1280": {"aspect_ratio": "9:16"},
    }
    veo31 = sizes(MODELS["google/veo-3.1-t2v"])
    assert veo31["1920x1080"] == {"aspect_ratio": "16:9", "resolution": "1080p"}
    assert veo31["720x1280"] == {"aspect_ratio": "9:16", "resolution": "720p"}
    assert "1792x1024" not in veo31
    # No aspect_ratio field: only resolutions, 16:9.
    assert set(sizes(MODELS["google/veo-3.1-reference-to-video"])) == {"1280x720", "1920x1080"}


def test_durations_follow_the_published_enums() -> None:
    assert durations(MODELS["veo2"]) == [5, 6, 7, 8]
    assert durations(MODELS["google/veo3"]) == [4, 6, 8]


def test_video_ids_round_trip_to_the_job() -> None:
    job = f"{uuid.uuid4()}:google/veo-3.0-i2v"
    vid = video_id(job)
    assert vid.startswith("video_") and len(vid) == 6 + 32
    assert job in job_ids(vid) and len(job_ids(vid)) == len(MODELS)
    for bad in ("video_xyz", "abc", "video_" + "0" * 31, uuid.uuid4().hex):
        with pytest.raises(NotFound):
            job_ids(bad)


def test_model_names_and_image_siblings() -> None:
    videos = OpenAIVideos(Settings(), generations=None)  # type: ignore[arg-type]
    assert videos.model_for(None, False).name == "google/veo-3.1-t2v-fast"
    assert videos.model_for("sora-2", True).name == "google/veo-3.1-i2v-fast"
    assert videos.model_for("sora-2-pro", True).name == "google/veo-3.1-i2v"
    assert videos.model_for("google/veo3", False).name == "google/veo3"
    with pytest.raises(InvalidRequest) as unknown:
        videos.model_for("sora-9", False)
    assert unknown.value.field == "model"
    with pytest.raises(InvalidRequest) as no_image:
        videos.model_for("google/veo3-1-extend-video", True)
    assert "input_reference" in no_image.value.message
    for text, image in IMAGE_SIBLINGS.items():
        assert MODELS[image].field("image_url") and not MODELS[text].field("image_url")


def test_the_default_models_make_soras_seconds() -> None:
    """Sora code sends "4" (its default) or "8"; "12" is longer than any Veo video."""
    videos = OpenAIVideos(Settings(), generations=None)  # type: ignore[arg-type]
    for name in ("sora-2", "sora-2-pro"):
        for with_reference in (False, True):
            made = durations(videos.model_for(name, with_reference))
            assert {4, 8} <= set(made) and 12 not in made


def test_a_mapping_to_an_unknown_model_stops_start_up() -> None:
    with pytest.raises(ConfigurationError, match="sora-2 to veo9"):
        check_model_map({"sora-2": "veo9"})
    settings = Settings(openai_models="sora-2=google/veo3,my-model=veo2")
    assert settings.openai_models == {"sora-2": "google/veo3", "my-model": "veo2"}
