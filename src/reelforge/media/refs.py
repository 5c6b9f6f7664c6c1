"""Input references as requests carry them: an http(s) URL or inline (Base64) data.

Shared by images (``media.images``) and videos (``media.videos``): the parsed form and
the Base64 decoding, with its size limit checked before anything is decoded.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote

from reelforge.errors import InvalidRequest
from reelforge.media.fetch import format_size

_BASE64_STD_RE = re.compile(r"^[A-Za-z0-9+/]*$")
_BASE64_URL_RE = re.compile(r"^[A-Za-z0-9_-]*$")
_URLSAFE_TO_STD = str.maketrans("-_", "+/")


@dataclass(frozen=True)
class MediaRef:
    """A parsed input reference (an image or a video): ``kind="url"`` with ``url``, or
    ``kind="data"`` with the inline bytes."""

    kind: Literal["url", "data"]
    url: str | None = None
    data: bytes | None = field(default=None, repr=False)
    mime: str | None = None
    """MIME type a data URI declared (informational; decoding sniffs the real format)."""

    @property
    def size(self) -> int:
        """Bytes of inline data (0 for URLs)."""
        return len(self.data or b"")


def too_big(field: str, size: int, max_bytes: int) -> InvalidRequest:
    return InvalidRequest(
        f"{field} is {format_size(size)}; the limit is {format_size(max_bytes)}", field
    )


def decode_data_uri_payload(payload: str, *, field: str, max_bytes: int) -> bytes:
    """The bytes of a Base64 data URI's payload (after the comma), percent-decoded if
    needed; ``InvalidRequest`` naming ``field`` when malformed, empty or too big."""
    if "%" in payload:
        payload = unquote(payload)
    try:
        data = decode_base64(payload, field=field, max_bytes=max_bytes)
    except ValueError:
        raise InvalidRequest(
            f"{field} data URI does not contain valid Base64 data", field
        ) from None
    if not data:
        raise InvalidRequest(f"{field} data URI contains no data", field)
    return data


def decode_base64(text: str, *, field: str, max_bytes: int) -> bytes:
    """Decode standard or urlsafe Base64, tolerating whitespace and missing padding.

    Raises ``ValueError`` for malformed input and ``InvalidRequest`` when it would decode
    to more than ``max_bytes`` (checked before decoding).
    """
    compact = "".join(text.split())
    body = compact.rstrip("=")
    if len(compact) - len(body) > 2 or len(body) % 4 == 1:
        raise ValueError("bad Base64 length or padding")
    if _BASE64_STD_RE.match(body) is None:
        if _BASE64_URL_RE.match(body) is None:
            raise ValueError("not Base64")
        body = body.translate(_URLSAFE_TO_STD)
    decoded_size = len(body) * 3 // 4
    if decoded_size > max_bytes:
        raise too_big(field, decoded_size, max_bytes)
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError("not Base64") from exc
