"""Typed errors: one root, one class per thing a caller would handle differently.

Every error carries what is needed to act on it or report it: ``status_code`` (``None``
when the problem was found locally or no answer came), ``request_id`` (quote it to the
operator) and, for errors raised after a generation exists (``wait``, ``generate``,
``download``), ``generation_id`` so the work is never lost.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from reelforge.retrying import parse_retry_after

if TYPE_CHECKING:
    from reelforge.client.models import Generation

_FIELD = re.compile(r"^\w+ validation error[:!]?\s+([A-Za-z_][\w.\[\]]*): ")


class ReelforgeClientError(Exception):
    """Root of every error the SDK raises."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        request_id: str | None = None,
        generation_id: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.request_id = request_id
        self.generation_id = generation_id
        self.body = body
        """The parsed JSON (or text) of the error response, if there was one."""
        self.may_have_been_created = False
        """Set on a failed create whose request may still have created a generation."""

    def __str__(self) -> str:
        details = [
            f"HTTP {self.status_code}" if self.status_code is not None else "",
            f"request id {self.request_id}" if self.request_id else "",
            f"generation {self.generation_id}" if self.generation_id else "",
        ]
        extra = ", ".join(detail for detail in details if detail)
        return f"{self.message} ({extra})" if extra else self.message


class InvalidRequestError(ReelforgeClientError):
    """The request was refused as invalid (400/413/422), or refused locally before sending."""

    def __init__(self, message: str, *, field: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.field = field if field is not None else parse_field(message)
        """The offending field, from "Body validation error: <field>: ..."."""


class AuthenticationError(ReelforgeClientError):
    """The API key is missing or not accepted (401)."""


class PermissionDeniedError(AuthenticationError):
    """The key is valid but may not do this, e.g. no credits left (403)."""


class NotFoundError(ReelforgeClientError):
    """No such generation for this key, or a wrong base URL (404)."""


class ConflictError(ReelforgeClientError):
    """The request contradicts the generation's state, e.g. cancelling a finished one (409)."""


class RateLimitError(ReelforgeClientError):
    """Too many requests (429), still so after the retries."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        """Seconds the server asked to wait, if it said."""


class ServerError(ReelforgeClientError):
    """The server failed (5xx), still so after any retries."""


class APIConnectionError(ReelforgeClientError):
    """No answer: the connection failed, dropped or timed out."""


class APITimeoutError(APIConnectionError):
    """The server did not answer within the client's timeout."""


class GenerationFailed(ReelforgeClientError):
    """The generation ended in ``error``; ``name`` and ``message`` say why."""

    def __init__(self, generation: Generation) -> None:
        info = generation.error
        self.name = info.name if info else "Error"
        self.generation = generation
        message = info.message if info else "the server gave no reason"
        super().__init__(message, generation_id=generation.id)

    def __str__(self) -> str:
        return f"generation failed: {self.name}: {super().__str__()}"


class WaitTimeout(ReelforgeClientError, TimeoutError):
    """The generation did not finish in time; it keeps running, ``generation_id`` finds it."""

    def __init__(self, generation: Generation | None, generation_id: str, timeout: float) -> None:
        status = generation.status if generation else "unknown"
        super().__init__(
            f"generation still {status} after {timeout:g} s", generation_id=generation_id
        )
        self.generation = generation
        self.timeout = timeout


class DownloadError(ReelforgeClientError):
    """The video could not be downloaded completely (a partial ``.part`` file may remain)."""


def parse_field(message: str) -> str | None:
    match = _FIELD.match(message)
    return match.group(1) if match else None


def _parse_body(content: bytes) -> Any:
    try:
        return json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return content.decode("utf-8", "replace").strip()


def error_from_response(
    status_code: int, headers: Mapping[str, str], content: bytes, *, reason: str = ""
) -> ReelforgeClientError:
    """The typed error for an unsuccessful response in the AI/ML API error shape (or not)."""
    body = _parse_body(content)
    message = ""
    request_id = headers.get("x-request-id")
    if isinstance(body, dict):
        if isinstance(body.get("message"), str):
            message = body["message"]
        elif isinstance(body.get("error"), dict):
            message = str(body["error"].get("message") or "")
        request_id = str(body.get("requestId") or "") or request_id
    elif isinstance(body, str):
        message = body[:500]
    message = message or reason or f"HTTP {status_code}"
    common: dict[str, Any] = {"status_code": status_code, "request_id": request_id, "body": body}
    if status_code == 429:
        retry_after = parse_retry_after(headers.get("retry-after"))
        return RateLimitError(message, retry_after=retry_after, **common)
    if status_code in _BY_STATUS:
        return _BY_STATUS[status_code](message, **common)
    if 400 <= status_code < 500:
        return InvalidRequestError(message, **common)
    if status_code >= 500:
        return ServerError(message, **common)
    return ReelforgeClientError(message, **common)


_BY_STATUS: dict[int, type[ReelforgeClientError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
}
