"""The published models: schemas, defaults, prices and request validation."""

from __future__ import annotations

from typing import Any

from reelforge.catalog import veo2, veo2_image, veo3_image
from reelforge.catalog.base import FRAME_SIZES, GenerationParams, ModelSpec
from reelforge.catalog.validation import parse_params

MODELS: dict[str, ModelSpec] = {
    spec.name: spec for spec in (veo2.SPEC, veo2_image.SPEC, veo3_image.SPEC)
}


def get_model(name: str) -> ModelSpec | None:
    return MODELS.get(name)


def describe_model(spec: ModelSpec, engine: str) -> dict[str, Any]:
    """A model as listed by ``/v2/models`` and ``reelforge models``."""
    schema = spec.params_type.model_json_schema()
    parameters = {}
    for name, prop in schema["properties"].items():
        if name == "model":
            continue
        # Optional fields are "anyOf: [<type>, null]"; list the type itself.
        variants = [v for v in prop.get("anyOf", []) if v.get("type") != "null"]
        merged = {**(variants[0] if variants else {}), **prop}
        parameters[name] = {
            key: value
            for key, value in merged.items()
            if key in ("type", "enum", "default", "minimum", "maximum", "maxLength")
        }
    return {
        "id": spec.name,
        "title": spec.title,
        "input": spec.input_kind,
        "required": sorted(set(schema.get("required", [])) | {"prompt"}),
        "parameters": parameters,
        "credits_per_second": spec.credits_per_second,
        "credits_per_second_without_audio": spec.silent_credits_per_second,
        "engine": engine,
    }


def validate_request(body: Any) -> tuple[ModelSpec, GenerationParams]:
    """Validate a raw JSON body; raises ``InvalidRequest`` with an AI/ML API-style message."""
    return parse_params(body, MODELS)


__all__ = [
    "FRAME_SIZES",
    "MODELS",
    "GenerationParams",
    "ModelSpec",
    "get_model",
    "validate_request",
]
