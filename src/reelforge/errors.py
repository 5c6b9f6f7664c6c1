"""Domain errors: one family, rooted at ``ReelforgeError``.

Domain code raises these; only the API edge turns them into HTTP responses (status from
``status_code``), the worker turns them into a job's ``error: {name, message}`` and the
CLI prints them as one clean line. Messages are written for the person who sent the
request: they say what was wrong and what would be accepted, and never contain secrets,
server paths or image data.

The families:

* request problems (4xx): ``InvalidRequest``, ``Unauthorized``, ``Forbidden``,
  ``NotFound``, ``Conflict``, ``Gone``, ``RequestTimeout``, ``PayloadTooLarge``,
  ``RateLimited``;
* inputs that cannot be used (``InputError``: ``FetchError`` and ``InvalidImage``);
  a 400 at submit time, a failed job when found later;
* a generation that could not be made (``EngineError``, ``UpstreamError``);
* the service itself (``ServiceUnavailable``, ``InsufficientStorage`` for a full disk;
  ``ConfigurationError`` for an operator's mistake, reported at start-up);
* ``JobInterrupted``: a running job must stop (cancelled, timed out, shutting down).
"""

from __future__ import annotations

import enum
from typing import TypeVar


def snake_case(name: str) -> str:
    """``InvalidRequest`` -> ``invalid_request``: an error's name as an OpenAI ``code``."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


class ReelforgeError(Exception):
    """Root of every error reelforge raises on purpose."""

    status_code: int = 500
    name: str = "ReelforgeError"
    nothing_billed: bool = False
    """Set (``unbilled``) on an engine's error that proves its upstream started nothing it
    may charge for: a refused connection, 429 past the retries, a rejected key, or a
    terminal failure the upstream does not bill. Only then may a route fail over."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


E = TypeVar("E", bound=ReelforgeError)


def unbilled(error: E) -> E:
    """``error``, marked as leaving nothing billable upstream (a route may fail over)."""
    error.nothing_billed = True
    return error


class InvalidRequest(ReelforgeError):
    """The request body or a parameter is invalid; nothing was created."""

    status_code = 400
    name = "InvalidRequest"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Unauthorized(ReelforgeError):
    status_code = 401
    name = "Unauthorized"


class Forbidden(ReelforgeError):
    """The key is valid but may not do this (e.g. it has run out of credits)."""

    status_code = 403
    name = "Forbidden"


class NotFound(ReelforgeError):
    status_code = 404
    name = "NotFound"


class Conflict(ReelforgeError):
    """The request contradicts the resource's state (e.g. cancelling a finished job)."""

    status_code = 409
    name = "Conflict"


class Gone(ReelforgeError):
    """It existed and was deleted on purpose (an expired video)."""

    status_code = 410
    name = "Gone"


class RequestTimeout(ReelforgeError):
    """The client took too long to send its request."""

    status_code = 408
    name = "RequestTimeout"


class PayloadTooLarge(ReelforgeError):
    status_code = 413
    name = "PayloadTooLarge"


class RateLimited(ReelforgeError):
    status_code = 429
    name = "RateLimited"

    def __init__(
        self,
        message: str,
        retry_after_seconds: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds
        self.headers = headers or {}
        """Extra response headers (``RateLimit-*``)."""


class ServiceUnavailable(ReelforgeError):
    """The service cannot do this now; trying again later may work."""

    status_code = 503
    name = "ServiceUnavailable"

    def __init__(self, message: str, retry_after_seconds: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


DISK_FULL_RETRY_SECONDS = 60


class InsufficientStorage(ServiceUnavailable):
    """The server's disk (or database) is full; nothing was stored. Retrying helps only
    once an operator has made room, hence 507 rather than a plain 503."""

    status_code = 507
    name = "InsufficientStorage"


class ConfigurationError(ReelforgeError):
    """The operator's configuration is wrong; found at start-up, reported by the CLI."""

    name = "ConfigurationError"


class InputError(ReelforgeError):
    """An input (an image, a video) could not be used.

    Raised at submit time it becomes a 400; raised while a job runs it ends the job in
    ``error`` with ``name`` set to the subclass's name.
    """

    status_code = 400
    name = "InvalidInput"


class FetchError(InputError):
    """A URL could not be fetched (refused address, HTTP error, too slow, too big).

    ``transient`` marks failures that repeating the same fetch may cure (a dropped
    connection, 429 or 5xx); a refused address or an oversized body is never transient.
    ``retry_after_seconds`` is the server's ``Retry-After``, if it sent one. ``refused``
    marks an address the fetch policy forbids (or a URL that is no URL): permanent until
    the operator changes ``REELFORGE_FETCH_ALLOW``, so a webhook is not retried for days.
    """

    name = "FetchError"

    def __init__(
        self,
        message: str,
        *,
        transient: bool = False,
        retry_after_seconds: float | None = None,
        refused: bool = False,
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.retry_after_seconds = retry_after_seconds
        self.refused = refused


class ImageFetchError(FetchError):
    name = "ImageFetchError"


class VideoFetchError(FetchError):
    name = "VideoFetchError"


class InvalidImage(InputError):
    name = "InvalidImage"


class InvalidVideo(InputError):
    name = "InvalidVideo"


class EngineError(ReelforgeError):
    """An engine could not produce the clip; the job ends in ``error``.

    Its job-facing ``name`` is ``GenerationFailed``, the name clients have always seen.
    """

    name = "GenerationFailed"


class UpstreamError(EngineError):
    name = "UpstreamError"
    status_code = 502


class Interruption(enum.StrEnum):
    """Why a running job must stop; the worker acts on each differently."""

    CANCELLED = "cancelled"
    """The user cancelled it: it ends in ``error`` (``Cancelled``), no credits used."""
    TIMEOUT = "timeout"
    """It ran past its time budget (``REELFORGE_JOB_TIMEOUT_SECONDS`` or its engine's):
    it ends in ``error`` (``Timeout``)."""
    SHUTDOWN = "shutdown"
    """The worker is stopping: the job is handed back and runs again elsewhere."""
    LEASE_LOST = "lease_lost"
    """Another worker owns the job now: this one drops it without writing anything."""


class JobInterrupted(ReelforgeError):
    """Raised inside an engine (by its job context) when the job must stop."""

    name = "Interrupted"

    def __init__(self, reason: Interruption, message: str | None = None) -> None:
        super().__init__(message or f"the job was interrupted ({reason})")
        self.reason = reason
