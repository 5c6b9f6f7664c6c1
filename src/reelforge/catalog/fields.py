"""Field types shared by the published request schemas, with AI/ML API-style messages.

Each validator raises ``PydanticCustomError`` with a message in the upstream's wording
("Invalid enum value. Expected 5 | 6 | 7 | 8, received '9'"), so that
:func:`reelforge.catalog.validation.format_errors` can report it verbatim after the field
name. Values are coerced only where the published material itself does so: ``duration``
arrives as ``"5"`` in the published examples, and JSON numbers like ``5.0`` are integers
to a JavaScript server.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

MAX_PROMPT_CHARS = 4000
"""Longest accepted prompt or negative prompt, in characters."""

MAX_SEED = 2**32 - 1
"""Seeds are unsigned 32-bit integers, as Veo's own API defines them."""

MAX_IMAGE_REF_CHARS = 40 * 2**20
"""Longest ``image_url`` string accepted before decoding (Base64 of a 20 MiB image + slack)."""

MAX_REFERENCE_IMAGES = 3
"""Most ``image_urls`` of a reference-to-video request: Veo takes at most three subject
references, and each one is a fetch of up to ``REELFORGE_MAX_IMAGE_BYTES``."""

PROVIDERS = ("auto", "google", "fal")
"""The AI/ML API's ``provider`` values, matched case-insensitively as its spec says."""


def describe(value: Any) -> str:
    """How a received value is shown in an error: short, typed, never a whole payload."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        if value.startswith("data:"):
            return "a data URI"
        shown = value if len(value) <= 60 else value[:57] + "..."
        return "'" + shown + "'"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def type_name(value: Any) -> str:
    """The JSON type of ``value``, in the words the upstream uses."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _fail(template: str, **context: Any) -> PydanticCustomError:
    return PydanticCustomError("reelforge", template, context)


def _expected_type(expected: str, value: Any) -> PydanticCustomError:
    return _fail(
        "Expected {expected}, received {received}",
        expected=expected,
        received=type_name(value),
    )


def _as_integer(value: Any, *, allow_numeric_string: bool) -> int:
    if isinstance(value, bool):
        raise _expected_type("number", value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value)
        raise _fail("Expected integer, received float ({received})", received=describe(value))
    if isinstance(value, str) and allow_numeric_string:
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            raise _fail(
                "Expected a number or numeric string, received {received}",
                received=describe(value),
            ) from None
        if text and math.isfinite(number) and number.is_integer():
            return int(number)
        raise _fail("Expected integer, received {received}", received=describe(value))
    raise _expected_type("number", value)


def _enum_message(allowed: tuple[Any, ...], value: Any) -> PydanticCustomError:
    expected = " | ".join(json.dumps(item).replace('"', "'") for item in allowed)
    return _fail(
        "Invalid enum value. Expected {expected}, received {received}",
        expected=expected,
        received=describe(value),
    )


def int_enum(*allowed: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        number = _as_integer(value, allow_numeric_string=True)
        if number not in allowed:
            raise _enum_message(allowed, value)
        return number

    return check


def str_enum(*allowed: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise _enum_message(allowed, value)
        if value not in allowed:
            raise _enum_message(allowed, value)
        return value

    return check


def _strict_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _expected_type("boolean", value)
    return value


def _seed(value: Any) -> int:
    number = _as_integer(value, allow_numeric_string=False)
    if not 0 <= number <= MAX_SEED:
        raise _fail(
            "Number must be between 0 and {maximum}, received {received}",
            maximum=MAX_SEED,
            received=describe(value),
        )
    return number


_MEANINGLESS = re.compile(
    "[\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff\U000f0000-\U0010ffff"
    + "".join(
        f"{chr(plane * 0x10000 + 0xFFFE)}{chr(plane * 0x10000 + 0xFFFF)}" for plane in range(1, 15)
    )
    + "]"
)
"""Code points that are not text: UTF-16 surrogates (JSON's ``\\udcab`` escapes let them in
alone, and ``\\udbed\\udcab`` pairs up into plane 16), the supplementary private-use
planes 15 and 16, and noncharacters. No prompt means anything with them, and lone
surrogates cannot even be stored or logged as UTF-8."""


def _meaningless_character(value: str) -> str | None:
    """Describes the first code point of ``value`` that is not text, else None."""
    found = _MEANINGLESS.search(value)
    if found is None:
        return None
    code = ord(found.group())
    what = "a lone UTF-16 surrogate" if 0xD800 <= code <= 0xDFFF else "not a text character"
    return f"U+{code:04X} at character {found.start()} is {what}"


def _text(*, required: bool) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise _expected_type("string", value)
        if required and not value.strip():
            raise _fail("String must contain at least 1 non-blank character")
        if (problem := _meaningless_character(value)) is not None:
            raise _fail("String must be valid Unicode text: {problem}", problem=problem)
        if len(value) > MAX_PROMPT_CHARS:
            raise _fail(
                "String must contain at most {maximum} characters, received {length}",
                maximum=MAX_PROMPT_CHARS,
                length=len(value),
            )
        return value.strip()

    return check


def _image_ref(value: Any) -> str:
    if not isinstance(value, str):
        raise _expected_type("string", value)
    if not value.strip():
        raise _fail("Expected an http(s) URL or a Base64-encoded image, received ''")
    if len(value) > MAX_IMAGE_REF_CHARS:
        raise _fail(
            "String must contain at most {maximum} characters",
            maximum=MAX_IMAGE_REF_CHARS,
        )
    return value.strip()


def _image_refs(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise _expected_type("array", value)
    if not value:
        raise _fail("Array must contain at least 1 element(s)")
    if len(value) > MAX_REFERENCE_IMAGES:
        raise _fail(
            "Array must contain at most {maximum} element(s), received {count}",
            maximum=MAX_REFERENCE_IMAGES,
            count=len(value),
        )
    return value


def _video_ref(value: Any) -> str:
    if not isinstance(value, str):
        raise _expected_type("string", value)
    if not value.strip():
        raise _fail("Expected an http(s) URL or a video data URI, received ''")
    return value.strip()


def _provider(value: Any) -> str:
    if not isinstance(value, str) or value.lower() not in PROVIDERS:
        raise _enum_message(PROVIDERS, value)
    return value


Prompt = Annotated[str, BeforeValidator(_text(required=True)), Field(max_length=MAX_PROMPT_CHARS)]
NegativePrompt = Annotated[
    str, BeforeValidator(_text(required=False)), Field(max_length=MAX_PROMPT_CHARS)
]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED), BeforeValidator(_seed)]
"""The bounds come before the validator: after it, pydantic cannot apply them to the
schema and ``ge``/``le`` leaked into the OpenAPI document instead of ``minimum``/``maximum``."""
StrictBool = Annotated[bool, BeforeValidator(_strict_bool)]
ImageRef = Annotated[
    str,
    BeforeValidator(_image_ref),
    Field(json_schema_extra={"format": "uri"}),
]
Veo2Duration = Annotated[Literal[5, 6, 7, 8], BeforeValidator(int_enum(5, 6, 7, 8))]
Veo3Duration = Annotated[Literal[4, 6, 8], BeforeValidator(int_enum(4, 6, 8))]
AspectRatio = Annotated[Literal["16:9", "9:16"], BeforeValidator(str_enum("16:9", "9:16"))]
AspectRatioOrAuto = Annotated[
    Literal["16:9", "9:16", "auto"], BeforeValidator(str_enum("16:9", "9:16", "auto"))
]
Resolution = Annotated[Literal["720P", "1080P"], BeforeValidator(str_enum("720P", "1080P"))]
ImageRefs = Annotated[
    list[ImageRef],
    BeforeValidator(_image_refs),
    Field(min_length=1, max_length=MAX_REFERENCE_IMAGES),
]
VideoRef = Annotated[str, BeforeValidator(_video_ref), Field(json_schema_extra={"format": "uri"})]
Provider = Annotated[
    str, BeforeValidator(_provider), Field(json_schema_extra={"enum": list(PROVIDERS)})
]


def enum_of(*allowed: str) -> Any:
    """A string enum field type with the upstream's message (``Literal`` in the schema)."""
    return Annotated[Literal[allowed], BeforeValidator(str_enum(*allowed))]  # type: ignore[valid-type]


def int_enum_of(*allowed: int) -> Any:
    """An integer enum field type; numeric strings are accepted as the published examples send."""
    return Annotated[Literal[allowed], BeforeValidator(int_enum(*allowed))]  # type: ignore[valid-type]
