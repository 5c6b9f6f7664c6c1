"""reelforge: a self-hosted video generation service speaking the AI/ML API protocol.

``from reelforge import Client`` works, but importing ``reelforge`` loads nothing else:
the SDK is imported on first use, so SDK users never pay for the server's dependencies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from reelforge.client import AsyncClient, Client

__all__ = ["AsyncClient", "Client", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("Client", "AsyncClient"):
        from reelforge import client

        return getattr(client, name)
    raise AttributeError(f"module 'reelforge' has no attribute {name!r}")
