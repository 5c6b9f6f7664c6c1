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

**Models and parameters.** Each published model maps to a Google model id and its
fields to the SDK's parameters as ``google_models`` documents; ``REELFORGE_GOOGLE_MODELS``
(``veo2=veo-2.0-generate-001,...``) overrides any id. What Google does not offer on a
model (reference images on Veo 3.0, say) is refused before anything is paid for.

**Waiting and resuming** are ``UpstreamEngine``'s, as for the ``aimlapi`` engine: the
operation name is saved as engine state as soon as Google returns it (a later attempt of
the job polls it instead of starting, and paying for, another), polls start at
``REELFORGE_GOOGLE_POLL_SECONDS``, and the deadline is ``REELFORGE_GOOGLE_TIMEOUT_SECONDS``.
The SDK's own retries are switched off so that retries happen in one place, where they
report progress and wake on cancellation. Google returns the video inline (base64)
unless a storage bucket is configured, which this engine never asks for; an http(s) URI
is downloaded through the SSRF-safe fetcher.

**Cancelling upstream.** google-genai 3.x has no call to cancel a video operation, so
``cancel_upstream`` keeps the default (nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from reelforge.engines import google_models
from reelforge.engines.base import Capabilities, GenerationRequest, Inputs
from reelforge.engines.google_models import DEFAULT_MODELS
from reelforge.engines.upstream import (
    Done,
    Pending,
    Progress,
    Transient,
    UpstreamEngine,
    UpstreamOptions,
    auth_rejected,
    maybe_started,
    write_video,
)
from reelforge.errors import EngineError, ServiceUnavailable, UpstreamError
from reelforge.retrying import (
    RETRYABLE_STATUSES,
    SAFE_CREATE_RETRY_STATUSES,
    never_sent,
    parse_retry_after,
)
from reelforge.settings import Settings

if TYPE_CHECKING:
    from google.genai import Client as GenaiClient
    from google.genai import types as genai_types

logger = logging.getLogger(__name__)

T = TypeVar("T")

KEY_ENV = "REELFORGE_GOOGLE_API_KEY"
PROJECT_ENV = "REELFORGE_GOOGLE_VERTEX_PROJECT"
REQUEST_TIMEOUT_SECONDS = 120.0
"""Per HTTP request; a finished operation carries the whole video, base64-encoded."""

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
_TRANSPORT = frozenset({"TransportError", "RequestError", "TimeoutException"})
_TRANSPORT_MODULES = ("httpx", "httpcore", "requests", "urllib3", "aiohttp")

Payload = tuple[str, "genai_types.GenerateVideosSource", "genai_types.GenerateVideosConfig"]
"""What a create sends: the Google model id, the SDK's ``source`` and ``config``."""


class GoogleEngine(UpstreamEngine[Payload, "genai_types.GenerateVideosOperation"]):
    """Generates with Veo on Google's API; one instance serves every worker thread."""

    name = "google"
    service = "Google"
    state_key = "operation"
    typical_seconds = 60.0
    """A typical Veo generation on Vertex AI."""

    def __init__(
        self,
        *,
        options: UpstreamOptions,
        api_key: str | None = None,
        vertex_project: str | None = None,
        vertex_location: str | None = None,
        base_url: str | None = None,
        models: Mapping[str, str] | None = None,
        credentials: Any = None,
    ) -> None:
        """An API key, or a Vertex project and its location."""
        if not api_key and not vertex_project:
            raise ServiceUnavailable(
                f"this model is served through Google's API, but the operator has set "
                f"neither {KEY_ENV} nor {PROJECT_ENV}"
            )
        if vertex_project and not vertex_location:
            raise ValueError("vertex_project needs a vertex_location")
        super().__init__(options)
        self._api_key = api_key
        self.vertex_project = vertex_project
        self.vertex_location = vertex_location
        self.base_url = base_url
        self.models = {**DEFAULT_MODELS, **(models or {})}
        self._credentials = credentials
        """Explicit credentials for project mode (tests, workload identity); default ADC."""
        self._client: GenaiClient | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> GoogleEngine:
        """The engine as configured by ``REELFORGE_GOOGLE_*``; the router calls this."""
        key = settings.google_api_key.get_secret_value().strip() if settings.google_api_key else ""
        return cls(
            options=UpstreamOptions.from_settings(settings, "google"),
            api_key=key or None,
            vertex_project=settings.google_vertex_project or None,
            vertex_location=settings.google_vertex_location,
            base_url=settings.google_base_url or None,
            models=settings.google_models,
        )

    def __repr__(self) -> str:
        mode = f"vertex project {self.vertex_project}" if self.vertex_project else "api key"
        return f"GoogleEngine({mode}, base_url={self.base_url!r})"

    def capabilities(self, model: str) -> Capabilities:
        """What Google offers on the Veo model this published model maps to."""
        inputs = google_models.inputs_for(self.models.get(model))
        return Capabilities(inputs=inputs, enhances_prompt=True)

    def load(self) -> None:
        """Build the SDK client (no request is made; credentials are checked by the first)."""
        self._sdk()

    def close(self) -> None:
        client, self._client = self._client, None
        close = getattr(client, "close", None)  # older google-genai releases have none
        if close is not None:
            close()
        super().close()

    def _sdk(self) -> GenaiClient:
        if self._client is not None:
            return self._client
        try:
            from google import genai
            from google.genai import types
        except ImportError:
            raise ServiceUnavailable(
                "the google engine needs the google-genai package: "
                "pip install -e '.[google]' in the clone"
            ) from None
        http_options = types.HttpOptions(
            base_url=self.base_url,
            timeout=int(REQUEST_TIMEOUT_SECONDS * 1000),
            retry_options=types.HttpRetryOptions(attempts=1),  # UpstreamEngine retries
        )
        if self.vertex_project:
            self._client = genai.Client(
                vertexai=True,
                project=self.vertex_project,
                location=self.vertex_location,
                credentials=self._credentials,
                http_options=http_options,
            )
        else:
            self._client = genai.Client(
                vertexai=True, api_key=self._api_key, http_options=http_options
            )
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

    # -- the hooks -----------------------------------------------------------------------

    def prepare(self, request: GenerationRequest, inputs: Inputs) -> Payload:
        google_model = self.model_for(request.model)
        return (google_model, *self.request_parts(request, inputs, google_model))

    def saved_state(self, request: GenerationRequest, upstream_id: str) -> dict[str, Any]:
        return {
            **super().saved_state(request, upstream_id),
            "google_model": self.model_for(request.model),
        }

    def submit(self, payload: Payload) -> str:
        google_model, source, config = payload
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

    def poll(self, upstream_id: str) -> Pending | Done[genai_types.GenerateVideosOperation]:
        operation = self.get(upstream_id)
        if operation.error:
            code = operation.error.get("code")
            message = operation.error.get("message") or "no reason given"
            logger.info("google operation failed", extra={"operation": upstream_id, "code": code})
            raise UpstreamError(f"upstream generation failed: {message}")
        if operation.done:
            return Done(operation)
        return Pending("generating")

    def fetch_result(
        self, result: genai_types.GenerateVideosOperation, path: Path, progress: Progress
    ) -> float | None:
        """The video, inline or at an http(s) URI; Google reports no credits."""
        response = result.response or result.result
        generated = (response.generated_videos or []) if response is not None else []
        videos = [item.video for item in generated if item.video is not None]
        if not videos:
            if response is not None and response.rai_media_filtered_count:
                reasons = "; ".join(response.rai_media_filtered_reasons or [])
                raise UpstreamError(
                    "upstream generation failed: Google's safety filters withheld the video"
                    + (f": {reasons}" if reasons else "")
                )
            raise UpstreamError(f"the upstream operation {result.name} finished without a video")
        video = videos[0]
        if video.video_bytes:
            write_video(video.video_bytes, path, max_bytes=self.options.max_video_bytes)
            return None
        uri = video.uri or ""
        if uri.startswith(("http://", "https://")):
            self.download(uri, path, progress)
            return None
        logger.error(
            "google returned the video at a location reelforge cannot read",
            extra={"operation": result.name, "scheme": uri.partition(":")[0][:10]},
        )
        raise UpstreamError(
            "the upstream stored the video where reelforge cannot read it; contact the operator"
        )

    # -- the SDK -------------------------------------------------------------------------

    def request_parts(
        self, request: GenerationRequest, inputs: Inputs, google_model: str
    ) -> tuple[genai_types.GenerateVideosSource, genai_types.GenerateVideosConfig]:
        """The SDK's ``source`` and ``config`` for ``request`` (see ``google_models``)."""
        return google_models.request_parts(request, inputs, google_model)

    def get(self, operation_name: str) -> genai_types.GenerateVideosOperation:
        """The operation's current state (one request, no retries)."""
        from google.genai import types

        return self._call(
            lambda client: client.operations.get(types.GenerateVideosOperation(name=operation_name))
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
        except (ServiceUnavailable, EngineError, Transient):
            raise
        except Exception as error:
            failure = self._other_failure(error, creating=creating)
            if failure is None:
                raise
            raise failure from None

    def _api_failure(self, error: Any, *, creating: bool, model: str) -> Exception:
        code = int(error.code or 0)
        status = str(error.status or "")
        message = str(error.message or status or f"HTTP {code}")[:500]
        if code in (401, 403) or status in AUTH_STATUSES or _reasons(error) & AUTH_REASONS:
            return auth_rejected(self.name, code, message)
        if code in (SAFE_CREATE_RETRY_STATUSES if creating else RETRYABLE_STATUSES):
            response = getattr(error, "response", None)
            headers = getattr(response, "headers", None) or {}
            retry_after = parse_retry_after(headers.get("retry-after"))
            return Transient(f"HTTP {code}: {message}", retry_after)
        if creating and code >= 500:
            return maybe_started(self.service, f"HTTP {code}: {message}")
        if code == 404 and creating:
            logger.error("google model not found", extra={"model": model, "detail": message})
            return ServiceUnavailable(
                f"the Google model {model} is not available to this service's account; "
                "contact the operator"
            )
        if code == 404:
            return UpstreamError(f"Google no longer knows this generation: {message}")
        return UpstreamError(f"Google refused the request: {message}")

    def _other_failure(self, error: Exception, *, creating: bool) -> Exception | None:
        """Transport and credential failures raised below the SDK, or ``None`` if unknown."""
        names = {cls.__name__ for cls in type(error).__mro__}
        module = type(error).__module__
        if module.startswith("google.auth"):
            if "TransportError" in names:
                return Transient(f"could not reach Google's token service ({type(error).__name__})")
            return auth_rejected(self.name, "credentials", f"{type(error).__name__}: {error}")
        if not module.startswith(_TRANSPORT_MODULES):
            return None
        if never_sent(error):
            return Transient(f"could not connect ({type(error).__name__})")
        if names & _TRANSPORT:
            if creating:
                return maybe_started(self.service, type(error).__name__)
            return Transient(f"the connection failed ({type(error).__name__})")
        return None


def _reasons(error: Any) -> set[str]:
    """``ErrorInfo`` reasons in a Google error body."""
    details = error.details if isinstance(error.details, dict) else {}
    body = details.get("error", details)
    found = set()
    for item in body.get("details", []) if isinstance(body, dict) else []:
        if isinstance(item, dict) and isinstance(item.get("reason"), str):
            found.add(item["reason"])
    return found
