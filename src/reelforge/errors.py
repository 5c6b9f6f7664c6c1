"""Domain errors.

Domain code raises these; only the API edge turns them into HTTP responses (status from
``status_code``) and the worker turns them into a job's ``error: {name, message}``.
Messages are written for the person who sent the request: they say what was wrong and
what would be accepted, and never contain secrets or image data.
"""

from __future__ import annotations


class ReelforgeError(Exception):
    """Root of every error reelforge raises on purpose."""

    status_code: int = 500
    name: str = "ReelforgeError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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
    status_code = 403
    name = "Forbidden"


class NotFound(ReelforgeError):
    status_code = 404
    name = "NotFound"


class PayloadTooLarge(ReelforgeError):
    status_code = 413
    name = "PayloadTooLarge"


class RateLimited(ReelforgeError):
    status_code = 429
    name = "RateLimited"

    def __init__(self, message: str, retry_after_seconds: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class ServiceUnavailable(ReelforgeError):
    status_code = 503
    name = "ServiceUnavailable"


class InputError(ReelforgeError):
    """An input (usually an image) could not be used.

    Raised at submit time it becomes a 400; raised while a job runs it ends the job in
    ``error`` with ``name`` set to the subclass's name.
    """

    status_code = 400
    name = "InvalidInput"


class ImageFetchError(InputError):
    name = "ImageFetchError"


class InvalidImage(InputError):
    name = "InvalidImage"


class GenerationFailed(ReelforgeError):
    """An engine could not produce the clip; the job ends in ``error``."""

    name = "GenerationFailed"


class UpstreamError(GenerationFailed):
    name = "UpstreamError"
    status_code = 502
