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
