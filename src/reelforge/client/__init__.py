"""The reelforge Python SDK: ``Client`` and ``AsyncClient`` for the AI/ML API video protocol.

Works against reelforge and the AI/ML API alike; reelforge's extensions (long-poll,
idempotent creates) are used when the server shows it has them::

    from reelforge import Client

    with Client(api_key="rf_...") as client:
        generation = client.generate("veo2", "A paper boat on a river", duration=5)
        client.download(generation, "boat.mp4")
"""

from reelforge.client._async import AsyncClient
from reelforge.client._sync import Client
from reelforge.client.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    ConflictError,
    DownloadError,
    GenerationFailed,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ReelforgeClientError,
    ServerError,
    WaitTimeout,
)
from reelforge.client.models import (
    ErrorInfo,
    Generation,
    GenerationCreated,
    GenerationPage,
    Meta,
    Usage,
    Video,
)

__all__ = [
    "APIConnectionError",
    "APITimeoutError",
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "ConflictError",
    "DownloadError",
    "ErrorInfo",
    "Generation",
    "GenerationCreated",
    "GenerationFailed",
    "GenerationPage",
    "InvalidRequestError",
    "Meta",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ReelforgeClientError",
    "ServerError",
    "Usage",
    "Video",
    "WaitTimeout",
]
