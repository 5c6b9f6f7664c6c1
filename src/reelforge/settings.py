"""All configuration in one place.

Every setting has a ``REELFORGE_*`` environment variable and a default that works with
no configuration at all: state under a per-user data directory, SQLite, local files, the
built-in ``preview`` engine. Settings are passed into constructors (app, worker, store)
rather than read globally, so tests build components with their own settings.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def _default_home() -> Path:
    return Path(platformdirs.user_data_dir("reelforge", appauthor=False))


CONFIG_ENV = "REELFORGE_CONFIG"
DEFAULT_CONFIG_FILE = "reelforge.toml"


def config_file() -> Path | None:
    """``$REELFORGE_CONFIG`` (which must exist), else ``./reelforge.toml`` if present."""
    named = os.environ.get(CONFIG_ENV)
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise ValueError(f"{CONFIG_ENV} names {path}, which is not a file")
        return path
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def _split_pairs(value: object) -> object:
    """``"a=x,b=y"`` (or JSON) into a dict, so maps fit in one environment variable."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("{"):
        return json.loads(text)
    pairs = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, val = item.partition("=")
        if not sep or not key.strip() or not val.strip():
            raise ValueError(f"expected model=value pairs separated by commas, got {item!r}")
        pairs[key.strip()] = val.strip()
    return pairs


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
    """Engine that serves every model unless ``model_engines`` says otherwise: ``preview``,
    ``diffusers``, ``aimlapi``, ``google`` or a custom ``package.module:factory``."""

    model_engines: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    """Per-model engines, e.g. ``veo2=diffusers,google/veo-3.0-i2v=aimlapi``."""

    # -- prompt enhancement (local engines) ----------------------------------------------
    enhancer: Literal["builtin", "llm", "off"] = "builtin"
    """How ``enhance_prompt: true`` is honoured by local engines."""
    enhancer_url: str | None = None
    """OpenAI-compatible chat completions endpoint (``.../v1``) for ``enhancer = llm``."""
    enhancer_key: SecretStr | None = None
    enhancer_model: str = "gpt-4o-mini"
    enhancer_timeout_seconds: float = Field(default=15.0, gt=0.0, le=300.0)

    # -- diffusers engine ----------------------------------------------------------------
    diffusers_model_path: str | None = None
    """Local directory or Hugging Face repo id of the pipeline serving all models."""
    diffusers_models: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    """Per-model pipelines, e.g. ``veo2=/models/Wan2.1-T2V-1.3B-Diffusers``."""
    diffusers_allow_download: bool = False
    """Fetch missing weights from the Hugging Face Hub at run time (off: local files only)."""
    diffusers_device: str | None = None
    """``cuda``, ``cuda:1``, ``cpu``...; default: CUDA when available."""
    diffusers_dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"
    diffusers_steps: int | None = Field(default=None, ge=1, le=200)
    """Denoising steps; default: the family's recommendation."""
    diffusers_guidance_scale: float | None = Field(default=None, ge=0.0, le=30.0)
    diffusers_cpu_offload: Literal["none", "model", "sequential"] = "none"
    """Offload weights to the CPU to fit small GPUs (``sequential`` fits least memory, slowest)."""
    diffusers_vae_tiling: bool = False
    """Decode the video in tiles: less GPU memory at high resolutions, a little slower."""
    diffusers_attention_backend: str | None = None
    """diffusers attention backend, e.g. ``flash`` or ``sage`` (needs the package)."""
    diffusers_cache: Literal["none", "first_block", "taylorseer"] = "none"
    """Reuse computation between denoising steps: faster, slightly different output."""
    diffusers_audio_model_path: str | None = None
    """A text-to-audio pipeline (e.g. Stable Audio Open) for ``generate_audio``."""

    # -- aimlapi engine (the real Veo through the AI/ML API) ------------------------------
    aimlapi_key: SecretStr | None = None
    aimlapi_base_url: str = "https://api.aimlapi.com"
    """The API root; ``/v2/video/generations`` is appended."""
    aimlapi_poll_seconds: float = Field(default=10.0, gt=0.0, le=300.0)
    aimlapi_timeout_seconds: float = Field(default=1800.0, gt=0.0)
    """How long an upstream generation may take before the job fails."""
    max_video_bytes: int = Field(default=1024 * 2**20, gt=0)
    """Largest video an upstream engine may download."""

    # -- google engine (Veo through Google's API) ------------------------------------------
    google_api_key: SecretStr | None = None
    """A Google Cloud API key with the Vertex AI API enabled ("express mode"); or use
    ``google_vertex_project`` with Application Default Credentials instead."""
    google_vertex_project: str | None = None
    google_vertex_location: str = "us-central1"
    google_base_url: str | None = None
    """Override of the API endpoint (proxies, tests)."""
    google_models: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    """Google model ids by published model; defaults in the engine's documentation."""
    google_poll_seconds: float = Field(default=10.0, gt=0.0, le=300.0)
    google_timeout_seconds: float = Field(default=1800.0, gt=0.0)
    """How long a Google operation may take before the job fails."""

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

    @field_validator("model_engines", "diffusers_models", "google_models", mode="before")
    @classmethod
    def _pairs(cls, value: object) -> object:
        return _split_pairs(value)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then ``REELFORGE_*`` variables, then the TOML file, then defaults."""
        sources = [init_settings, env_settings]
        config = config_file()
        if config is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config))
        return tuple(sources)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'reelforge.db'}"

    @property
    def resolved_storage_url(self) -> str:
        return self.storage_url or (self.home / "files").resolve().as_uri()
