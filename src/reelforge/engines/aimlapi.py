"""The ``aimlapi`` engine: the real Veo, through the AI/ML API's published video protocol.

reelforge speaks the same protocol on both sides, so this engine is a careful client:
it forwards the validated request with the published field names (``POST
/v2/video/generations``), follows the generation (``GET ?generation_id=``) and downloads
the finished MP4. What it adds over a plain client is what a worker needs:

* **No double charges.** The upstream id is saved as engine state the moment the create
  returns, and a later attempt of the same job (after a crash) resumes polling it. A
  create is only repeated when the upstream cannot have started anything: connection
  never established, 408, 429, 503. Any other failure of a create fails the job rather
  than risk paying for a second video.
* **Cancellable waiting.** Polls start at ``aimlapi_poll_seconds`` and grow to 3x that;
  ``progress`` is called every second regardless (the worker cancels through it);
  429/5xx/connection failures while polling are retried with ``Retry-After`` or
  backoff; the whole generation gives up after ``aimlapi_timeout_seconds``.
* **Safe inputs and outputs.** Images leave as JPEG data URIs re-encoded from what
  reelforge decoded, never as the user's URLs. The video comes back through the
  SSRF-safe fetcher (``REELFORGE_FETCH_ALLOW`` applies), capped at ``max_video_bytes``,
  without the API key, and is probed before the worker stores it.

We use httpx directly rather than ``reelforge.client.Client``: the SDK's retries sleep
without calling ``progress`` (a 60 s ``Retry-After`` would make a job uncancellable for
a minute), its create probes ``/health`` after ambiguous failures, and its download sends
to any host without address vetting or a size cap. Its response models and error
parsing are reused, so both read the protocol the same way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from reelforge import __version__
from reelforge.client.errors import error_from_response, parse_retry_after
from reelforge.client.models import Generation, GenerationCreated
from reelforge.engines.base import (
    Capabilities,
    Clip,
    GenerationRequest,
    Inputs,
    Progress,
    save_engine_state,
)
from reelforge.engines.upstream import (
    PROGRESS_DOWNLOADED,
    PROGRESS_QUEUED,
    PROGRESS_SUBMITTING,
    Pacer,
    Transient,
    VideoFiles,
    auth_rejected,
    download_video,
    finished_clip,
    follow_upstream,
    generating_progress,
    image_data_uri,
    poll_until,
)
from reelforge.errors import ServiceUnavailable, UpstreamError
from reelforge.media.fetch import VIDEO_FETCH_TIMEOUT_SECONDS
from reelforge.media.netguard import FetchPolicy
from reelforge.settings import Settings

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

KEY_ENV = "REELFORGE_AIMLAPI_KEY"
DEFAULT_BASE_URL = "https://api.aimlapi.com"
GENERATIONS_PATH = "/v2/video/generations"
USER_AGENT = f"reelforge/{__version__} (aimlapi engine)"

MODELS = frozenset({"veo2", "veo2/image-to-video", "google/veo-3.0-i2v"})
AUDIO_MODELS = frozenset({"google/veo-3.0-i2v"})
"""Models whose schema has ``resolution`` and ``generate_audio``."""

REQUEST_TIMEOUT_SECONDS = 60.0
"""Per HTTP request to the API (a create carries up to two images)."""
TYPICAL_SECONDS = 45.0
"""How long the AI/ML API quotes for a Veo clip (40-50 s); scales the progress estimate."""

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
CREATE_RETRY_STATUSES = frozenset({408, 429, 503})
"""Answers to a create that mean nothing was started, so repeating it cannot charge twice."""
QUEUED_STATUSES = frozenset({"queued", "waiting"})
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Transport failures before the request left: even a create is safe to repeat."""


class AimlapiEngine:
    """Generates with the AI/ML API; one instance serves every worker thread."""

    name = "aimlapi"

    def __init__(
        self,
        api_key: str,
        *,
        policy: FetchPolicy,
        base_url: str = DEFAULT_BASE_URL,
        poll_seconds: float = 10.0,
        timeout_seconds: float = 1800.0,
        max_video_bytes: int = 1024 * 2**20,
        download_timeout_seconds: float = VIDEO_FETCH_TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not api_key:
            raise ServiceUnavailable(f"the aimlapi engine needs an API key: set {KEY_ENV}")
        if poll_seconds <= 0 or timeout_seconds <= 0 or max_video_bytes <= 0:
            raise ValueError("poll_seconds, timeout_seconds and max_video_bytes must be positive")
        self._key = api_key
        self.base_url = _api_root(base_url)
        self.policy = policy
        self.poll_seconds = poll_seconds
        self.timeout_seconds = timeout_seconds
        self.max_video_bytes = max_video_bytes
        self.download_timeout_seconds = download_timeout_seconds
        self._http = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            timeout=REQUEST_TIMEOUT_SECONDS,
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
        )
        self._files = VideoFiles(self.name)

    @classmethod
    def from_settings(cls, settings: Settings) -> AimlapiEngine:
        """The engine as configured by ``REELFORGE_AIMLAPI_*``; the router calls this."""
        key = settings.aimlapi_key.get_secret_value() if settings.aimlapi_key else ""
        if not key.strip():
            raise ServiceUnavailable(
                f"this model is served through the AI/ML API, but the operator has not set "
                f"{KEY_ENV}"
            )
        return cls(
            key.strip(),
            policy=FetchPolicy.from_settings(settings),
            base_url=settings.aimlapi_base_url,
            poll_seconds=settings.aimlapi_poll_seconds,
            timeout_seconds=settings.aimlapi_timeout_seconds,
            max_video_bytes=settings.max_video_bytes,
        )

    def __repr__(self) -> str:
        return f"AimlapiEngine(base_url={self.base_url!r})"

    def capabilities(self) -> Capabilities:
        return Capabilities(
            models=MODELS,
            text_to_video=True,
            image_to_video=True,
            audio=True,
            enhances_prompt=True,
        )

    def load(self) -> None:
        """Nothing to load; the key is checked by the first request."""

    def close(self) -> None:
        self._http.close()
        self._files.close()

    # -- one generation --------------------------------------------------------------

    def generate(self, request: GenerationRequest, inputs: Inputs, progress: Progress) -> Clip:
        """Create (or resume) the upstream generation, wait for it, download the MP4."""
        pacer = Pacer(progress)
        upstream_id, deadline = self._start(request, inputs, progress, pacer)
        log = {"job_id": request.job_id, "upstream_id": upstream_id}

        generation = follow_upstream(
            _Follower(self, upstream_id, pacer),
            pacer=pacer,
            upstream_id=upstream_id,
            interval_seconds=self.poll_seconds,
            deadline=deadline,
            timeout_seconds=self.timeout_seconds,
            log_extra=log,
        )
        if generation.video is None or not generation.video.url:
            raise UpstreamError(f"the upstream generation {upstream_id} completed without a video")
        path = self._files.new_path(request.job_id or upstream_id)
        size = download_video(
            generation.video.url,
            path,
            policy=self.policy,
            max_bytes=self.max_video_bytes,
            pacer=pacer,
            expected_bytes=generation.video.file_size,
            timeout_seconds=self.download_timeout_seconds,
        )
        pacer.report(PROGRESS_DOWNLOADED, "checking video")
        extra: dict[str, object] = {"upstream_id": upstream_id}
        if generation.credits_used is not None:
            extra["credits_used"] = generation.credits_used
        clip = finished_clip(path, extra)
        logger.info("upstream video downloaded", extra={**log, "bytes": size})
        return clip

    def _start(
        self, request: GenerationRequest, inputs: Inputs, progress: Progress, pacer: Pacer
    ) -> tuple[str, float]:
        """The upstream id (resumed or newly created) and the deadline on ``pacer.clock``."""
        state = request.engine_state
        saved = state.get("upstream_id")
        if isinstance(saved, str) and saved:
            submitted_at = state.get("submitted_at")
            spent = time.time() - submitted_at if isinstance(submitted_at, int | float) else 0.0
            logger.info(
                "resuming upstream generation",
                extra={"job_id": request.job_id, "upstream_id": saved},
            )
            pacer.report(PROGRESS_QUEUED, "resuming")
            return saved, pacer.clock() + max(self.timeout_seconds - max(spent, 0.0), 0.0)
        pacer.report(PROGRESS_SUBMITTING, "submitting")
        body = self.request_body(request, inputs)
        deadline = pacer.clock() + self.timeout_seconds

        def on_timeout() -> Exception:
            return UpstreamError("the upstream video service did not accept the generation in time")

        upstream_id = poll_until(
            lambda: self._create(body),
            pacer=pacer,
            interval_seconds=self.poll_seconds,
            deadline=deadline,
            on_timeout=on_timeout,
            what="starting the generation",
        )
        save_engine_state(progress, {"upstream_id": upstream_id, "submitted_at": time.time()})
        logger.info(
            "upstream generation created",
            extra={"job_id": request.job_id, "upstream_id": upstream_id},
        )
        return upstream_id, deadline

    def request_body(self, request: GenerationRequest, inputs: Inputs) -> dict[str, Any]:
        """The create body, with the published field names of ``request.model``."""
        body: dict[str, Any] = {
            "model": request.model,
            "prompt": request.original_prompt or request.prompt,
            "duration": request.duration_seconds,
            "aspect_ratio": request.aspect_ratio,
            "seed": request.seed,
            "enhance_prompt": request.enhance_prompt,
        }
        if request.negative_prompt:
            body["negative_prompt"] = request.negative_prompt
        if request.model in AUDIO_MODELS:
            body["resolution"] = request.resolution
            body["generate_audio"] = request.generate_audio
        if inputs.image is not None:
            body["image_url"] = image_data_uri(inputs.image)
        if inputs.tail_image is not None:
            body["tail_image_url"] = image_data_uri(inputs.tail_image)
        return body

    # -- HTTP ----------------------------------------------------------------------------

    def _create(self, body: dict[str, Any]) -> str:
        created = self._call("POST", GenerationCreated, json=body)
        if not created.id:
            raise UpstreamError("the upstream video service answered a create without an id")
        return created.id

    def get(self, upstream_id: str) -> Generation:
        """The generation's current state (one GET, no retries)."""
        return self._call("GET", Generation, params={"generation_id": upstream_id})

    def _call(
        self,
        method: str,
        model: type[M],
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
    ) -> M:
        """One request; ``Transient`` for what may be retried, domain errors otherwise."""
        creating = method == "POST"
        try:
            response = self._http.request(
                method,
                GENERATIONS_PATH,
                params=params,
                json=json,
                headers={"Authorization": f"Bearer {self._key}"},
            )
        except NOT_SENT as error:
            raise Transient(f"could not connect ({type(error).__name__})") from None
        except httpx.TransportError as error:
            if creating:
                raise _maybe_created(type(error).__name__) from None
            raise Transient(f"the connection failed ({type(error).__name__})") from None
        status = response.status_code
        if response.is_success:
            try:
                return model.model_validate_json(response.content)
            except ValidationError:
                if creating:
                    raise _maybe_created("an unreadable answer") from None
                raise Transient(f"unreadable answer (HTTP {status})") from None
        failure = error_from_response(
            status, response.headers, response.content, reason=response.reason_phrase
        )
        message = failure.message[:500]
        if status in (401, 403):
            raise auth_rejected(self.name, status, message)
        retryable = CREATE_RETRY_STATUSES if creating else RETRY_STATUSES
        if status in retryable:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            raise Transient(f"HTTP {status}: {message}", retry_after)
        if creating and status >= 500:
            raise _maybe_created(f"HTTP {status}: {message}")
        if status == 404 and not creating:
            wanted = (params or {}).get("generation_id", "")
            raise UpstreamError(f"the upstream video service does not know generation {wanted}")
        raise UpstreamError(f"the upstream video service refused the request: {message}")


class _Follower:
    """One poll of a generation for ``poll_until``: the completed generation, or ``None``."""

    def __init__(self, engine: AimlapiEngine, upstream_id: str, pacer: Pacer) -> None:
        self._engine = engine
        self._id = upstream_id
        self._pacer = pacer
        self._status: str | None = None
        self._generating_since: float | None = None

    def __call__(self) -> Generation | None:
        generation = self._engine.get(self._id)
        status = generation.status
        if status != self._status:
            logger.info("upstream status", extra={"upstream_id": self._id, "status": status})
            self._status = status
        if status == "completed":
            return generation
        if status == "error":
            name = generation.error.name if generation.error else "Error"
            message = generation.error.message if generation.error else "no reason given"
            raise UpstreamError(f"upstream generation failed: {name}: {message}")
        if status in QUEUED_STATUSES:
            self._pacer.report(PROGRESS_QUEUED, "queued")
        else:
            self._pacer.report(self._estimate(), "generating")
        return None

    def _estimate(self) -> Callable[[], float]:
        clock = self._pacer.clock
        if self._generating_since is None:
            self._generating_since = clock()
        since = self._generating_since
        return lambda: generating_progress(clock() - since, TYPICAL_SECONDS)


def _maybe_created(what: str) -> UpstreamError:
    return UpstreamError(
        f"the upstream video service failed while starting the generation ({what}); it was "
        "not retried because it may have started anyway and would be charged twice. Try again"
    )


def _api_root(url: str) -> str:
    """``https://api.aimlapi.com`` from any of the spellings the docs use (``/v2``, ``/``)."""
    root = url.strip().rstrip("/").removesuffix("/v2")
    try:
        parsed = httpx.URL(root)
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ServiceUnavailable(
            f"REELFORGE_AIMLAPI_BASE_URL must be an http(s) URL such as {DEFAULT_BASE_URL}"
        )
    return root
