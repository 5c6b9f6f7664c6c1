"""The ``aimlapi`` engine: the real Veo, through the AI/ML API's published video protocol.

reelforge speaks the same protocol on both sides, so this engine is a careful client:
it forwards the validated request with the published field names (``POST
/v2/video/generations``), follows the generation (``GET ?generation_id=``) and downloads
the finished MP4. What a worker needs around that (resume instead of paying twice,
cancellable waiting with retries, the deadline ``aimlapi_timeout_seconds``, progress) is
``UpstreamEngine``'s; here is only the protocol:

* **Which failures may be retried.** Reads: ``reelforge.retrying.RETRYABLE_STATUSES``
  and dropped connections. A create: only when the upstream cannot have started anything
  (connection never established, 408, 429, 503); any other failure fails the job rather
  than risk paying for a second video.
* **Safe inputs and outputs.** Images leave as JPEG data URIs re-encoded from what
  reelforge decoded, never as the user's URLs. The video comes back through the
  SSRF-safe fetcher (``REELFORGE_FETCH_ALLOW`` applies), capped at ``max_video_bytes``,
  without the API key. ``credits_used`` comes from the upstream's ``meta.usage``.

We use httpx directly rather than ``reelforge.client.Client``: the SDK's retries sleep
without reporting progress or waking on cancellation (a 60 s ``Retry-After`` would make a
job uncancellable for a minute), its create probes ``/health`` after ambiguous failures,
and its download sends to any host without address vetting or a size cap. Its response
models, error parsing and retry rules are reused, so both read the protocol the same way.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from reelforge import __version__
from reelforge.client.errors import error_from_response
from reelforge.client.models import Generation, GenerationCreated
from reelforge.engines import aimlapi_models
from reelforge.engines.base import Capabilities, GenerationRequest, Inputs
from reelforge.engines.upstream import (
    Done,
    Pending,
    Progress,
    Transient,
    UpstreamEngine,
    UpstreamOptions,
    auth_rejected,
    maybe_started,
    service_root,
)
from reelforge.errors import ServiceUnavailable, UpstreamError
from reelforge.retrying import (
    RETRYABLE_STATUSES,
    SAFE_CREATE_RETRY_STATUSES,
    never_sent,
    parse_retry_after,
)
from reelforge.settings import Settings

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

KEY_ENV = "REELFORGE_AIMLAPI_KEY"
EXAMPLE_BASE_URL = "https://api.aimlapi.com"
GENERATIONS_PATH = "/v2/video/generations"
USER_AGENT = f"reelforge/{__version__} (aimlapi engine)"


REQUEST_TIMEOUT_SECONDS = 60.0
"""Per HTTP request to the API (a create carries up to two images)."""
QUEUED_STATUSES = frozenset({"queued", "waiting"})


class AimlapiEngine(UpstreamEngine[dict[str, Any], Generation]):
    """Generates with the AI/ML API; one instance serves every worker thread."""

    name = "aimlapi"
    typical_seconds = 45.0
    """How long the AI/ML API quotes for a Veo clip (40-50 s)."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str,
        options: UpstreamOptions,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not api_key:
            raise ServiceUnavailable(f"the aimlapi engine needs an API key: set {KEY_ENV}")
        super().__init__(options)
        self._key = api_key
        self.base_url = _api_root(base_url)
        self._http = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            timeout=REQUEST_TIMEOUT_SECONDS,
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
        )

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
            base_url=settings.aimlapi_base_url,
            options=UpstreamOptions.from_settings(settings, "aimlapi"),
        )

    def __repr__(self) -> str:
        return f"AimlapiEngine(base_url={self.base_url!r})"

    def capabilities(self, model: str) -> Capabilities:
        return aimlapi_models.CAPABILITIES

    def close(self) -> None:
        self._http.close()
        super().close()

    # -- the hooks -----------------------------------------------------------------------

    def prepare(self, request: GenerationRequest, inputs: Inputs) -> dict[str, Any]:
        return self.request_body(request, inputs)

    def request_body(self, request: GenerationRequest, inputs: Inputs) -> dict[str, Any]:
        """The create body, with the published field names of ``request.model``."""
        return aimlapi_models.request_body(request, inputs)

    def submit(self, payload: dict[str, Any]) -> str:
        created = self._call("POST", GenerationCreated, json=payload)
        if not created.id:
            raise UpstreamError("the upstream video service answered a create without an id")
        return created.id

    def poll(self, upstream_id: str) -> Pending | Done[Generation]:
        generation = self.get(upstream_id)
        status = generation.status
        if status == "completed":
            return Done(generation)
        if status == "error":
            name = generation.error.name if generation.error else "Error"
            message = generation.error.message if generation.error else "no reason given"
            raise UpstreamError(f"upstream generation failed: {name}: {message}")
        if status in QUEUED_STATUSES:
            return Pending("queued")
        share = generation.progress / 100 if generation.progress is not None else None
        return Pending("generating", share)

    def fetch_result(self, result: Generation, path: Path, progress: Progress) -> float | None:
        if result.video is None or not result.video.url:
            raise UpstreamError(f"the upstream generation {result.id} completed without a video")
        self.download(result.video.url, path, progress, expected_bytes=result.video.file_size)
        return result.credits_used

    # -- HTTP ----------------------------------------------------------------------------

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
        except httpx.TransportError as error:
            if never_sent(error):
                raise Transient(f"could not connect ({type(error).__name__})") from None
            if creating:
                raise maybe_started(self.service, type(error).__name__) from None
            raise Transient(f"the connection failed ({type(error).__name__})") from None
        status = response.status_code
        if response.is_success:
            try:
                return model.model_validate_json(response.content)
            except ValidationError:
                if creating:
                    raise maybe_started(self.service, "an unreadable answer") from None
                raise Transient(f"unreadable answer (HTTP {status})") from None
        failure = error_from_response(
            status, response.headers, response.content, reason=response.reason_phrase
        )
        message = failure.message[:500]
        if status in (401, 403):
            raise auth_rejected(self.name, status, message)
        if status in (SAFE_CREATE_RETRY_STATUSES if creating else RETRYABLE_STATUSES):
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            raise Transient(f"HTTP {status}: {message}", retry_after)
        if creating and status >= 500:
            raise maybe_started(self.service, f"HTTP {status}: {message}")
        if status == 404 and not creating:
            wanted = (params or {}).get("generation_id", "")
            raise UpstreamError(f"the upstream video service does not know generation {wanted}")
        raise UpstreamError(f"the upstream video service refused the request: {message}")


def _api_root(url: str) -> str:
    """``https://api.aimlapi.com`` from any of the spellings the docs use (``/v2``, ``/``)."""
    root = service_root(url, "/v2")
    if root is None:
        raise ServiceUnavailable(
            f"REELFORGE_AIMLAPI_BASE_URL must be an http(s) URL such as {EXAMPLE_BASE_URL}"
        )
    return root
