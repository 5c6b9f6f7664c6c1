"""The ``openai-videos`` engine: any server that speaks OpenAI's ``/v1/videos``.

vLLM-Omni, SGLang Diffusion and another reelforge all serve this protocol in front of
far faster GPU execution than an in-process diffusers call; reelforge adds what they
lack (keys, credits, durable jobs, webhooks) and drives them as an upstream. Several
instances can be configured (``[engines.<name>]``, ``kind = "openai-videos"``), each
with its base URL, key, model map and extra create fields.

The protocol, as vLLM-Omni documents and implements it (``docs/serving/videos_api.md``
and ``vllm_omni/entrypoints/openai/protocol/videos.py`` in github:vllm-project/vllm-omni):

* ``POST /v1/videos``, ``multipart/form-data`` (JSON where ``request_format = "json"``):
  ``prompt``, ``model``, ``seconds`` (a string of digits), ``size`` (``WIDTHxHEIGHT``),
  ``input_reference`` (an uploaded image for image-to-video), and the extensions
  ``seed``, ``negative_prompt``, ``generate_sound``; steps and guidance
  (``num_inference_steps``, ``guidance_scale``) come from the instance's
  ``extra_fields``. The answer is a video object ``{id, status: "queued", ...}``.
* ``GET /v1/videos/{id}``: ``status`` ``queued`` | ``in_progress`` | ``completed`` |
  ``failed``, ``progress`` 0-100, ``error: {code, message}``.
* ``GET /v1/videos/{id}/content``: the MP4. ``DELETE /v1/videos/{id}`` aborts the GPU
  work (vLLM-Omni issues an engine abort) and deletes the job.

Failures are classified as ``aimlapi``'s are, with two differences that follow from
what these servers are. A create answered 503 is retried (and, past its retries, fails
over): these servers answer 503 while loading or overloaded, before admitting anything.
A ``failed`` generation is marked ``unbilled``: a self-hosted server bills nothing and a
reelforge upstream charges only completed videos, so a route may try its next engine.
The video is fetched from the configured server with its key (an operator's address,
so the SSRF guard for users' URLs does not apply), capped at ``max_video_bytes``.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from pathlib import Path
from typing import Any

import httpx

from reelforge import __version__
from reelforge.engines.base import Capabilities, GenerationRequest, Inputs
from reelforge.engines.upstream import (
    PROGRESS_DOWNLOADED,
    PROGRESS_GENERATED,
    Done,
    Pending,
    Progress,
    Transient,
    UpstreamEngine,
    UpstreamOptions,
    auth_rejected,
    encode_image,
    maybe_started,
    service_root,
)
from reelforge.errors import ConfigurationError, UpstreamError, unbilled
from reelforge.media.fetch import format_size
from reelforge.retrying import RETRYABLE_STATUSES, never_sent, parse_retry_after
from reelforge.settings import EngineInstance, Settings

logger = logging.getLogger(__name__)

VIDEOS_PATH = "/v1/videos"
USER_AGENT = f"reelforge/{__version__} (openai-videos engine)"
REQUEST_TIMEOUT_SECONDS = 60.0
CREATE_RETRY_STATUSES = frozenset({408, 429, 503})
"""Answers to a create that mean nothing was admitted (see the module's text)."""
DOWNLOAD_ATTEMPTS = 3
DOWNLOAD_CHUNK_BYTES = 256 * 1024
CAPABILITIES = Capabilities(inputs=frozenset({"text", "image"}), enhances_prompt=False)
"""A prompt and an optional first frame (``input_reference``); prompts are enhanced here."""


class OpenAIVideosEngine(UpstreamEngine[dict[str, Any], str]):
    """One configured ``/v1/videos`` server; one instance serves every worker thread."""

    name = "openai-videos"
    service = "the video server"
    typical_seconds = 120.0

    def __init__(
        self,
        instance: str,
        config: EngineInstance,
        *,
        options: UpstreamOptions,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(options)
        self.name = instance  # type: ignore[misc]  # the instance's name, in logs and facts
        self.config = config
        self.base_url = base_url(instance, config)
        key = config.api_key.get_secret_value().strip() if config.api_key else ""
        headers = {"User-Agent": USER_AGENT}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._http = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            timeout=REQUEST_TIMEOUT_SECONDS,
            headers=headers,
            follow_redirects=False,
        )

    @classmethod
    def from_settings(cls, settings: Settings, instance: str) -> OpenAIVideosEngine:
        options = UpstreamOptions.for_instance(settings, instance)
        return cls(instance, settings.engines[instance], options=options)

    def __repr__(self) -> str:
        return f"OpenAIVideosEngine({self.name!r}, base_url={self.base_url!r})"

    def capabilities(self, model: str) -> Capabilities:
        return CAPABILITIES

    def serves(self, model: str) -> bool:
        """Whether this server makes ``model`` (its model map names it, or is empty)."""
        return not self.config.models or model in self.config.models

    def close(self) -> None:
        self._http.close()
        super().close()

    # -- the hooks -----------------------------------------------------------------------

    def prepare(self, request: GenerationRequest, inputs: Inputs) -> dict[str, Any]:
        """The create's fields (strings, as a form carries them) and its upload."""
        fields: dict[str, Any] = {
            "model": self.config.models.get(request.model, request.model),
            "prompt": request.prompt,
            "seconds": str(request.duration_seconds),
            "size": f"{request.width}x{request.height}",
            "seed": request.seed,
        }
        if request.negative_prompt:
            fields["negative_prompt"] = request.negative_prompt
        if request.generate_audio:
            fields["generate_sound"] = True
        fields.update(self.config.extra_fields)
        upload = encode_image(inputs.image) if inputs.image is not None else None
        return {"fields": fields, "upload": upload}

    def submit(self, payload: dict[str, Any]) -> str:
        fields, upload = payload["fields"], payload["upload"]
        if self.config.request_format == "json":
            body: dict[str, Any] = dict(fields)
            if upload is not None:
                data, mime = upload
                body["input_reference"] = {
                    "image_url": f"data:{mime};base64,{base64.b64encode(data).decode()}"
                }
            answer = self._call("POST", VIDEOS_PATH, json=body)
        else:
            # Every field as a part without a file name: multipart even with no upload.
            parts: dict[str, Any] = {
                name: (None, _form_value(value)) for name, value in fields.items()
            }
            if upload is not None:
                data, mime = upload
                parts["input_reference"] = ("input.jpg", data, mime)
            answer = self._call("POST", VIDEOS_PATH, files=parts)
        video_id = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(video_id, str) or not video_id:
            raise maybe_started(self.service, "an answer without an id")
        return video_id

    def poll(self, upstream_id: str) -> Pending | Done[str]:
        video = self._call("GET", f"{VIDEOS_PATH}/{upstream_id}")
        status = video.get("status") if isinstance(video, dict) else None
        if status == "completed":
            return Done(upstream_id)
        if status == "failed":
            error = video.get("error") or {}
            message = error.get("message") if isinstance(error, dict) else None
            raise unbilled(
                UpstreamError(
                    f"the video server {self.name} failed the generation: "
                    f"{str(message or 'no reason given')[:300]}"
                )
            )
        if status == "queued":
            return Pending("queued")
        if status == "in_progress":
            share = video.get("progress")
            estimate = share / 100 if isinstance(share, int | float) and share > 0 else None
            return Pending("generating", estimate)
        raise Transient(f"unknown status {str(status)[:40]!r}")

    def fetch_result(self, result: str, path: Path, progress: Progress) -> float | None:
        for attempt in range(DOWNLOAD_ATTEMPTS):
            try:
                self._download(result, path, progress)
                return None
            except Transient as failure:
                path.unlink(missing_ok=True)
                if attempt + 1 == DOWNLOAD_ATTEMPTS:
                    raise UpstreamError(
                        f"the finished video could not be downloaded from {self.name}: "
                        f"{failure.message}"
                    ) from None
                progress.wait(failure.retry_after_seconds or self.options.poll_seconds)
        return None  # pragma: no cover  (the loop returns or raises)

    def cancel_upstream(self, upstream_id: str) -> None:
        """``DELETE``: vLLM-Omni aborts the GPU work; reelforge cancels and deletes."""
        response = self._http.delete(f"{VIDEOS_PATH}/{upstream_id}", timeout=10.0)
        if response.status_code not in (200, 204, 404):
            raise UpstreamError(f"cancel answered HTTP {response.status_code}")

    # -- HTTP ----------------------------------------------------------------------------

    def _download(self, video_id: str, path: Path, progress: Progress) -> None:
        limit = self.options.max_video_bytes
        started = time.monotonic()
        try:
            with self._http.stream(
                "GET",
                f"{VIDEOS_PATH}/{video_id}/content",
                timeout=httpx.Timeout(REQUEST_TIMEOUT_SECONDS),
            ) as response:
                if response.status_code != 200:
                    response.read()
                    self._raise_for(response, creating=False)
                declared = int(response.headers.get("content-length") or 0) or None
                if declared and declared > limit:
                    raise UpstreamError(f"the video is larger than {format_size(limit)}")
                written = 0
                with path.open("wb") as out:
                    for chunk in response.iter_bytes(DOWNLOAD_CHUNK_BYTES):
                        written += len(chunk)
                        if written > limit:
                            raise UpstreamError(f"the video is larger than {format_size(limit)}")
                        if time.monotonic() - started > self.options.download_timeout_seconds:
                            raise Transient("the download took too long")
                        out.write(chunk)
                        share = written / declared if declared else 0.5
                        progress.set(
                            PROGRESS_GENERATED
                            + (PROGRESS_DOWNLOADED - PROGRESS_GENERATED) * min(share, 1.0),
                            "downloading",
                        )
        except httpx.TransportError as error:
            raise Transient(f"the download failed ({type(error).__name__})") from None

    def _call(self, method: str, path: str, **send: Any) -> Any:
        """One request; ``Transient`` for what may be retried, domain errors otherwise."""
        creating = method == "POST"
        try:
            response = self._http.request(method, path, **send)
        except httpx.TransportError as error:
            if never_sent(error):
                raise Transient(f"could not connect ({type(error).__name__})") from None
            if creating:
                raise maybe_started(self.service, type(error).__name__) from None
            raise Transient(f"the connection failed ({type(error).__name__})") from None
        if response.is_success:
            try:
                return response.json()
            except ValueError:
                if creating:
                    raise maybe_started(self.service, "an unreadable answer") from None
                raise Transient(f"unreadable answer (HTTP {response.status_code})") from None
        self._raise_for(response, creating=creating)

    def _raise_for(self, response: httpx.Response, *, creating: bool) -> None:
        status = response.status_code
        message = error_message(response)
        if status in (401, 403):
            raise auth_rejected(self.name, status, message)
        if status in (CREATE_RETRY_STATUSES if creating else RETRYABLE_STATUSES):
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            raise Transient(f"HTTP {status}: {message}", retry_after)
        if creating and status >= 500:
            raise maybe_started(self.service, f"HTTP {status}: {message}")
        if status == 404 and not creating:
            raise UpstreamError(f"the video server {self.name} no longer knows this video")
        raise UpstreamError(f"the video server {self.name} refused the request: {message}")


def _form_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def error_message(response: httpx.Response) -> str:
    """The message of an OpenAI (``{error: {message}}``), FastAPI (``{detail}``) or
    AI/ML API (``{message}``) error body, else the status line."""
    try:
        body = response.json()
    except ValueError:
        body = None
    text: object = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            text = error.get("message")
        text = text or body.get("message") or body.get("detail")
        if not isinstance(text, str):
            text = json.dumps(text)[:300] if text else None
    return str(text or response.reason_phrase or f"HTTP {response.status_code}")[:300]


def base_url(instance: str, config: EngineInstance) -> str:
    """The server's root from ``base_url`` (``/v1`` tolerated), or ``ConfigurationError``."""
    root = service_root(config.base_url or "", "/v1")
    if root is None:
        raise ConfigurationError(
            f"engine '{instance}' (openai-videos) needs a base_url such as http://gpu-a:8091"
        )
    return root
