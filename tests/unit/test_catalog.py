"""Validation of every field of every published model, valid and invalid values."""

from __future__ import annotations

import pytest

from reelforge.catalog import MODELS, validate_request
from reelforge.catalog.fields import MAX_PROMPT_CHARS, MAX_SEED
from reelforge.errors import InvalidRequest

pytestmark = pytest.mark.unit

IMAGE = "https://example.com/cat.jpg"
BASE = {
    "veo2": {"model": "veo2", "prompt": "a red fox"},
    "veo2/image-to-video": {"model": "veo2/image-to-video", "prompt": "a fox", "image_url": IMAGE},
    "google/veo-3.0-i2v": {"model": "google/veo-3.0-i2v", "prompt": "a fox", "image_url": IMAGE},
}
ALL = list(BASE)
I2V = ["veo2/image-to-video", "google/veo-3.0-i2v"]


def ok(body: dict) -> object:
    return validate_request(body)[1]


def bad(body: object) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        validate_request(body)
    assert info.value.message.startswith("Body validation error")
    return info.value


def with_(model: str, **fields: object) -> dict:
    return {**BASE[model], **fields}


# -- defaults -------------------------------------------------------------------------


def test_veo2_defaults() -> None:
    params = ok(BASE["veo2"])
    assert (params.duration, params.aspect_ratio, params.enhance_prompt) == (5, "16:9", True)
    assert params.seed is None and params.negative_prompt is None
    assert MODELS["veo2"].frame_size(params) == (1280, 720)


def test_veo2_image_defaults() -> None:
    params = ok(BASE["veo2/image-to-video"])
    assert (params.duration, params.aspect_ratio, params.tail_image_url) == (5, "16:9", None)


def test_veo3_defaults() -> None:
    params = ok(BASE["google/veo-3.0-i2v"])
    assert (params.duration, params.resolution, params.generate_audio) == (8, "720P", True)
    assert params.enhance_prompt is True
    assert MODELS["google/veo-3.0-i2v"].frame_size(params) == (1280, 720)


# -- model and body -----------------------------------------------------------------


@pytest.mark.parametrize("body", [[], "text", 5, None, True])
def test_body_must_be_an_object(body: object) -> None:
    assert "Expected object" in bad(body).message


def test_model_required() -> None:
    error = bad({"prompt": "x"})
    assert error.field == "model" and "Required" in error.message and "'veo2'" in error.message


@pytest.mark.parametrize("model", ["veo3", "VEO2", "", 2, None, "veo2 "])
def test_unknown_model(model: object) -> None:
    body = {"model": model, "prompt": "x"}
    error = bad(body)
    assert error.field == "model"
    if model is not None:
        assert "Invalid enum value" in error.message and "received" in error.message


# -- prompt -----------------------------------------------------------------------


@pytest.mark.parametrize("model", ALL)
def test_prompt_required(model: str) -> None:
    body = dict(BASE[model])
    del body["prompt"]
    error = bad(body)
    assert error.field == "prompt"
    assert "Expected string, received undefined" in error.message


@pytest.mark.parametrize("model", ALL)
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "received null"),
        (5, "Expected string, received number"),
        (["a"], "received array"),
        ("", "at least 1"),
        ("   \n", "at least 1"),
        ("x" * (MAX_PROMPT_CHARS + 1), f"at most {MAX_PROMPT_CHARS}"),
        ("\udcab\udbed", "U+DCAB at character 0 is a lone UTF-16 surrogate"),
        ("a fox \ud800", "U+D800 at character 6 is a lone UTF-16 surrogate"),
        ("\U0010b4ab", "U+10B4AB at character 0 is not a text character"),
        ("x\uffff", "U+FFFF at character 1 is not a text character"),
    ],
)
def test_prompt_invalid(model: str, value: object, expected: str) -> None:
    error = bad(with_(model, prompt=value))
    assert error.field == "prompt" and expected in error.message


@pytest.mark.parametrize("model", ALL)
def test_prompt_trimmed_and_long_ok(model: str) -> None:
    assert ok(with_(model, prompt="  a fox  ")).prompt == "a fox"
    assert len(ok(with_(model, prompt="y" * MAX_PROMPT_CHARS)).prompt) == MAX_PROMPT_CHARS


# -- duration ---------------------------------------------------------------------

DURATIONS = {
    "veo2": ([5, 6, 7, 8], [4, 9, 0, -5, 10]),
    "veo2/image-to-video": ([5, 6, 7, 8], [4, 9, 0]),
    "google/veo-3.0-i2v": ([4, 6, 8], [5, 7, 3, 10]),
}


@pytest.mark.parametrize("model", ALL)
def test_duration_valid_as_int_string_and_integral_float(model: str) -> None:
    for value in DURATIONS[model][0]:
        assert ok(with_(model, duration=value)).duration == value
        assert ok(with_(model, duration=str(value))).duration == value
        assert ok(with_(model, duration=float(value))).duration == value


@pytest.mark.parametrize("model", ALL)
def test_duration_out_of_enum(model: str) -> None:
    allowed = " | ".join(str(v) for v in DURATIONS[model][0])
    for value in DURATIONS[model][1]:
        for sent in (value, str(value)):
            error = bad(with_(model, duration=sent))
            assert error.field == "duration"
            assert f"Expected {allowed}" in error.message
            assert f"received {sent!r}" in error.message


@pytest.mark.parametrize("model", ALL)
@pytest.mark.parametrize("value", [5.5, "5.5", "five", "", True, [5], {"s": 5}])
def test_duration_wrong_type(model: str, value: object) -> None:
    error = bad(with_(model, duration=value))
    assert error.field == "duration" and "received" in error.message


@pytest.mark.parametrize("model", ALL)
def test_duration_null_means_default(model: str) -> None:
    default = ok(BASE[model]).duration
    assert ok(with_(model, duration=None)).duration == default


# -- aspect_ratio -----------------------------------------------------------------


@pytest.mark.parametrize("model", ALL)
@pytest.mark.parametrize("value", ["16:9", "9:16"])
def test_aspect_ratio_valid(model: str, value: str) -> None:
    params = ok(with_(model, aspect_ratio=value))
    width, height = MODELS[model].frame_size(params)
    assert (width > height) == (value == "16:9")


def test_aspect_ratio_auto_only_for_veo2_image() -> None:
    params = ok(with_("veo2/image-to-video", aspect_ratio="auto"))
    spec = MODELS["veo2/image-to-video"]
    assert spec.frame_size(params, "9:16") == (720, 1280)
    assert spec.frame_size(params, "16:9") == (1280, 720)
    for model in ("veo2", "google/veo-3.0-i2v"):
        error = bad(with_(model, aspect_ratio="auto"))
        assert "Expected '16:9' | '9:16', received 'auto'" in error.message


@pytest.mark.parametrize("model", ALL)
@pytest.mark.parametrize("value", ["4:3", "1:1", "16/9", "", 16, True])
def test_aspect_ratio_invalid(model: str, value: object) -> None:
    error = bad(with_(model, aspect_ratio=value))
    assert error.field == "aspect_ratio" and "Invalid enum value" in error.message


# -- negative_prompt, seed, enhance_prompt --------------------------------------------


@pytest.mark.parametrize("model", ALL)
def test_negative_prompt(model: str) -> None:
    assert ok(with_(model, negative_prompt="blurry")).negative_prompt == "blurry"
    assert ok(with_(model, negative_prompt="")).negative_prompt == ""
    assert bad(with_(model, negative_prompt=3)).field == "negative_prompt"
    assert bad(with_(model, negative_prompt="x" * (MAX_PROMPT_CHARS + 1))).field == (
        "negative_prompt"
    )


@pytest.mark.parametrize("model", ALL)
def test_negative_prompt_with_lone_surrogate(model: str) -> None:
    error = bad(with_(model, negative_prompt="blur \udcab"))
    assert error.field == "negative_prompt" and "surrogate" in error.message


@pytest.mark.parametrize("model", ALL)
def test_seed(model: str) -> None:
    for value in (0, 42, MAX_SEED, 7.0):
        assert ok(with_(model, seed=value)).seed == int(value)
    for value in (-1, MAX_SEED + 1, 1.5, "42", True, [1]):
        error = bad(with_(model, seed=value))
        assert error.field == "seed" and "received" in error.message


@pytest.mark.parametrize("model", ALL)
def test_enhance_prompt(model: str) -> None:
    assert ok(with_(model, enhance_prompt=False)).enhance_prompt is False
    assert ok(with_(model, enhance_prompt=True)).enhance_prompt is True
    for value in ("false", 0, 1, "yes"):
        error = bad(with_(model, enhance_prompt=value))
        assert error.field == "enhance_prompt" and "Expected boolean" in error.message


# -- image fields -----------------------------------------------------------------


@pytest.mark.parametrize("model", I2V)
def test_image_url_required(model: str) -> None:
    body = dict(BASE[model])
    del body["image_url"]
    error = bad(body)
    assert error.field == "image_url" and "received undefined" in error.message


@pytest.mark.parametrize("model", I2V)
@pytest.mark.parametrize("value", [None, 5, "", "   ", ["http://x"], {"url": "x"}])
def test_image_url_wrong_type(model: str, value: object) -> None:
    assert bad(with_(model, image_url=value)).field == "image_url"


def test_tail_image_url() -> None:
    params = ok(with_("veo2/image-to-video", tail_image_url=IMAGE))
    assert params.image_refs() == {"image_url": IMAGE, "tail_image_url": IMAGE}
    assert bad(with_("veo2/image-to-video", tail_image_url=7)).field == "tail_image_url"


@pytest.mark.parametrize(
    ("model", "field", "value"),
    [
        ("veo2", "image_url", IMAGE),
        ("veo2", "tail_image_url", IMAGE),
        ("veo2", "resolution", "720P"),
        ("veo2", "generate_audio", True),
        ("veo2/image-to-video", "resolution", "1080P"),
        ("veo2/image-to-video", "generate_audio", False),
        ("google/veo-3.0-i2v", "tail_image_url", IMAGE),
    ],
)
def test_fields_of_other_models_are_refused(model: str, field: str, value: object) -> None:
    error = bad(with_(model, **{field: value}))
    assert error.field == field and f"model '{model}'" in error.message


@pytest.mark.parametrize("model", ALL)
def test_unknown_fields_are_ignored(model: str) -> None:
    assert ok(with_(model, user="me", metadata={"a": 1})).prompt


# -- veo3: resolution and generate_audio ------------------------------------------------


@pytest.mark.parametrize(
    ("resolution", "aspect", "size"),
    [
        ("720P", "16:9", (1280, 720)),
        ("720P", "9:16", (720, 1280)),
        ("1080P", "16:9", (1920, 1080)),
        ("1080P", "9:16", (1080, 1920)),
    ],
)
def test_veo3_resolution_sizes(resolution: str, aspect: str, size: tuple[int, int]) -> None:
    params = ok(with_("google/veo-3.0-i2v", resolution=resolution, aspect_ratio=aspect))
    assert MODELS["google/veo-3.0-i2v"].frame_size(params) == size


@pytest.mark.parametrize("value", ["720p", "4K", "480P", 720, ""])
def test_veo3_resolution_invalid(value: object) -> None:
    error = bad(with_("google/veo-3.0-i2v", resolution=value))
    assert error.field == "resolution" and "Expected '720P' | '1080P'" in error.message


def test_veo3_generate_audio() -> None:
    assert ok(with_("google/veo-3.0-i2v", generate_audio=False)).wants_audio is False
    assert bad(with_("google/veo-3.0-i2v", generate_audio="no")).field == "generate_audio"


def test_several_errors_are_reported_together() -> None:
    error = bad(with_("veo2", duration=9, aspect_ratio="4:3", seed=-1))
    for field in ("duration", "aspect_ratio", "seed"):
        assert f"{field}:" in error.message


def test_data_uri_is_never_echoed() -> None:
    payload = "data:image/png;base64," + "QUFB" * 200
    error = bad(with_("veo2", aspect_ratio=payload))
    assert "received a data URI" in error.message and "QUFB" not in error.message
    long_value = "z" * 500
    assert long_value not in bad(with_("veo2", aspect_ratio=long_value)).message


# -- credits ------------------------------------------------------------------------


def test_credits_scale_with_duration_and_audio() -> None:
    veo2 = MODELS["veo2"]
    assert veo2.credits(ok(with_("veo2", duration=8))) == 8 * veo2.credits_per_second
    veo3 = MODELS["google/veo-3.0-i2v"]
    loud = veo3.credits(ok(BASE["google/veo-3.0-i2v"]))
    quiet = veo3.credits(ok(with_("google/veo-3.0-i2v", generate_audio=False)))
    assert loud > quiet > 0
