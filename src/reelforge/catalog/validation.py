"""Turning a raw request body into validated parameters, or one clear 400.

Messages follow the AI/ML API: they start with "Body validation error", then name each
offending field with what was expected and what was received.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from reelforge.catalog.fields import describe
from reelforge.errors import InvalidRequest

if TYPE_CHECKING:
    from reelforge.catalog.base import GenerationParams, ModelSpec

PREFIX = "Body validation error"


def body_error(detail: str, field: str | None = None) -> InvalidRequest:
    where = f"{field}: " if field else ""
    return InvalidRequest(f"{PREFIX}: {where}{detail}", field=field)


def _expected(params_type: type[GenerationParams], field: str | None) -> str:
    schema = params_type.model_json_schema()["properties"].get(field or "", {})
    if "enum" in schema:
        return " | ".join(repr(item) for item in schema["enum"])
    if params_type.input_roles.get(field or "") == "video":
        return "string (an http(s) URL or a video data URI)"
    if schema.get("format") == "uri":
        return "string (an http(s) URL or a Base64-encoded image)"
    return str(schema.get("type", "a value"))


def format_errors(error: ValidationError, params_type: type[GenerationParams]) -> InvalidRequest:
    """One message for all field errors, fields in schema order."""
    parts: list[str] = []
    first_field: str | None = None
    for item in error.errors(include_url=False):
        field = ".".join(str(part) for part in item["loc"]) or None
        first_field = first_field or field
        if item["type"] == "missing":
            detail = f"Required. Expected {_expected(params_type, field)}, received undefined"
        elif item["type"] == "reelforge":
            detail = item["msg"]
        else:
            detail = f"{item['msg']}, received {describe(item.get('input'))}"
        parts.append(f"{field}: {detail}" if field else detail)
    return InvalidRequest(f"{PREFIX}: " + "; ".join(parts), field=first_field)


def parse_params(body: Any, models: dict[str, ModelSpec]) -> tuple[ModelSpec, GenerationParams]:
    """Validate ``body`` against the schema of the model it names."""
    if not isinstance(body, dict):
        kind = "array" if isinstance(body, list) else describe(body)
        raise body_error(f"Expected object, received {kind}")
    choices = " | ".join(f"'{name}'" for name in models)
    model_name = body.get("model")
    if model_name is None:
        raise body_error(f"Required. Expected {choices}, received undefined", "model")
    spec = models.get(model_name) if isinstance(model_name, str) else None
    if spec is None:
        guess = closest(model_name, models) if isinstance(model_name, str) else None
        hint = f"; did you mean '{guess}'?" if guess else ""
        raise body_error(
            f"Invalid enum value. Expected {choices}, received {describe(model_name)}{hint}",
            "model",
        )
    _refuse_foreign_fields(body, spec, models)
    # Optional fields sent as null mean "not given": many clients serialise unset options
    # that way, and the schema defaults must then apply.
    given = {key: value for key, value in body.items() if value is not None}
    for name, info in spec.params_type.model_fields.items():
        if name in body and body[name] is None and info.is_required():
            given[name] = None
    try:
        params = spec.params_type.model_validate(given)
    except ValidationError as error:
        raise format_errors(error, spec.params_type) from None
    for rule in spec.rules:
        broken = rule.check(params)
        if broken is not None:
            raise body_error(broken[1], broken[0])
    return spec, params


MAX_OWNERS_SHOWN = 3
"""Models named in a refusal of another model's field; the rest are counted."""


def _refuse_foreign_fields(
    body: dict[str, Any], spec: ModelSpec, models: dict[str, ModelSpec]
) -> None:
    """Refuse fields another published model accepts: the caller expects an effect.

    Exceptions, because dropping them cannot make the video differ from what the caller
    asked for: ``null`` (it means "not given"), and *hints* (``enhance_prompt``,
    ``auto_fix``, ``provider``) that steer how a service processes the request.
    """
    for key, value in body.items():
        if key in spec.fields or value is None:
            continue
        owners = []
        hint = False
        for name, other in models.items():
            declared = other.field(key)
            if declared is not None:
                owners.append(name)
                hint = hint or declared.hint
        if owners and not hint:
            shown = ", ".join(f"'{name}'" for name in owners[:MAX_OWNERS_SHOWN])
            if len(owners) > MAX_OWNERS_SHOWN:
                shown += f" and {len(owners) - MAX_OWNERS_SHOWN} other models"
            raise body_error(
                f"Unrecognized key for model '{spec.name}' (accepted by {shown}); "
                "remove it or choose a model that supports it",
                key,
            )


_PUNCTUATION = re.compile(r"[\W_]+")
MAX_IGNORED_SHOWN = 5
"""Unknown fields reported per request; the rest are counted."""


def _plain(name: str) -> str:
    """A name without case, vendor prefix or punctuation: ``Google/Veo-3`` is ``veo3``."""
    return _PUNCTUATION.sub("", name.lower().removeprefix("google/"))


def closest(name: str, choices: Iterable[str], cutoff: float = 0.75) -> str | None:
    """The choice most like ``name`` (ignoring case, ``google/`` and punctuation), if
    any is close enough to be what was meant; ``veo-3`` is ``google/veo3``."""
    wanted = _plain(name)
    best, score = None, cutoff
    for choice in choices:
        ratio = difflib.SequenceMatcher(None, wanted, _plain(choice)).ratio()
        if ratio > score or (ratio == score and best is None):
            best, score = choice, ratio
    return best


def closest_parameter(name: str, choices: Iterable[str]) -> str | None:
    """Like ``closest``, and a name contained in a choice counts (``id``: ``generation_id``)."""
    plain = _plain(name)
    if plain:
        for choice in choices:
            if len(plain) >= 2 and plain in _plain(choice):
                return choice
    return closest(name, choices)


def ignored_fields(
    body: dict[str, Any], spec: ModelSpec, models: dict[str, ModelSpec]
) -> list[str]:
    """Warnings for the fields of ``body`` that no published model knows.

    The published API accepts unknown fields (and so must reelforge), but a typo then
    silently gets the default (``aspect_ration``: 16:9): each is named, with the closest
    field of the model. Fields of other models are refused before this, or are hints.
    """
    known = {name for other in models.values() for name in other.fields}
    unknown = [key for key, value in body.items() if key not in known and value is not None]
    warnings = []
    for key in unknown[:MAX_IGNORED_SHOWN]:
        shown = key if key.isascii() and key.isprintable() and len(key) <= 60 else "a field"
        guess = closest(key, spec.fields)
        hint = f"; did you mean '{guess}'?" if guess else ""
        warnings.append(f"'{shown}' is not a field of model '{spec.name}' and was ignored{hint}")
    if len(unknown) > MAX_IGNORED_SHOWN:
        warnings.append(f"{len(unknown) - MAX_IGNORED_SHOWN} more unknown fields were ignored")
    return warnings
