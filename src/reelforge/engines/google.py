"""The ``google`` engine: Veo through Google's own API, with the official ``google-genai`` SDK.

Install with ``pip install 'reelforge[google]'``; the SDK is imported when the engine is
built, so other engines never need it.

**Which API.** google-genai 3.x creates videos only in Vertex AI mode (in Gemini
Developer API mode ``models.generate_videos`` raises), so this engine always speaks
Vertex AI's long-running predict protocol, authenticated one of two ways:

* ``REELFORGE_GOOGLE_VERTEX_PROJECT`` (+ ``REELFORGE_GOOGLE_VERTEX_LOCATION``): Vertex AI
  with Application Default Credentials (``GOOGLE_APPLICATION_CREDENTIALS``, the metadata
  server, ``gcloud auth application-default login``). Takes precedence.
* ``REELFORGE_GOOGLE_API_KEY``: Vertex AI express mode, a Google Cloud API key with the
  Vertex AI API enabled, sent as ``x-goog-api-key``.

``REELFORGE_GOOGLE_BASE_URL`` replaces the endpoint (a proxy, or the test fake).

**Models.** Published models map to Google model ids; ``REELFORGE_GOOGLE_MODELS``
(``veo2=veo-2.0-generate-001,...``) overrides any of them. Defaults:

=========================  =======================
published model            Google model
=========================  =======================
``veo2``                   ``veo-2.0-generate-001``
``veo2/image-to-video``    ``veo-2.0-generate-001``
``google/veo-3.0-i2v``     ``veo-3.0-generate-001``
=========================  =======================

**Parameters.** ``aspect_ratio`` -> ``aspectRatio``, ``duration`` -> ``durationSeconds``,
``negative_prompt``, ``seed``, ``enhance_prompt`` as they are; for Veo 3 models (ids
starting ``veo-3``) also ``generate_audio`` and ``resolution`` (``720P`` -> ``720p``,
Google's spelling); ``image_url`` -> the instance's ``image`` and ``tail_image_url`` ->
``lastFrame``, both as JPEG bytes re-encoded from what reelforge decoded. One video per
request (``sampleCount`` 1).

**Waiting and resuming.** The operation name is saved as engine state as soon as
Google returns it, and a later attempt of the job polls that operation instead of
starting (and paying for) another. Polling, retries, progress and the deadline work
as in the ``aimlapi`` engine (``REELFORGE_GOOGLE_POLL_SECONDS``; the deadline is
``REELFORGE_AIMLAPI_TIMEOUT_SECONDS``, the upstream generation limit). Google returns
the video inline (base64) unless a storage bucket is configured, which this engine never
asks for; an http(s) URI is downloaded through the SSRF-safe fetcher.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

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
    encode_image,
    finished_clip,
    follow_upstream,
    generating_progress,
    poll_until,
)
from reelforge.errors import GenerationFailed, ServiceUnavailable, UpstreamError
from reelforge.media.fetch import VIDEO_FETCH_TIMEOUT_SECONDS, format_size
from reelforge.media.netguard import FetchPolicy
from reelforge.settings import Settings

if TYPE_CHECKING:
    from google.genai import Client as GenaiClient
    from google.genai import types as genai_types

logger = logging.getLogger(__name__)

T = TypeVar("T")

KEY_ENV = "REELFORGE_GOOGLE_API_KEY"
PROJECT_ENV = "REELFORGE_GOOGLE_VERTEX_PROJECT"
DEFAULT_MODELS: dict[str, str] = {
    "veo2": "veo-2.0-generate-001",
    "veo2/image-to-video": "veo-2.0-generate-001",
    "google/veo-3.0-i2v": "veo-3.0-generate-001",
}
"""Google model id by published model (see the module docstring)."""

REQUEST_TIMEOUT_SECONDS = 120.0
"""Per HTTP request; a finished operation carries the whole video, base64-encoded."""
TYPICAL_SECONDS = 60.0
"""A typical Veo generation on Vertex AI; scales the progress estimate."""

RETRY_CODES = frozenset({408, 429, 500, 502, 503, 504})
CREATE_RETRY_CODES = frozenset({408, 429, 503})
"""Answers to a create that mean nothing was started (see the ``aimlapi`` engine)."""
AUTH_STATUSES = frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED"})
AUTH_REASONS = frozenset(
    {
        "API_KEY_INVALID",
        "API_KEY_SERVICE_BLOCKED",
        "API_KEY_HTTP_REFERRER_BLOCKED",
        "API_KEY_IP_ADDRESS_BLOCKED",
        "ACCESS_TOKEN_EXPIRED",
        "ACCESS_TOKEN_TYPE_UNSUPPORTED",
        "SERVICE_DISABLED",
        "BILLING_DISABLED",
    }
)
"""``ErrorInfo`` reasons that mean the operator's credentials or project are at fault;
Google answers a bad API key with HTTP 400, not 401."""
_NOT_SENT = frozenset({"ConnectError", "ConnectTimeout", "PoolTimeout"})
_TRANSPORT = frozenset({"TransportError", "RequestError", "TimeoutException"})


class GoogleEngine:
    """Generates with Veo on Google's API; one instance serves every worker thread."""

    name = "google"

    def __init__(
        self,
        *,
        policy: FetchPolicy,
        api_key: str | None = None,
        vertex_project: str | None = None,
        vertex_location: str = "us-central1",
        base_url: str | None = None,
        models: Mapping[str, str] | None = None,
        poll_seconds: float = 10.0,
        timeout_seconds: float = 1800.0,
        max_video_bytes: int = 1024 * 2**20,
        download_timeout_seconds: float = VIDEO_FETCH_TIMEOUT_SECONDS,
        credentials: Any = None,
    ) -> None:
        if not api_key and not vertex_project:
            raise ServiceUnavailable(
                f"this model is served through Google's API, but the operator has set "
                f"neither {KEY_ENV} nor {PROJECT_ENV}"
            )
        if poll_seconds <= 0 or timeout_seconds <= 0 or max_video_bytes <= 0:
            raise ValueError("poll_seconds, timeout_seconds and max_video_bytes must be positive")
        self._api_key = api_key
        self.vertex_project = vertex_project
        self.vertex_location = vertex_location
        self.base_url = base_url
        self.models = {**DEFAULT_MODELS, **(models or {})}
        self.policy = policy
        self.poll_seconds = poll_seconds
        self.timeout_seconds = timeout_seconds
        self.max_video_bytes = max_video_bytes
        self.download_timeout_seconds = download_timeout_seconds
        self._credentials = credentials
        """Explicit credentials for project mode (tests, workload identity); default ADC."""
        self._client: GenaiClient | None = None
        self._files = VideoFiles(self.name)

    @classmethod
    def from_settings(cls, settings: Settings) -> GoogleEngine:
        """The engine as configured by ``REELFORGE_GOOGLE_*``; the router calls this."""
        key = settings.google_api_key.get_secret_value().strip() if settings.google_api_key else ""
        return cls(
            policy=FetchPolicy.from_settings(settings),
            api_key=key or None,
            vertex_project=settings.google_vertex_project or None,
            vertex_location=settings.google_vertex_location,
            base_url=settings.google_base_url or None,
            models=settings.google_models,
            poll_seconds=settings.google_poll_seconds,
            timeout_seconds=settings.google_timeout_seconds,
            max_video_bytes=settings.max_video_bytes,
        )

    def __repr__(self) -> str:
        mode = f"vertex project {self.vertex_project}" if self.vertex_project else "api key"
        return f"GoogleEngine({mode}, base_url={self.base_url!r})"

    def capabilities(self) -> Capabilities:
        return Capabilities(
            models=frozenset(self.models),
            text_to_video=True,
            image_to_video=True,
            audio=any(_is_veo3(model) for model in self.models.values()),
            enhances_prompt=True,
        )

    def load(self) -> None:
        """Build the SDK client (no request is made; credentials are checked by the first)."""
        self._sdk()

    def close(self) -> None:
        client, self._client = self._client, None
        close = getattr(client, "close", None)  # older google-genai releases have none
        if close is not None:
            close()
        self._files.close()

    def _sdk(self) -> GenaiClient:
        if self._client is not None:
            return self._client
        try:
            from google import genai
            from google.genai import types
        except ImportError:
            raise ServiceUnavailable(
                "the google engine needs the google-genai package: pip install 'reelforge[google]'"
            ) from None
        options = types.HttpOptions(
            base_url=self.base_url, timeout=int(REQUEST_TIMEOUT_SECONDS * 1000)
        )
        if self.vertex_project:
            self._client = genai.Client(
                vertexai=True,
                project=self.vertex_project,
                location=self.vertex_location,
                credentials=self._credentials,
                http_options=options,
            )
        else:
            self._client = genai.Client(vertexai=True, api_key=self._api_key, http_options=options)
        return self._client

    def model_for(self, model: str) -> str:
        """The Google model id serving a published model."""
        google_model = self.models.get(model)
        if not google_model:
            raise ServiceUnavailable(
                f"no Google model is configured for {model}; the operator can map one with "
                "REELFORGE_GOOGLE_MODELS"
            )
        return google_model

    # -- one generation --------------------------------------------------------------

    def generate(self, request: GenerationRequest, inputs: Inputs, progress: Progress) -> Clip:
        """Start (or resume) the operation, wait until it is done, store the video."""
        pacer = Pacer(progress)
        operation_name, deadline = self._start(request, inputs, progress, pacer)
        log = {"job_id": request.job_id, "operation": operation_name}

        operation = follow_upstream(
            _Follower(self, operation_name, pacer),
            pacer=pacer,
            upstream_id=operation_name,
            interval_seconds=self.poll_seconds,
            deadline=deadline,
            timeout_seconds=self.timeout_seconds,
            log_extra=log,
        )
        path = self._files.new_path(request.job_id or operation_name.rsplit("/", 1)[-1])
        self._save_video(operation, operation_name, path, pacer)
        pacer.report(PROGRESS_DOWNLOADED, "checking video")
        clip = finished_clip(path, {"upstream_id": operation_name})
        logger.info("google video received", extra=log)
        return clip

    def _start(
        self, request: GenerationRequest, inputs: Inputs, progress: Progress, pacer: Pacer
    ) -> tuple[str, float]:
        """The operation name (resumed or new) and the deadline on ``pacer.clock``."""
        state = request.engine_state
        saved = state.get("operation")
        if isinstance(saved, str) and saved:
            submitted_at = state.get("submitted_at")
            spent = time.time() - submitted_at if isinstance(submitted_at, int | float) else 0.0
            logger.info(
                "resuming google operation", extra={"job_id": request.job_id, "operation": saved}
            )
            pacer.report(PROGRESS_QUEUED, "resuming")
            return saved, pacer.clock() + max(self.timeout_seconds - max(spent, 0.0), 0.0)
        google_model = self.model_for(request.model)
        pacer.report(PROGRESS_SUBMITTING, "submitting")
        source, config = self.request_parts(request, inputs, google_model)
        deadline = pacer.clock() + self.timeout_seconds

        def create() -> str:
            operation = self._call(
                lambda client: client.models.generate_videos(
                    model=google_model, source=source, config=config
                ),
                creating=True,
                model=google_model,
            )
            if not operation.name:
                raise UpstreamError("Google answered the request without an operation name")
            return operation.name

        def on_timeout() -> Exception:
            return UpstreamError("Google did not accept the generation in time")

        name = poll_until(
            create,
            pacer=pacer,
            interval_seconds=self.poll_seconds,
            deadline=deadline,
            on_timeout=on_timeout,
            what="starting the generation",
        )
        save_engine_state(
            progress, {"operation": name, "google_model": google_model, "submitted_at": time.time()}
        )
        logger.info("google operation started", extra={"job_id": request.job_id, "operation": name})
        return name, deadline

    def request_parts(
        self, request: GenerationRequest, inputs: Inputs, google_model: str
    ) -> tuple[genai_types.GenerateVideosSource, genai_types.GenerateVideosConfig]:
        """The SDK's ``source`` and ``config`` for ``request`` (see the module docstring)."""
        from google.genai import types

        def image(picture: Any) -> types.Image:
            data, mime = encode_image(picture)
            return types.Image(image_bytes=data, mime_type=mime)

        veo3 = _is_veo3(google_model)
        config = types.GenerateVideosConfig(
            number_of_videos=1,
            duration_seconds=request.duration_seconds,
            aspect_ratio=request.aspect_ratio,
            negative_prompt=request.negative_prompt or None,
            seed=request.seed,
            enhance_prompt=request.enhance_prompt,
            generate_audio=request.generate_audio if veo3 else None,
            resolution=request.resolution.lower() if veo3 else None,
            last_frame=image(inputs.tail_image) if inputs.tail_image is not None else None,
        )
        source = types.GenerateVideosSource(
            prompt=request.original_prompt or request.prompt,
            image=image(inputs.image) if inputs.image is not None else None,
        )
        return source, config

    def get(self, operation_name: str) -> genai_types.GenerateVideosOperation:
        """The operation's current state (one request, no retries)."""
        from google.genai import types

        return self._call(
            lambda client: client.operations.get(types.GenerateVideosOperation(name=operation_name))
        )

    def _save_video(
        self,
        operation: genai_types.GenerateVideosOperation,
        operation_name: str,
        path: Path,
        pacer: Pacer,
    ) -> None:
        response = operation.response or operation.result
        generated = (response.generated_videos or []) if response is not None else []
        videos = [item.video for item in generated if item.video is not None]
        if not videos:
            if response is not None and response.rai_media_filtered_count:
                reasons = "; ".join(response.rai_media_filtered_reasons or [])
                raise UpstreamError(
                    "upstream generation failed: Google's safety filters withheld the video"
                    + (f": {reasons}" if reasons else "")
                )
            raise UpstreamError(f"the upstream operation {operation_name} finished without a video")
        video = videos[0]
        if video.video_bytes:
            if len(video.video_bytes) > self.max_video_bytes:
                raise UpstreamError(
                    "the finished video could not be downloaded from upstream: video is larger "
                    f"than {format_size(self.max_video_bytes)}"
                )
            path.write_bytes(video.video_bytes)
            return
        uri = video.uri or ""
        if uri.startswith(("http://", "https://")):
            download_video(
                uri,
                path,
                policy=self.policy,
                max_bytes=self.max_video_bytes,
                pacer=pacer,
                timeout_seconds=self.download_timeout_seconds,
            )
            return
        logger.error(
            "google returned the video at a location reelforge cannot read",
            extra={"operation": operation_name, "scheme": uri.partition(":")[0][:10]},
        )
        raise UpstreamError(
            "the upstream stored the video where reelforge cannot read it; contact the operator"
        )

    def _call(
        self, call: Callable[[GenaiClient], T], *, creating: bool = False, model: str = ""
    ) -> T:
        """Run one SDK call, turning its failures into ``Transient`` or domain errors."""
        from google.genai import errors as genai_errors

        try:
            return call(self._sdk())
        except genai_errors.APIError as error:
            raise self._api_failure(error, creating=creating, model=model) from None
        except (ServiceUnavailable, GenerationFailed, Transient):
            raise
        except Exception as error:
            failure = _other_failure(self.name, error, creating=creating)
            if failure is None:
                raise
            raise failure from None

    def _api_failure(self, error: Any, *, creating: bool, model: str) -> Exception:
        code = int(error.code or 0)
        status = str(error.status or "")
        message = str(error.message or status or f"HTTP {code}")[:500]
        if code in (401, 403) or status in AUTH_STATUSES or _reasons(error) & AUTH_REASONS:
            return auth_rejected(self.name, code, message)
        if code in (CREATE_RETRY_CODES if creating else RETRY_CODES):
            response = getattr(error, "response", None)
            headers = getattr(response, "headers", None) or {}
            return Transient(f"HTTP {code}: {message}", _retry_after(headers.get("retry-after")))
        if creating and code >= 500:
            return _maybe_created(f"HTTP {code}: {message}")
        if code == 404 and creating:
            logger.error("google model not found", extra={"model": model, "detail": message})
            return ServiceUnavailable(
                f"the Google model {model} is not available to this service's account; "
                "contact the operator"
            )
        if code == 404:
            return UpstreamError(f"Google no longer knows this generation: {message}")
        return UpstreamError(f"Google refused the request: {message}")


class _Follower:
    """One poll for ``poll_until``: the finished operation, or ``None`` while it runs."""

    def __init__(self, engine: GoogleEngine, operation_name: str, pacer: Pacer) -> None:
        self._engine = engine
        self._name = operation_name
        self._pacer = pacer
        self._since: float | None = None

    def __call__(self) -> genai_types.GenerateVideosOperation | None:
        operation = self._engine.get(self._name)
        if operation.error:
            code = operation.error.get("code")
            message = operation.error.get("message") or "no reason given"
            logger.info("google operation failed", extra={"operation": self._name, "code": code})
            raise UpstreamError(f"upstream generation failed: {message}")
        if operation.done:
            return operation
        clock = self._pacer.clock
        if self._since is None:
            self._since = clock()
        since = self._since
        self._pacer.report(
            lambda: generating_progress(clock() - since, TYPICAL_SECONDS), "generating"
        )
        return None


def _is_veo3(google_model: str) -> bool:
    """Veo 3 models take ``generateAudio`` and ``resolution``; Veo 2 refuses them."""
    return google_model.rsplit("/", 1)[-1].startswith("veo-3")


def _reasons(error: Any) -> set[str]:
    """``ErrorInfo`` reasons in a Google error body."""
    details = error.details if isinstance(error.details, dict) else {}
    body = details.get("error", details)
    found = set()
    for item in body.get("details", []) if isinstance(body, dict) else []:
        if isinstance(item, dict) and isinstance(item.get("reason"), str):
            found.add(item["reason"])
    return found


def _retry_after(value: str | None) -> float | None:
    from reelforge.client.errors import parse_retry_after

    return parse_retry_after(value)


def _other_failure(engine: str, error: Exception, *, creating: bool) -> Exception | None:
    """Transport and credential failures raised below the SDK, or ``None`` if unknown."""
    names = {cls.__name__ for cls in type(error).__mro__}
    module = type(error).__module__
    if module.startswith("google.auth"):
        if "TransportError" in names:
            return Transient(f"could not reach Google's token service ({type(error).__name__})")
        return auth_rejected(engine, "credentials", f"{type(error).__name__}: {error}")
    if not module.startswith(("httpx", "httpcore", "requests", "urllib3", "aiohttp")):
        return None
    if names & _NOT_SENT:
        return Transient(f"could not connect ({type(error).__name__})")
    if names & _TRANSPORT:
        if creating:
            return _maybe_created(type(error).__name__)
        return Transient(f"the connection failed ({type(error).__name__})")
    return None


def _maybe_created(what: str) -> UpstreamError:
    return UpstreamError(
        f"Google failed while starting the generation ({what}); it was not retried because it "
        "may have started anyway and would be charged twice. Try again"
    )
