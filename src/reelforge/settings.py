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
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
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


class EngineInstance(BaseModel):
    """One named engine a route can list (``[engines.<name>]`` in reelforge.toml, or
    ``REELFORGE_ENGINES`` as JSON); see the README's "Routing" section."""

    kind: str = "openai-videos"
    """``openai-videos`` (a server speaking OpenAI's ``/v1/videos``: vLLM-Omni, SGLang
    Diffusion, another reelforge) or a built-in engine (``aimlapi``, ``google``,
    ``preview``...) configured by its own settings; the instance adds a capacity."""
    base_url: str | None = None
    """The server's root, e.g. ``http://gpu-a:8091`` (``/v1/videos`` is appended)."""
    api_key: SecretStr | None = None
    models: dict[str, str] = Field(default_factory=dict)
    """reelforge model -> the model name the server knows; only these models are sent
    there (empty: every model, under its reelforge name)."""
    request_format: Literal["multipart", "json"] = "multipart"
    """How creates are sent: multipart (vLLM-Omni, SGLang, reelforge) or JSON."""
    extra_fields: dict[str, str | int | float | bool] = Field(default_factory=dict)
    """Fields added to every create, e.g. ``{num_inference_steps = 30}``."""
    capacity: int | None = Field(default=None, ge=1, le=100_000)
    """Jobs it runs at once across all workers (a GPU server's slots); none: no cap."""
    poll_seconds: float = Field(default=5.0, gt=0.0, le=300.0)
    timeout_seconds: float = Field(default=1800.0, gt=0.0)


class DiffusersModel(BaseModel):
    """One published model's checkpoint for the diffusers engine and its overrides.

    Unset fields follow the checkpoint's official recipe (``engines/diffusers/recipes.py``),
    then the global ``diffusers_*`` settings; a set field wins over both. Unknown keys are
    refused so that a typo does not silently run the default recipe.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    checkpoint: str
    """Local directory or Hugging Face repo id of the diffusers pipeline."""
    steps: int | None = Field(default=None, ge=1, le=200)
    """Denoising steps."""
    guidance: float | None = Field(default=None, ge=0.0, le=30.0)
    """Classifier-free guidance (of the high-noise transformer for Wan 2.2 A14B)."""
    guidance_2: float | None = Field(default=None, ge=0.0, le=30.0)
    """Guidance of Wan 2.2 A14B's low-noise transformer."""
    shift: float | None = Field(default=None, gt=0.0, le=50.0)
    """Flow-matching shift of the scheduler's sigmas (``flow_shift``/``shift``)."""
    fps: int | None = Field(default=None, ge=1, le=120)
    """Frame rate to generate at (the checkpoint's native rate by default)."""
    negative_prompt: str | None = Field(default=None, max_length=4000)
    """Used when a request has none; ``""`` turns the official default off."""
    resolution: Literal["480p", "720p"] | None = None
    """Trained resolution of a Wan checkpoint whose configuration cannot tell."""
    max_frames: int | None = Field(default=None, ge=1, le=1025)
    """Most frames of one pass; longer clips are made as segments (default: trained length)."""
    distilled: bool | None = None
    """A step-distilled LTX checkpoint (8 steps, guidance 1); default: "distilled" in its name."""
    lora: str | None = None
    """Local ``.safetensors`` (or its directory) of a step-distilled LoRA (LightX2V,
    Lightning) for ``transformer``; fused at load, sampled with its recipe (4 steps, no CFG,
    shift 5) unless steps, guidance or shift are set here."""
    lora_2: str | None = None
    """The low-noise LoRA of a Wan 2.2 A14B pair, for ``transformer_2``."""
    lora_scale: float = Field(default=1.0, gt=0.0, le=4.0)
    """Strength the LoRAs are fused at."""
    cache: Literal["none", "first_block", "taylorseer", "magcache"] | None = None
    """Step cache of this model (default: ``diffusers_cache``)."""
    timeout_seconds: float | None = Field(default=None, gt=0.0, le=7 * 24 * 3600.0)
    """Time budget of one attempt of this model's jobs, instead of the engine's estimate
    (still capped by ``job_timeout_max_seconds``)."""

    @classmethod
    def of(cls, value: object) -> DiffusersModel:
        """A configured entry: a checkpoint alone (``"veo2=/models/x"``) or a table."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            return cls(checkpoint=value)
        return cls.model_validate(value)


class Settings(BaseSettings):
    """Service settings; see the README's configuration table for each variable."""

    model_config = SettingsConfigDict(env_prefix="REELFORGE_", extra="ignore")

    home: Path = Field(default_factory=_default_home)
    """Directory holding the SQLite database and (by default) the stored videos."""

    database_url: str | None = None
    """SQLAlchemy URL of the job store; default: SQLite at ``$REELFORGE_HOME/reelforge.db``."""

    db_timeout_seconds: float = Field(default=5.0, gt=0.0, le=300.0)
    """How long an API request waits for a busy database before answering 503 (workers,
    with no client waiting, wait longer)."""

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
    s3_timeout_seconds: float = Field(default=30.0, gt=0.0, le=600.0)
    """Longest wait for an S3 answer (each of up to 3 tries); a hung endpoint is then an
    unavailable storage, waited out by finished jobs (``storage_outage_seconds``)."""
    """Credentials; default: the AWS credential chain (environment, profile, role)."""

    video_urls: Literal["api", "presigned"] = "api"
    """How ``video.url`` reaches the file: through this API (Range supported) or as a
    presigned object-store URL that expires (S3 only)."""
    presign_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    """Lifetime of presigned video URLs."""

    public_url: str | None = None
    """Base URL used in ``video.url``; default: taken from each request (whose ``Host``
    must then be one of ``allowed_hosts``)."""

    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """``Host`` names requests may carry (``*.example.com`` and ``*`` allowed); default:
    the bound address, localhost names, the public URL's host, and the machine's names
    when bound to every interface."""

    video_url_ttl: int = Field(default=24 * 3600, ge=0, le=365 * 24 * 3600)
    """Lifetime in seconds of signed video URLs served by the API; 0: unsigned URLs
    that never expire."""
    url_signing_key: SecretStr | None = None
    """Key that signs video URLs; default: generated under ``home`` (required with
    PostgreSQL, where every API replica must use the same key)."""

    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Browser origins allowed to call the API (``https://app.example``, or ``*``);
    default: none (CORS off)."""

    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Extra keys admitted as-is (comma-separated), for development and CI."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(default=1, ge=0, le=64)
    """Jobs ``serve`` runs at once (0 runs the API alone, for separate ``reelforge worker``
    processes)."""

    worker_isolation: Literal["process", "thread"] = "process"
    """Where ``serve`` runs its workers: in a supervised child process (an engine that
    crashes or hangs cannot take the API down) or in threads of the API process
    (lighter; for debugging and tests)."""

    engine: str = "preview"
    """Engine that serves every model unless ``model_engines`` says otherwise: ``preview``,
    ``diffusers``, ``aimlapi``, ``google`` or a custom ``package.module:factory``."""

    model_engines: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    """Per-model engines, e.g. ``veo2=diffusers,google/veo-3.0-i2v=aimlapi``."""

    engines: dict[str, EngineInstance] = Field(default_factory=dict)
    """Named engine instances for ``routes`` (JSON in ``REELFORGE_ENGINES``)."""
    routes: dict[str, list[str]] = Field(default_factory=dict)
    """Per model, the engines to try in order, e.g. ``{"google/veo3": ["gpu-a", "gpu-b",
    "aimlapi"]}``; a job moves on only while nothing billable happened upstream."""
    breaker_failures: int = Field(default=3, ge=1, le=1000)
    """Consecutive failures after which an engine instance's circuit opens."""
    breaker_cooldown_seconds: float = Field(default=30.0, gt=0.0, le=3600.0)
    """How long an open circuit skips its engine before one job probes it again."""

    openai_models: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=lambda: {
            "sora-2": "google/veo-3.1-t2v-fast",
            "sora-2-pro": "google/veo-3.1-t2v",
        }
    )
    """OpenAI model names accepted by ``/v1/videos`` and the reelforge models that make
    them, e.g. ``sora-2=google/veo-3.1-t2v-fast,sora-2-pro=google/veo-3.1-t2v`` (reelforge
    ids always work). The defaults make Sora's ``seconds`` 4 and 8 (Veo 3.1: 4, 6, 8)."""

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
    diffusers_models: Annotated[dict[str, DiffusersModel], NoDecode] = Field(default_factory=dict)
    """Per-model pipelines, e.g. ``veo2=/models/Wan2.1-T2V-1.3B-Diffusers``, or per-model
    tables with overrides (:class:`DiffusersModel`): JSON in the variable, or
    ``[diffusers_models."veo2"]`` with ``checkpoint = ...``, ``steps = ...`` in TOML."""
    diffusers_allow_download: bool = False
    """Fetch missing weights from the Hugging Face Hub at run time (off: local files only)."""
    diffusers_device: str | None = None
    """``cuda``, ``cuda:1``, ``cpu``...; default: CUDA when available."""
    diffusers_dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"
    diffusers_steps: int | None = Field(default=None, ge=1, le=200)
    """Denoising steps; default: the family's recommendation."""
    diffusers_guidance_scale: float | None = Field(default=None, ge=0.0, le=30.0)
    diffusers_cpu_offload: Literal["none", "model", "group", "sequential"] = "none"
    """Offload weights to the CPU to fit small GPUs: ``model`` per component, ``group``
    streams blocks on a CUDA stream (overlapped with compute), ``sequential`` fits least
    memory, slowest."""
    diffusers_vae_tiling: bool = False
    """Decode the video in tiles: less GPU memory at high resolutions, a little slower."""
    diffusers_attention_backend: str | None = None
    """diffusers attention backend, e.g. ``flash`` or ``sage`` (needs the package)."""
    diffusers_cache: Literal["none", "first_block", "taylorseer", "magcache"] = "none"
    """Reuse computation between denoising steps: faster, slightly different output."""
    diffusers_cache_threshold: float | None = Field(default=None, gt=0.0, le=1.0)
    """``first_block``/``magcache`` threshold (default 0.1 / 0.06); larger skips more."""
    diffusers_compile: bool = False
    """``torch.compile`` of the repeated transformer blocks (regional): faster steps after
    a compilation per shape, paid by the warm-up at worker start."""
    diffusers_warmup: bool = False
    """Load every configured checkpoint and run one short generation at worker start, so
    the first job pays neither loading nor compilation (on by default with compile)."""
    diffusers_quantization: Literal["none", "fp8"] = "none"
    """``fp8``: FP8 weights and activations of the transformers through torchao (needs an
    FP8 GPU: Ada, Hopper or newer); half the memory of bf16, faster matmuls."""
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

    prices: Annotated[dict[str, int | dict[str, int]], NoDecode] = Field(default_factory=dict)
    """Credits per second by model, replacing the built-in price list: ``model=N`` pairs,
    JSON, or a ``[prices]`` table in reelforge.toml (``{audio = N, silent = N}`` for
    models that make sound)."""

    preview_latency_seconds: float = Field(default=0.0, ge=0.0, le=3600.0)
    """Extra time the preview engine spends per job, to emulate a real model's latency."""

    encoder_preset: str = "veryfast"
    """libx264 preset for local engines; slower presets give smaller files."""

    encoder_threads: int = Field(default=0, ge=0, le=64)
    """libx264 threads per job: 0 lets x264 decide; 1 keeps each job on one core, for as
    many worker processes as cores (the preview engine then renders in the same thread)."""

    lease_seconds: float = Field(default=30.0, gt=0.5, le=3600.0)
    """How long a claimed job stays owned without a heartbeat before others may rerun it."""

    max_attempts: int = Field(default=3, ge=1, le=100)
    """Claims of one job (crashed runs included) before it ends in ``error``."""

    poll_seconds: float = Field(default=1.0, gt=0.0, le=60.0)
    """How often an idle worker looks for jobs submitted by other processes."""

    job_timeout_seconds: float = Field(default=3600.0, gt=0.0)
    """Wall-clock limit of one generation attempt, unless its engine sets its own budget
    (the diffusers engine: from the model, steps, frames and offload)."""

    job_timeout_max_seconds: float = Field(default=6 * 3600.0, gt=0.0)
    """Ceiling on an engine's own time budget, so that no estimate holds a worker forever."""

    job_timeout_grace_seconds: float = Field(default=30.0, ge=0.0, le=3600.0)
    """How long an engine may take to stop after its deadline before the worker ends the
    job itself and recycles the worker process (the engine is stuck)."""

    worker_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,100}$")
    """Names this machine in worker ids (default: the host name). Jobs of a dead worker
    process with this same name are re-run at once when a worker starts here; others wait
    for their lease to expire."""

    drain_seconds: float = Field(default=30.0, ge=0.0, le=24 * 3600.0)
    """On SIGTERM, how long a worker may keep working on its current job before it hands
    the job back for another worker to run."""

    # -- limits and quotas (per key; keys without their own use these) -------------------
    default_rpm: int | None = Field(default=None, ge=1)
    """Creates per minute and key (``None``: unlimited)."""
    default_read_rpm: int | None = Field(default=None, ge=1)
    """Reads (GET, list, events) per minute and key (``None``: unlimited)."""
    default_max_queued: int | None = Field(default=None, ge=0)
    """Generations a key may have waiting at once (``None``: unlimited)."""
    default_max_running: int | None = Field(default=None, ge=0)
    """Generations of a key that may run at once; more wait (``None``: unlimited)."""
    max_queued: int | None = Field(default=None, ge=1)
    """All generations waiting in the service; beyond it creates get 503 (``None``: any)."""
    redis_url: str | None = None
    """Rate-limit counters shared by several API processes (``redis://host:6379/0``);
    default: in the API process's memory (one process)."""
    auth_failures_per_minute: int | None = Field(default=30, ge=1)
    """Failed authentications a client address may make a minute before it gets 429
    without its key being looked up (``None``: unlimited)."""
    redis_timeout_seconds: float = Field(default=0.5, gt=0.0, le=30.0)
    """Longest wait for Redis to connect or answer; past it the request is let through."""
    redis_breaker_seconds: float = Field(default=5.0, gt=0.0, le=600.0)
    """After Redis fails, requests skip it (let through) this long, then one probes it."""

    orphan_sweep_seconds: float = Field(default=3600.0, gt=0.0, le=7 * 86400.0)
    """How often one worker removes stored video files that belong to no live job."""
    storage_outage_seconds: float = Field(default=120.0, ge=0.0, le=3600.0)
    """How long a finished job waits for unavailable storage (S3 down or hung, a full
    disk) before it ends in ``error``; meanwhile its clip is kept and stored on return."""
    retention_hours: float = Field(default=168.0, ge=0.0)
    """Finished videos are deleted this long after completion (0: kept forever)."""
    retention_sweep_seconds: float = Field(default=300.0, gt=0.0, le=86400.0)
    """How often a worker looks for expired videos (one worker at a time does it)."""

    worker_models: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Models this machine's workers claim (empty: every model); GPU workers that serve
    only some models set it, so other models' jobs wait for workers that can make them."""

    webhook_timeout_seconds: float = Field(default=10.0, gt=0.0, le=60.0)
    """How long a webhook receiver has to answer."""
    webhook_concurrency: int = Field(default=16, ge=1, le=256)
    """Deliveries one worker process sends at once."""
    webhook_endpoint_concurrency: int = Field(default=2, ge=1, le=64)
    """Deliveries sent at once to one receiver URL: a slow receiver holds at most this
    many senders, never another receiver's turn."""
    webhook_key_concurrency: int = Field(default=4, ge=1, le=256)
    """Deliveries sent at once for one key (whatever its URLs)."""
    webhook_retry_schedule: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]
    )
    """Seconds before each retry of a failed delivery (Standard Webhooks' schedule)."""

    fetch_allow: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Networks (CIDR) or host names that image fetches may reach despite being internal."""

    fetch_timeout_seconds: float = Field(default=20.0, gt=0.0, le=300.0)
    max_image_bytes: int = Field(default=20 * 2**20, gt=0)
    max_image_pixels: int = Field(default=50_000_000, gt=0)
    min_image_side: int = Field(default=256, ge=1)
    """Smallest accepted image side in pixels: smaller inputs would only render as mush."""
    max_request_bytes: int = Field(default=32 * 2**20, gt=0)
    """Largest accepted request body; Base64 images make bodies big."""
    max_text_request_bytes: int = Field(default=64 * 2**10, gt=0)
    """Largest body without an inline image (every route but a create with an image)."""
    max_inflight_bytes: int = Field(default=96 * 2**20, gt=0)
    """Request body bytes the API receives at once, all requests together; beyond it a
    request gets 503 with Retry-After (bounds memory when many large bodies arrive)."""
    max_connections: int = Field(default=1000, ge=1, le=100_000)
    """Open client connections the API holds at once; beyond it requests get 503 at once."""
    read_timeout_seconds: float = Field(default=30.0, gt=0.0, le=3600.0)
    """Longest pause while a client sends its request (headers or body)."""
    event_loop: Literal["asyncio", "uvloop"] = "asyncio"
    """The API's event loop. asyncio by default: under saturation uvloop held some
    responses back for up to a second on our benchmark machine (p99 10x the median,
    docs/performance.md), where asyncio answered evenly at the same throughput."""
    body_timeout_seconds: float = Field(default=300.0, gt=0.0, le=24 * 3600.0)
    """Longest time a client may take to send a whole request body."""

    max_input_video_bytes: int = Field(default=100 * 2**20, gt=0)
    """Largest ``video_url`` (a video to extend), fetched or inline."""
    max_input_video_seconds: float = Field(default=30.0, gt=0.0)
    """Longest input video; Veo extends videos of 1 to 30 seconds."""
    max_input_video_pixels: int = Field(default=3840 * 2160, gt=0)
    """Most pixels in one frame of an input video."""
    input_video_timeout_seconds: float = Field(default=120.0, gt=0.0, le=3600.0)
    """Whole fetch of a ``video_url``, redirects included."""

    log_level: str = "info"
    log_format: Literal["text", "json"] = "text"
    """``json``: one JSON object per log line, with request and job ids."""

    metrics_token: SecretStr | None = None
    """Turns ``/metrics`` on; scrapers send ``Authorization: Bearer <token>``."""

    @field_validator(
        "api_keys",
        "fetch_allow",
        "webhook_retry_schedule",
        "worker_models",
        "allowed_hosts",
        "cors_origins",
        mode="before",
    )
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("model_engines", "google_models", "openai_models", mode="before")
    @classmethod
    def _pairs(cls, value: object) -> object:
        return _split_pairs(value)

    @field_validator("diffusers_models", mode="before")
    @classmethod
    def _diffusers_models(cls, value: object) -> object:
        pairs = _split_pairs(value)
        if isinstance(pairs, dict):
            return {model: DiffusersModel.of(entry) for model, entry in pairs.items()}
        return pairs

    @field_validator("prices", mode="before")
    @classmethod
    def _prices(cls, value: object) -> object:
        pairs = _split_pairs(value)
        if isinstance(pairs, dict):
            return {
                model: int(price) if isinstance(price, str) and price.strip().isdigit() else price
                for model, price in pairs.items()
            }
        return pairs

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
