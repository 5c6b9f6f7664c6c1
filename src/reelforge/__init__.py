"""reelforge: a self-hosted video generation service speaking the AI/ML API protocol."""

__version__ = "0.1.0"
