"""Google's error shape, ``{"error": {code, message, status}}``, on the door's paths.

``code`` is the HTTP status and ``status`` the canonical gRPC name that Google's clients
read; google-genai raises ``ClientError`` for 4xx and ``ServerError`` for 5xx with both.
"""

from __future__ import annotations

import re

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    410: "NOT_FOUND",
    413: "INVALID_ARGUMENT",
    416: "OUT_OF_RANGE",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
    507: "RESOURCE_EXHAUSTED",
}

_PATHS = re.compile(
    r"^/(?:v1beta1/|v1beta/|v1/(?:projects/[^/]+/locations/[^/]+/)?publishers/google/)"
)
"""Vertex AI (``/v1``, ``/v1beta1``) and Gemini API (``/v1beta``) paths; ``/v1/videos``
stays OpenAI's."""


def is_google_path(path: str) -> bool:
    return _PATHS.match(path) is not None


def status_name(status_code: int) -> str:
    return STATUS_NAMES.get(
        status_code, "INTERNAL" if status_code >= 500 else "FAILED_PRECONDITION"
    )


def error_body(status_code: int, message: str) -> dict[str, object]:
    return {"error": {"code": status_code, "message": message, "status": status_name(status_code)}}
