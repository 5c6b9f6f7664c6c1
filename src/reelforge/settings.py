"""All configuration in one place.

Every setting has a ``REELFORGE_*`` environment variable and a default that works with
no configuration at all: state under a per-user data directory, SQLite, local files, the
built-in ``preview`` engine. Settings are passed into constructors (app, worker, store)
rather than read globally, so tests build components with their own settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import Field, SecretStr, field_validator
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

    auto_migrate: bool | None = None
    """Migrate the schema on start; default: only for SQLite (one process owns it)."""

    storage_url: str | None = None
    """Where videos and staged inputs live: ``file:///path`` (default
    ``$REELFORGE_HOME/files``) or ``s3://bucket/prefix``."""

    s3_endpoint_url: str | None = None
    """S3 API endpoint for MinIO, Ceph and other S3-compatible stores; default: AWS."""
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    """Credentials; default: the AWS credential chain (environment, profile, role)."""

    video_urls: Literal["api", "presigned"] = "api"
    """How ``video.url`` reaches the file: through this API (Range supported) or as a
    presigned object-store URL that expires (S3 only)."""
    presign_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    """Lifetime of presigned video URLs."""

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

    worker_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,100}$")
    """Names this machine in worker ids (default: the host name). Jobs of a dead worker
    process with this same name are re-run at once when a worker starts here; others wait
    for their lease to expire."""

    drain_seconds: float = Field(default=30.0, ge=0.0, le=24 * 3600.0)
    """On SIGTERM, how long a worker may keep working on its current job before it hands
    the job back for another worker to run."""

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
    def resolved_storage_url(self) -> str:
        return self.storage_url or (self.home / "files").resolve().as_uri()
