"""All configuration in one place.

Every setting has a ``REELFORGE_*`` environment variable and a default that works with
no configuration at all: state under a per-user data directory, SQLite, local files, the
built-in ``preview`` engine. Settings are passed into constructors (app, worker, store)
rather than read globally, so tests build components with their own settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import platformdirs
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _default_home() -> Path:
    return Path(platformdirs.user_data_dir("reelforge", appauthor=False))


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Service settings; see the README's configuration table for each variable."""

    model_config = SettingsConfigDict(env_prefix="REELFORGE_", extra="ignore")

    home: Path = Field(default_factory=_default_home)
    """Directory holding the SQLite database and (by default) the stored videos."""

    database_url: str | None = None
    """SQLAlchemy URL of the job store; default: SQLite at ``$REELFORGE_HOME/reelforge.db``."""

    storage_dir: Path | None = None
    """Where videos and staged inputs live; default: ``$REELFORGE_HOME/files``."""

    public_url: str | None = None
    """Base URL used in ``video.url``; default: taken from each request."""

    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Extra keys admitted as-is (comma-separated), for development and CI."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(default=1, ge=0, le=64)
    """Generation threads started by ``serve`` (0 runs the API alone)."""

    engine: str = "preview"
    """Engine that serves every model unless overridden."""

    preview_latency_seconds: float = Field(default=0.0, ge=0.0, le=3600.0)
    """Extra time the preview engine spends per job, to emulate a real model's latency."""

    encoder_preset: str = "veryfast"
    """libx264 preset for local engines; slower presets give smaller files."""

    lease_seconds: float = Field(default=30.0, gt=0.5, le=3600.0)
    """How long a claimed job stays owned without a heartbeat before others may rerun it."""

    max_attempts: int = Field(default=3, ge=1, le=100)
    """Claims of one job (crashed runs included) before it ends in ``error``."""

    poll_seconds: float = Field(default=1.0, gt=0.0, le=60.0)
    """How often an idle worker looks for jobs submitted by other processes."""

    job_timeout_seconds: float = Field(default=3600.0, gt=0.0)
    """Wall-clock limit of one generation attempt."""

    fetch_allow: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Networks (CIDR) or host names that image fetches may reach despite being internal."""

    fetch_timeout_seconds: float = Field(default=20.0, gt=0.0, le=300.0)
    max_image_bytes: int = Field(default=20 * 2**20, gt=0)
    max_image_pixels: int = Field(default=50_000_000, gt=0)
    min_image_side: int = Field(default=256, ge=1)
    """Smallest accepted image side in pixels: smaller inputs would only render as mush."""
    max_request_bytes: int = Field(default=32 * 2**20, gt=0)
    """Largest accepted request body; Base64 images make bodies big."""

    log_level: str = "info"

    @field_validator("api_keys", "fetch_allow", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'reelforge.db'}"

    @property
    def resolved_storage_dir(self) -> Path:
        return self.storage_dir or self.home / "files"
