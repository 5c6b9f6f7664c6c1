"""The ``fal`` engine: fal's hosted Veo models through its queue API.

The protocol (fal's "Queue" documentation, docs.fal.ai/model-endpoints/queue):

* ``POST {queue}/{endpoint}`` with the model's JSON input and ``Authorization: Key
  <key>`` answers ``{request_id, status_url, response_url, cancel_url}``; an endpoint may
  have a subpath (``fal-ai/veo3.1/image-to-video``), which is used for the submit only:
  status, result and cancel live under the app id (``fal-ai/veo3.1``);
* ``GET .../requests/{id}/status?logs=1``: ``IN_QUEUE`` (with ``queue_position``),
  ``IN_PROGRESS`` (with ``logs``), ``COMPLETED``;
* ``GET .../requests/{id}``: the output, ``{"video": {"url": ...}}`` for Veo, or an error
  status with ``{"detail": ...}``;
* ``PUT .../requests/{id}/cancel``: stops a request that has not started.

Field by field (fal's model pages for ``fal-ai/veo2``, ``fal-ai/veo3``, ``fal-ai/veo3.1``
and their subpaths): ``prompt``, ``negative_prompt``, ``seed``, ``aspect_ratio``,
``duration`` as ``"8s"``, ``resolution`` in lower case (``720p``), ``generate_audio``,
``enhance_prompt``, ``auto_fix``; inputs as data URIs in ``image_url`` (image-to-video),
``first_frame_url``/``last_frame_url`` (first and last frame), ``image_urls`` (reference).
The models fal does not serve (extension, Lite) are not routed here.

Which failures fail over: as every upstream's (``UpstreamEngine``), plus a result that
fal answers with a server error (5xx), which fal does not bill ("server errors are never
charged"), marked ``unbilled``; a 422 (invalid input, content policy) may be billed and
ends the job. We use httpx rather than ``fal-client``: its waits neither report progress
nor wake on cancellation, and we need each answer classified for failover.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from reelforge import __version__
from reelforge.catalog import MODELS
from reelforge.engines.base import Capabilities, GenerationRequest, Inputs
from reelforge.engines.openai_compat import error_message
from reelforge.engines.upstream import (
    Done,
    Pending,
    Progress,
    Transient,
    UpstreamEngine,
    UpstreamOptions,
    auth_rejected,
    image_data_uri,
    maybe_started,
)
from reelforge.errors import UpstreamError, unbilled
from reelforge.retrying import (
    RETRYABLE_STATUSES,
    SAFE_CREATE_RETRY_STATUSES,
    never_sent,
    parse_retry_after,
)
from reelforge.settings import EngineInstance, Settings

logger = logging.getLogger(__name__)

QUEUE_URL = "https://queue.fal.run"
USER_AGENT = f"reelforge/{__version__} (fal engine)"
REQUEST_TIMEOUT_SECONDS = 60.0
MAX_LOG_LINES = 5
"""Newest runner log lines written to our log per poll (fal sends them all each time)."""


@dataclass(frozen=True)
class FalModel:
    endpoint: str
    inputs: frozenset[str]


def _model(endpoint: str, *inputs: str) -> FalModel:
    return FalModel(endpoint, frozenset(inputs))


FAL_MODELS: dict[str, FalModel] = {
    "veo2": _model("fal-ai/veo2", "text"),
    "veo2/image-to-video": _model("fal-ai/veo2/image-to-video", "image"),
    "google/veo3": _model("fal-ai/veo3", "text"),
    "google/veo-3.0-fast": _model("fal-ai/veo3/fast", "text"),
    "google/veo-3.0-i2v": _model("fal-ai/veo3/image-to-video", "image"),
    "google/veo-3.0-i2v-fast": _model("fal-ai/veo3/fast/image-to-video", "image"),
    "google/veo-3.1-t2v": _model("fal-ai/veo3.1", "text"),
    "google/veo-3.1-t2v-fast": _model("fal-ai/veo3.1/fast", "text"),
    "google/veo-3.1-i2v": _model("fal-ai/veo3.1/image-to-video", "image"),
    "google/veo-3.1-i2v-fast": _model("fal-ai/veo3.1/fast/image-to-video", "image"),
    "google/veo-3.1-first-last-image-to-video": _model(
        "fal-ai/veo3.1/first-last-frame-to-video", "image", "last_frame"
    ),
    "google/veo-3.1-first-last-image-to-video-fast": _model(
        "fal-ai/veo3.1/fast/first-last-frame-to-video", "image", "last_frame"
    ),
    "google/veo-3.1-reference-to-video": _model(
        "fal-ai/veo3.1/reference-to-video", "reference_images"
    ),
}
"""Every catalogue model fal serves, and the fal endpoint that makes it."""

PASSED = ("negative_prompt", "seed", "aspect_ratio", "enhance_prompt", "auto_fix")
"""Published fields fal takes under the same name (where the model declares them)."""


def request_body(request: GenerationRequest, inputs: Inputs) -> dict[str, Any]:
    """fal's input for ``request.model``, field by field (see the module's text)."""
    spec = MODELS[request.model]
    declared = {field.name for field in spec.declared}
    resolved = {
        "negative_prompt": request.negative_prompt or None,
        "seed": request.seed,
        "aspect_ratio": request.aspect_ratio,
        "enhance_prompt": request.enhance_prompt,
    }
    body: dict[str, Any] = {
        "prompt": request.original_prompt or request.prompt,
        "duration": f"{request.duration_seconds}s",
    }
    for name in PASSED:
        value = resolved.get(name, request.params.get(name))
        if name in declared and value is not None:
            body[name] = value
    if "resolution" in declared:
        body["resolution"] = request.resolution.lower()
    if "generate_audio" in declared:
        body["generate_audio"] = request.generate_audio
    if inputs.image is not None:
        first = "first_frame_url" if inputs.last_frame is not None else "image_url"
        body[first] = image_data_uri(inputs.image)
    if inputs.last_frame is not None:
        body["last_frame_url"] = image_data_uri(inputs.last_frame)
    if inputs.references:
        body["image_urls"] = [image_data_uri(image) for image in inputs.references]
    return body


def app_id(endpoint: str) -> str:
    """``fal-ai/veo3.1`` of ``fal-ai/veo3.1/image-to-video``: where status lives."""
    return "/".join(endpoint.split("/")[:2])


class FalEngine(UpstreamEngine[tuple[str, dict[str, Any]], str]):
    """fal's queue; the upstream id is ``<app id>/requests/<request id>``."""

    name = "fal"
    service = "fal"
    typical_seconds = 90.0

    def __init__(
        self,
        instance: str,
        config: EngineInstance,
        *,
        options: UpstreamOptions,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(options)
        self.name = instance  # type: ignore[misc]
        key = config.api_key.get_secret_value().strip() if config.api_key else ""
        self.base_url = (config.base_url or QUEUE_URL).rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            timeout=REQUEST_TIMEOUT_SECONDS,
            headers={"User-Agent": USER_AGENT, "Authorization": f"Key {key}"},
            follow_redirects=False,
        )
        self._logged: dict[str, int] = {}

    @classmethod
    def from_settings(cls, settings: Settings, instance: str) -> FalEngine:
        options = UpstreamOptions.for_instance(settings, instance)
        return cls(instance, settings.engines[instance], options=options)

    def __repr__(self) -> str:
        return f"FalEngine({self.name!r}, base_url={self.base_url!r})"

    def serves(self, model: str) -> bool:
        return model in FAL_MODELS

    def capabilities(self, model: str) -> Capabilities:
        served = FAL_MODELS.get(model)
        return Capabilities(inputs=served.inputs if served else frozenset(), enhances_prompt=True)

    def close(self) -> None:
        self._http.close()
        super().close()

    # -- the hooks -----------------------------------------------------------------------

    def prepare(self, request: GenerationRequest, inputs: Inputs) -> tuple[str, dict[str, Any]]:
        served = FAL_MODELS.get(request.model)
        if served is None:
            raise UpstreamError(f"fal does not serve {request.model}")
        return served.endpoint, request_body(request, inputs)

    def submit(self, payload: tuple[str, dict[str, Any]]) -> str:
        endpoint, body = payload
        answer = self._call("POST", f"/{endpoint}", json=body)
        request_id = answer.get("request_id") if isinstance(answer, dict) else None
        if not isinstance(request_id, str) or not request_id:
            raise maybe_started(self.service, "an answer without a request_id")
        return f"{app_id(endpoint)}/requests/{request_id}"

    def poll(self, upstream_id: str) -> Pending | Done[str]:
        status = self._call("GET", f"/{upstream_id}/status", params={"logs": "1"})
        state = status.get("status") if isinstance(status, dict) else None
        self._log_lines(upstream_id, status.get("logs") if isinstance(status, dict) else None)
        if state == "IN_QUEUE":
            position = status.get("queue_position")
            stage = f"queued: {position} ahead" if isinstance(position, int) else "queued"
            return Pending(stage if len(stage) <= 32 else "queued")
        if state == "IN_PROGRESS":
            return Pending("generating")
        if state == "COMPLETED":
            return Done(upstream_id)
        raise Transient(f"unknown status {str(state)[:40]!r}")

    def fetch_result(self, result: str, path: Path, progress: Progress) -> float | None:
        output = self._call("GET", f"/{result}", result=True)
        video = output.get("video") if isinstance(output, dict) else None
        url = video.get("url") if isinstance(video, dict) else None
        if not isinstance(url, str) or not url:
            raise UpstreamError("fal completed the generation without a video")
        size = video.get("file_size")
        self.download(url, path, progress, expected_bytes=size if isinstance(size, int) else None)
        return None

    def cancel_upstream(self, upstream_id: str) -> None:
        response = self._http.put(f"/{upstream_id}/cancel", timeout=10.0)
        if response.status_code not in (200, 202, 400):  # 400: already completed
            raise UpstreamError(f"cancel answered HTTP {response.status_code}")

    # -- HTTP ----------------------------------------------------------------------------

    def _log_lines(self, upstream_id: str, logs: object) -> None:
        """The runner's new log lines (fal repeats all of them on every poll)."""
        if not isinstance(logs, list):
            return
        seen = self._logged.get(upstream_id, 0)
        for entry in logs[max(seen, len(logs) - MAX_LOG_LINES) :]:
            message = entry.get("message") if isinstance(entry, dict) else None
            if isinstance(message, str):
                logger.info("fal log", extra={"upstream_id": upstream_id, "line": message[:300]})
        self._logged[upstream_id] = len(logs)

    def _call(self, method: str, path: str, *, result: bool = False, **send: Any) -> Any:
        creating = method == "POST"
        try:
            response = self._http.request(method, path, **send)
        except httpx.TransportError as error:
            if never_sent(error):
                raise Transient(f"could not connect ({type(error).__name__})") from None
            if creating:
                raise maybe_started(self.service, type(error).__name__) from None
            raise Transient(f"the connection failed ({type(error).__name__})") from None
        status = response.status_code
        if response.is_success:
            try:
                return response.json()
            except ValueError:
                if creating:
                    raise maybe_started(self.service, "an unreadable answer") from None
                raise Transient(f"unreadable answer (HTTP {status})") from None
        message = error_message(response)
        if status in (401, 403):
            raise auth_rejected(self.name, status, message)
        if result and status >= 500:
            # The request ran and failed on fal's side: fal does not bill server errors.
            raise unbilled(UpstreamError(f"fal failed the generation: {message}"))
        if status in (SAFE_CREATE_RETRY_STATUSES if creating else RETRYABLE_STATUSES):
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            raise Transient(f"HTTP {status}: {message}", retry_after)
        if creating and status >= 500:
            raise maybe_started(self.service, f"HTTP {status}: {message}")
        raise UpstreamError(f"fal refused the request: {message}")
