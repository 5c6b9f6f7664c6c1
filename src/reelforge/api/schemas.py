"""Response models of the HTTP API: the job documents, and the error shape."""

from __future__ import annotations

from pydantic import BaseModel

from reelforge.documents import (
    ErrorInfo,
    Generation,
    GenerationCreated,
    GenerationList,
    Meta,
    Usage,
    Video,
    present,
)


class ApiError(BaseModel):
    """The AI/ML API error shape (``shared/specs/errors-*.md``)."""

    message: str
    path: str
    requestId: str
    statusCode: int
    timestamp: str


__all__ = [
    "ApiError",
    "ErrorInfo",
    "Generation",
    "GenerationCreated",
    "GenerationList",
    "Meta",
    "Usage",
    "Video",
    "present",
]
