"""The catalogue against every published spec (tests/specs): field names and order,
types, required fields, enums (and their case) and defaults, so the two cannot drift.

Where reelforge deliberately differs, the difference is listed here and in the README:
``veo2/image-to-video`` also takes ``aspect_ratio: auto``; ``provider`` takes the three
values its description names (any case); ``aspect_ratio`` defaults to ``16:9`` where a
spec gives no default, and reference-to-video's ``duration`` to its only value.
"""

from __future__ import annotations

import pytest

from published_specs import PublishedModel, published_models
from reelforge.catalog import MODELS, validate_request
from reelforge.catalog.fields import PROVIDERS
from reelforge.errors import InvalidRequest

pytestmark = pytest.mark.unit

PUBLISHED = published_models()
IDS = [model.name for model in PUBLISHED]
URL = "https://example.com/picture.jpg"
SAMPLES = {
    "prompt": "a fox in the snow",
    "image_url": URL,
    "last_image_url": URL,
    "tail_image_url": URL,
    "image_urls": [URL, URL],
    "video_url": "https://example.com/clip.mp4",
}
EXTRA_ENUM_VALUES = {("veo2/image-to-video", "aspect_ratio"): {"auto"}}
ENUMS_OF_STRINGS = {"provider": set(PROVIDERS)}
ADDED_DEFAULTS = {"aspect_ratio": "16:9", "duration": 8}
JSON_TYPES = {"string": str, "integer": int, "boolean": bool, "array": list}


def minimal(model: PublishedModel) -> dict:
    body = {"model": model.name}
    for name in model.required - {"model"}:
        body[name] = SAMPLES[name]
    return body


def accepted(body: dict):
    return validate_request(body)[1]


def refused(body: dict) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        validate_request(body)
    return info.value


def test_every_published_model_is_served_and_nothing_else() -> None:
    assert sorted(IDS) == sorted(MODELS)
    assert len(IDS) == 17


@pytest.mark.parametrize("model", PUBLISHED, ids=IDS)
def test_fields_and_their_order_are_the_specs(model: PublishedModel) -> None:
    declared = [field.name for field in MODELS[model.name].declared]
    assert declared == [name for name in model.properties if name != "model"]


@pytest.mark.parametrize("model", PUBLISHED, ids=IDS)
def test_required_fields(model: PublishedModel) -> None:
    spec = MODELS[model.name]
    assert {f.name for f in spec.declared if f.required} | {"model"} == model.required
    accepted(minimal(model))
    for name in model.required - {"model"}:
        body = minimal(model)
        del body[name]
        error = refused(body)
        assert error.field == name and "Required" in error.message and "undefined" in error.message


@pytest.mark.parametrize("model", PUBLISHED, ids=IDS)
def test_types(model: PublishedModel) -> None:
    schema = MODELS[model.name].params_type.model_json_schema()["properties"]
    for name, published in model.properties.items():
        ours = schema[name]
        variants = [v for v in ours.get("anyOf", [ours]) if v.get("type") != "null"]
        types = {v.get("type") or type(v["enum"][0]).__name__ for v in variants}
        expected = published["type"]
        assert expected in types or {"int": "integer", "str": "string"}.get(*types) == expected, (
            name
        )
        if published.get("format") == "uri":
            assert name in MODELS[model.name].params_type.input_roles
        wrong = 1.5 if expected != "integer" else "soon"
        if expected == "array":
            wrong = URL
        error = refused({**minimal(model), name: wrong})
        assert error.field == name and "received" in error.message


@pytest.mark.parametrize("model", PUBLISHED, ids=IDS)
def test_enums_including_their_case(model: PublishedModel) -> None:
    schema = MODELS[model.name].params_type.model_json_schema()["properties"]
    for name, published in model.properties.items():
        if name == "model":
            continue
        allowed = published.get("enum")
        ours = schema[name]
        variants = ours.get("anyOf", [ours])
        values = {v for variant in variants for v in variant.get("enum", [])}
        values |= {variant["const"] for variant in variants if "const" in variant}
        if allowed is None:
            assert values == ENUMS_OF_STRINGS.get(name, set()), name
            continue
        extra = EXTRA_ENUM_VALUES.get((model.name, name), set())
        assert values == set(allowed) | extra, name
        for value in allowed:
            assert accepted({**minimal(model), name: value}).value(name) == value
        for value in allowed:
            if isinstance(value, str) and value.swapcase() != value:
                error = refused({**minimal(model), name: value.swapcase()})
                assert error.field == name and "Invalid enum value" in error.message
        outside = 99 if isinstance(allowed[0], int) else "3:2"
        error = refused({**minimal(model), name: outside})
        assert error.field == name and "Invalid enum value" in error.message


@pytest.mark.parametrize("model", PUBLISHED, ids=IDS)
def test_defaults(model: PublishedModel) -> None:
    params = accepted(minimal(model))
    for name, published in model.properties.items():
        if name == "model" or name in model.required:
            continue
        value = params.value(name)
        if "default" in published:
            default = published["default"]
            if published["type"] == "integer":
                default = int(default)  # the specs write integer defaults as strings
            assert value == default, name
        else:
            assert value in (None, ADDED_DEFAULTS.get(name)), name
        # null means "not given": the default applies.
        assert accepted({**minimal(model), name: None}).value(name) == value


def test_provider_is_case_insensitive_as_its_description_says() -> None:
    body = {"model": "google/veo-3.1-t2v", "prompt": "x"}
    assert accepted({**body, "provider": "Google"}).value("provider") == "Google"
    error = refused({**body, "provider": "replicate"})
    assert error.field == "provider" and "'auto' | 'google' | 'fal'" in error.message


def test_lite_preview_takes_a_last_frame_only_at_8_seconds() -> None:
    body = {"model": "google/veo-3-1-lite-generate-preview", "prompt": "x", "last_image_url": URL}
    assert accepted(body).duration == 8
    error = refused({**body, "duration": 4})
    assert error.field == "duration" and "Expected 8 when last_image_url is given" in error.message
    assert accepted({**body, "last_image_url": None, "duration": 4}).duration == 4
    lite_001 = {**body, "model": "veo-3.1-lite-generate-001", "duration": 4}
    assert accepted(lite_001).duration == 4  # its spec has no such rule


@pytest.mark.parametrize(
    ("value", "expected"),
    [([], "at least 1"), ([URL] * 4, "at most 3"), ("x", "Expected array"), ([5], "string")],
)
def test_reference_images(value: object, expected: str) -> None:
    body = {"model": "google/veo-3.1-reference-to-video", "prompt": "x", "image_urls": value}
    error = refused(body)
    assert error.field is not None and error.field.startswith("image_urls")
    assert expected in error.message


def test_inputs_are_listed_by_role() -> None:
    params = accepted(
        {
            "model": "google/veo-3.1-first-last-image-to-video",
            "prompt": "x",
            **_required("google/veo-3.1-first-last-image-to-video"),
        }
    )
    assert params.image_refs() == {"image_url": URL, "last_image_url": URL}
    refs = accepted(
        {"model": "google/veo-3.1-reference-to-video", "prompt": "x", "image_urls": [URL, URL]}
    )
    assert refs.image_list_refs() == {"image_urls": [URL, URL]} and refs.image_refs() == {}
    extend = accepted(
        {"model": "google/veo3-1-extend-video", "prompt": "x", "video_url": SAMPLES["video_url"]}
    )
    assert extend.video_refs() == {"video_url": SAMPLES["video_url"]}
    assert extend.aspect == "auto" and extend.resolution_name == "720P"


@pytest.mark.parametrize(
    ("model", "field", "value"),
    [
        ("google/veo-3.1-i2v", "seed", 5),
        ("google/veo-3.1-i2v", "negative_prompt", "rain"),
        ("google/veo3", "last_image_url", URL),
        ("google/veo-3.1-reference-to-video", "aspect_ratio", "9:16"),
        ("google/veo-3.1-t2v", "person_generation", "dont_allow"),
        ("veo2", "video_url", URL),
    ],
)
def test_fields_of_other_models_are_refused(model: str, field: str, value: object) -> None:
    error = refused({"model": model, "prompt": "x", **_required(model), field: value})
    assert error.field == field and f"model '{model}'" in error.message


@pytest.mark.parametrize(
    ("model", "field", "value"),
    [
        ("google/veo-3.1-i2v", "enhance_prompt", False),
        ("veo2", "provider", "google"),
        ("google/veo3", "auto_fix", True),
        ("veo2", "image_url", None),
        ("google/veo-3.1-i2v", "seed", None),
    ],
)
def test_hints_and_nulls_of_other_models_are_ignored(model: str, field: str, value: object) -> None:
    params = accepted({"model": model, "prompt": "x", **_required(model), field: value})
    assert field not in type(params).model_fields


def _required(model: str) -> dict:
    published = next(item for item in PUBLISHED if item.name == model)
    return {key: value for key, value in minimal(published).items() if key != "model"}
