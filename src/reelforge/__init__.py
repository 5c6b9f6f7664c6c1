"""reelforge: a self-hosted video generation service speaking the AI/ML API protocol."""

__version__ = "0.1.0"
from reelforge.client import AsyncClient, Client  # noqa: F401  (re-export; after __version__)
