"""What request bodies may cost: bytes per request, bytes in flight, time, nesting.

One request may carry up to ``REELFORGE_MAX_REQUEST_BYTES`` (Base64 images are big), but
only a create that carries an inline image needs that: every other body is held to
``REELFORGE_MAX_TEXT_REQUEST_BYTES``. Limits per request do not bound the process, so
``BodyLimitMiddleware`` also keeps a process-wide budget of body bytes being received;
beyond it a request gets 503 with ``Retry-After`` before its body is read. A body is
reserved against the budget when the application first reads it, which for the create
routes is after authentication: a client without a key cannot take the budget.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Collection

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reelforge.api.errors import error_response
from reelforge.catalog.validation import body_error
from reelforge.doors.google.protocol import INLINE_MARKERS
from reelforge.errors import PayloadTooLarge, RequestTimeout, ServiceUnavailable

log = logging.getLogger(__name__)

MAX_JSON_DEPTH = 32
"""Deepest nesting of a JSON body; published bodies are 1 level deep."""
MEDIA_FIELD_SUFFIXES = ("image_url", "image_urls", "video_url", "input_reference")
"""``image_url``, ``tail_image_url``, ``image_urls``, ``video_url``, OpenAI's
``input_reference``...: the fields that may make a body large (inline images and
videos; the marker also finds a multipart part's ``name="input_reference"``)."""
INLINE_MEDIA_MARKERS = tuple(name + b'"' for name in INLINE_MARKERS)
"""Google's inline images and videos (``{"bytesBase64Encoded": ...}``, ``{"inlineData":
{"data": ...}}``)."""
_MEDIA_MARKERS = (
    *(f'{suffix}"'.encode() for suffix in MEDIA_FIELD_SUFFIXES),
    *INLINE_MEDIA_MARKERS,
)
_MARKER_CHARS = max(len(marker) for marker in _MEDIA_MARKERS)
BUSY_RETRY_SECONDS = 2


def format_bytes(size: int) -> str:
    if size >= 2**20:
        return f"{size / 2**20:g} MiB"
    return f"{size / 2**10:g} KiB"


def too_large_message(limit: int, *, without_image: bool = False) -> str:
    suffix = " for requests without an inline image" if without_image else ""
    return f"Request body is larger than the {format_bytes(limit)} limit{suffix}"


class BodyLimitMiddleware:
    """Per-request size limits, a process-wide in-flight budget and body read timeouts.

    ``large_body_paths`` (the create routes) and paths ending in one of
    ``large_body_suffixes`` (Google's ``:predictLongRunning``) may carry
    ``max_body_bytes`` if the body holds an image field; every other body is limited to
    ``max_text_body_bytes``. While a body is incomplete each read must arrive within
    ``read_timeout`` seconds and the whole body within ``body_timeout`` (408 otherwise);
    after it, reads pass through untouched (a streaming response listens for the
    disconnect for as long as it runs).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_text_body_bytes: int,
        max_inflight_bytes: int,
        read_timeout: float,
        body_timeout: float,
        large_body_paths: Collection[str],
        large_body_suffixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_text_body_bytes = min(max_text_body_bytes, max_body_bytes)
        self.max_inflight_bytes = max_inflight_bytes
        self.read_timeout = read_timeout
        self.body_timeout = body_timeout
        self.large_body_paths = frozenset(large_body_paths)
        self.large_body_suffixes = large_body_suffixes
        self.inflight = 0
        """Body bytes reserved by requests being handled (one event loop: no lock)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        large = path in self.large_body_paths or path.endswith(self.large_body_suffixes)
        limit = self.max_body_bytes if large else self.max_text_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(scope, send, 413, too_large_message(limit, without_image=not large))
            return
        body = _BodyState(self, limit, large, declared)

        async def limited_receive() -> Message:
            return await body.receive(receive)

        try:
            await self.app(scope, limited_receive, send)
        finally:
            self.inflight -= body.reserved

    async def _refuse(self, scope: Scope, send: Send, status: int, message: str) -> None:
        response = error_response(Request(scope), status, message)
        await response(scope, _no_body, send)


class _BodyState:
    """One request's body as it arrives: what it has reserved, read and may still read."""

    def __init__(
        self, limits: BodyLimitMiddleware, limit: int, large: bool, declared: int | None
    ) -> None:
        self.limits = limits
        self.limit = limit
        self.large = large
        self.declared = declared
        self.reserved = 0
        self.received = 0
        self.complete = declared == 0
        self.started: float | None = None
        self.image_field_seen = False
        self._tail = b""

    async def receive(self, receive: Receive) -> Message:
        if self.complete:
            return await receive()
        if self.started is None:
            self.started = time.monotonic()
            self._reserve(self.declared or 0)
        remaining = self.started + self.limits.body_timeout - time.monotonic()
        try:
            message = await asyncio.wait_for(receive(), min(self.limits.read_timeout, remaining))
        except TimeoutError:
            raise RequestTimeout(
                "The request body did not arrive in time; send it without pauses"
            ) from None
        if message["type"] != "http.request":
            self.complete = True  # http.disconnect
            return message
        chunk = message.get("body", b"")
        self.received += len(chunk)
        if self.received > self.limit:
            raise PayloadTooLarge(too_large_message(self.limit, without_image=not self.large))
        if self.large and not self.image_field_seen:
            self._look_for_image_field(chunk)
        if self.received > self.reserved:  # no Content-Length, or more than it said
            self._reserve(self.received - self.reserved)
        if not message.get("more_body", False):
            self.complete = True
        return message

    def _reserve(self, size: int) -> None:
        limits = self.limits
        if size and limits.inflight + size > limits.max_inflight_bytes:
            raise ServiceUnavailable(
                "The server is receiving too much data at once; retry in a moment",
                retry_after_seconds=BUSY_RETRY_SECONDS,
            )
        limits.inflight += size
        self.reserved += size

    def _look_for_image_field(self, chunk: bytes) -> None:
        """A large body must be large because of an image: past the text limit, an image
        field must have begun (a cheap look at the bytes; ``parse_json_body`` checks the
        parsed body)."""
        window = self._tail + chunk
        self.image_field_seen = self.image_field_seen or any(
            marker in window for marker in _MEDIA_MARKERS
        )
        self._tail = window[-_MARKER_CHARS:]
        text_limit = self.limits.max_text_body_bytes
        if not self.image_field_seen and self.received > text_limit:
            raise PayloadTooLarge(too_large_message(text_limit, without_image=True))


def parse_json_body(raw: bytes, max_text_bytes: int) -> object:
    """The JSON of a create body, or a 400 (invalid, nested too deeply) or 413 (large
    without an inline image)."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        reason = getattr(error, "msg", "not UTF-8")
        raise body_error(f"the request body is not valid JSON ({reason})") from None
    except RecursionError:
        body = None
        too_deep = True
    else:
        too_deep = _deeper_than(body, MAX_JSON_DEPTH)
    if too_deep:
        raise body_error(f"the request body is nested more than {MAX_JSON_DEPTH} levels deep")
    if len(raw) > max_text_bytes and not _has_inline_image(body):
        raise PayloadTooLarge(too_large_message(max_text_bytes, without_image=True))
    return body


def _deeper_than(value: object, limit: int) -> bool:
    """Whether containers nest more than ``limit`` deep; iterative, so any depth is safe."""
    stack: list[tuple[dict[str, object] | list[object], int]] = []
    if isinstance(value, dict | list):
        stack.append((value, 1))
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _has_inline_image(body: object) -> bool:
    """Whether a media field holds inline data (not a URL): only that makes a create
    body legitimately large."""
    if not isinstance(body, dict):
        return False

    def inline(value: object) -> bool:
        if isinstance(value, list):
            return any(inline(item) for item in value)
        if isinstance(value, dict):  # {"input_reference": {"image_url": "data:..."}}
            return _has_inline_image(value)
        return isinstance(value, str) and not value.lstrip().lower().startswith(
            ("http://", "https://")
        )

    return any(key.endswith(MEDIA_FIELD_SUFFIXES) and inline(value) for key, value in body.items())


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}
