"""The published models: schemas, defaults, prices and request validation.

The catalogue is data (``models.CATALOGUE``): each model is declared from field
descriptors, and everything else (validation, listings, the OpenAPI document, prices)
is derived from those declarations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reelforge.catalog.base import FRAME_SIZES, GenerationParams, ModelSpec, Price
from reelforge.catalog.models import CATALOGUE
from reelforge.catalog.validation import parse_params
from reelforge.errors import ConfigurationError

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in CATALOGUE}

CREDITS_PER_USD = 2_000_000
"""The AI/ML API's conversion of credits to US dollars (``meta.usage.usd_spent``)."""

SCHEMA_KEYS = ("type", "enum", "default", "minimum", "maximum", "maxLength", "minItems", "maxItems")
"""What ``describe_model`` keeps of each field's JSON schema."""


def get_model(name: str) -> ModelSpec | None:
    return MODELS.get(name)


def price_table(overrides: Mapping[str, object] | None = None) -> dict[str, Price]:
    """Each model's price, with an operator's ``prices`` overrides applied.

    Raises ``ConfigurationError`` naming the model for an unknown model or a malformed
    price, so a mistake stops ``serve`` and ``worker`` at start-up.
    """
    prices = {name: spec.price for name, spec in MODELS.items()}
    for name, value in (overrides or {}).items():
        if name not in MODELS:
            raise ConfigurationError(
                f"REELFORGE_PRICES names the unknown model {name!r}; "
                f"the models are {sorted(MODELS)}"
            )
        try:
            prices[name] = Price.parse(value)
        except ValueError as error:
            raise ConfigurationError(f"REELFORGE_PRICES for {name!r}: {error}") from None
    return prices


def describe_model(spec: ModelSpec, engine: str, price: Price | None = None) -> dict[str, Any]:
    """A model as listed by ``/v2/models`` and ``reelforge models``."""
    schema = spec.params_type.model_json_schema()
    parameters = {}
    for field in spec.declared:
        prop = schema["properties"][field.name]
        # Optional fields are "anyOf: [<type>, null]"; list the type itself.
        variants = [v for v in prop.get("anyOf", []) if v.get("type") != "null"]
        merged = {**(variants[0] if variants else {}), **prop}
        if "const" in merged:  # a one-value enum (``duration: [8]``)
            merged["enum"] = [merged["const"]]
        if merged.get("type") == "array":
            merged["items"] = {"type": "string", "format": "uri"}
        listed = {key: value for key, value in merged.items() if key in SCHEMA_KEYS}
        if field.role is not None:
            listed["input"] = field.role
        parameters[field.name] = listed
    price = price or spec.price
    return {
        "id": spec.name,
        "title": spec.title,
        "input": spec.input_kind,
        "required": sorted(field.name for field in spec.declared if field.required),
        "parameters": parameters,
        "credits_per_second": price.credits_per_second,
        "credits_per_second_without_audio": price.silent_credits_per_second,
        "engine": engine,
    }


def validate_request(body: Any) -> tuple[ModelSpec, GenerationParams]:
    """Validate a raw JSON body; raises ``InvalidRequest`` with an AI/ML API-style message."""
    return parse_params(body, MODELS)


__all__ = [
    "CREDITS_PER_USD",
    "FRAME_SIZES",
    "MODELS",
    "GenerationParams",
    "ModelSpec",
    "Price",
    "describe_model",
    "get_model",
    "price_table",
    "validate_request",
]
