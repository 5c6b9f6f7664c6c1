"""A local fake of Google's Veo REST protocol, as the installed ``google-genai`` SDK speaks it.

google-genai 3.x creates videos only in Vertex AI mode (``generate_videos`` raises in
Gemini Developer API mode), so this fake speaks Vertex AI's long-running predict protocol:

* ``POST /{version}/{resource}:predictLongRunning``, where the model resource is
  ``[projects/{p}/locations/{l}/]publishers/google/models/{model}``, with
  ``{"instances": [{"prompt", "image": {"bytesBase64Encoded", "mimeType"},
  "lastFrame": {...}}], "parameters": {"aspectRatio", "durationSeconds", "negativePrompt",
  "seed", "enhancePrompt", "generateAudio", "resolution", "sampleCount", ...}}``; it
  answers ``{"name": "<model resource>/operations/<id>"}``.
* ``POST /{version}/<model resource>:fetchPredictOperation`` with ``{"operationName"}``;
  it answers ``{"name", "done"}`` and, when done, ``{"response": {"videos":
  [{"bytesBase64Encoded", "mimeType"}]}}`` (or ``gcsUri``/an http URL, see
  ``delivery``), ``{"error": {"code", "message"}}``, or a safety-filtered response with
  ``raiMediaFilteredCount`` and no videos.

Express mode sends the API key in ``x-goog-api-key``; project mode sends an OAuth
``Authorization: Bearer`` token. A wrong key gets Google's real answer (HTTP 400
``INVALID_ARGUMENT`` with reason ``API_KEY_INVALID``), a wrong token HTTP 401.
Operations finish ``seconds`` after creation (real seconds). Prompts containing ``FAIL``
end in an operation error, ``FILTER`` in a safety filter. Faults answer a status instead
of serving; every request is recorded.

    with FakeGoogleVeo(seconds=0.3) as fake:
        client = genai.Client(vertexai=True, api_key=fake.key,
                              http_options=types.HttpOptions(base_url=fake.base_url))
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from fakes._loopback import (
    Fault,
    LoopbackFake,
    LoopbackHandler,
    RecordedRequest,
    retry_after_header,
)

DEFAULT_KEY = "fake-google-api-key"
DEFAULT_TOKEN = "fake-oauth-token"
MODELS = ("veo-2.0-generate-001", "veo-3.0-generate-001", "veo-3.0-fast-generate-001")
FAIL_MARKER = "FAIL"
FILTER_MARKER = "FILTER"
OPERATION_ERROR = (
    3,
    "The prompt could not be submitted. This prompt contains words that violate Vertex AI's "
    "usage guidelines.",
)
FILES_PREFIX = "/files/"

_PREDICT = re.compile(
    r"^/(?P<version>v1(?:beta1)?)/(?P<resource>(?:projects/[^/]+/locations/[^/]+/)?"
    r"publishers/google/models/(?P<model>[^/:]+)):(?P<method>predictLongRunning|fetchPredictOperation)$"
)


@dataclass
class FakeOperation:
    name: str
    model: str
    instance: dict[str, Any]
    parameters: dict[str, Any]
    created: float
    seconds: float


@dataclass
class FakeGoogleVeo(LoopbackFake):
    """The fake server; ``start()``/``stop()`` or use it as a context manager.

    A fault's ``path`` matches any request whose path contains it (``predictLongRunning``,
    ``fetchPredictOperation``, ``/files/``).
    """

    cdn_prefix = FILES_PREFIX

    keys: tuple[str, ...] = (DEFAULT_KEY,)
    tokens: tuple[str, ...] = (DEFAULT_TOKEN,)
    seconds: float = 0.3
    """Real seconds from create to ``done``."""
    delivery: Literal["inline", "gcs", "url"] = "inline"
    """How finished videos come back: base64 in the JSON (Vertex's default without a
    storage URI), a ``gs://`` URI, or an http URL served by this fake as ``localhost``."""
    operations: dict[str, FakeOperation] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def key(self) -> str:
        return self.keys[0]

    @property
    def token(self) -> str:
        return self.tokens[0]

    def _handler_class(self) -> type[LoopbackHandler]:
        return _Handler

    def matching(self, text: str) -> list[RecordedRequest]:
        """Requests whose path contains ``text``."""
        return self.recorded(lambda r: text in r.path)

    def creates(self) -> list[RecordedRequest]:
        return self.matching(":predictLongRunning")

    def polls(self) -> list[RecordedRequest]:
        return self.matching(":fetchPredictOperation")

    # -- what the handler calls ------------------------------------------------------

    def _create(self, resource: str, model: str, body: dict[str, Any]) -> FakeOperation:
        operation = FakeOperation(
            name=f"{resource}/operations/{uuid.uuid4()}",
            model=model,
            instance=body["instances"][0],
            parameters=body.get("parameters") or {},
            created=time.monotonic(),
            seconds=self.seconds,
        )
        with self._lock:
            self.operations[operation.name] = operation
        return operation

    def _present(self, operation: FakeOperation) -> dict[str, Any]:
        answer: dict[str, Any] = {"name": operation.name}
        if time.monotonic() - operation.created < operation.seconds:
            answer["done"] = False
            return answer
        answer["done"] = True
        prompt = operation.instance.get("prompt") or ""
        if FAIL_MARKER in prompt:
            code, message = OPERATION_ERROR
            answer["error"] = {"code": code, "message": message}
            return answer
        response: dict[str, Any] = {
            "@type": "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"
        }
        if FILTER_MARKER in prompt:
            response["raiMediaFilteredCount"] = 1
            response["raiMediaFilteredReasons"] = [
                "Unable to show generated videos. All videos were filtered out because they "
                "violated Vertex AI's usage guidelines."
            ]
        else:
            token = operation.name.rsplit("/", 1)[-1]
            video: dict[str, Any] = {"mimeType": "video/mp4"}
            if self.delivery == "inline":
                video["bytesBase64Encoded"] = base64.b64encode(self.video).decode("ascii")
            elif self.delivery == "gcs":
                video["gcsUri"] = f"gs://fake-bucket/{token}/sample_0.mp4"
            else:
                video["gcsUri"] = f"http://localhost:{self.port}{FILES_PREFIX}{token}.mp4"
            response["videos"] = [video]
        answer["response"] = response
        return answer


def _google_error(code: int, status: str, message: str, reason: str | None = None) -> dict:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if reason is not None:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
                "metadata": {"service": "aiplatform.googleapis.com"},
            }
        ]
    return {"error": error}


class _Handler(LoopbackHandler):
    api: FakeGoogleVeo

    def answer_fault(self, fault: Fault) -> None:
        status = {429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}.get(fault.status, "INTERNAL")
        error = _google_error(fault.status, status, "Injected fault")
        self._json(fault.status, error, retry_after_header(fault))

    def route(self, path: str, body: Any) -> None:
        match = _PREDICT.match(path)
        if match is None or self.command != "POST":
            self._json(404, _google_error(404, "NOT_FOUND", f"Path {path} was not found."))
            return
        if not self._authorized():
            return
        model = match["model"]
        if model not in MODELS:
            message = f"Publisher Model `{match['resource']}` was not found or your project "
            message += "does not have access to it."
            self._json(404, _google_error(404, "NOT_FOUND", message))
            return
        if match["method"] == "predictLongRunning":
            self._create(match["resource"], model, body)
        else:
            self._fetch(body)

    def _authorized(self) -> bool:
        key = self.headers.get("x-goog-api-key")
        if key is not None:
            if key in self.api.keys:
                return True
            error = _google_error(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                reason="API_KEY_INVALID",
            )
            self._json(400, error)
            return False
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token in self.api.tokens:
            return True
        message = "Request had invalid authentication credentials. Expected OAuth 2 access token."
        self._json(401, _google_error(401, "UNAUTHENTICATED", message))
        return False

    def _create(self, resource: str, model: str, body: Any) -> None:
        problem = _validate(model, body)
        if problem is not None:
            self._json(400, _google_error(400, "INVALID_ARGUMENT", problem))
            return
        operation = self.api._create(resource, model, body)
        self._json(200, {"name": operation.name})

    def _fetch(self, body: Any) -> None:
        name = body.get("operationName") if isinstance(body, dict) else None
        operation = self.api.operations.get(name or "")
        if operation is None:
            self._json(404, _google_error(404, "NOT_FOUND", f"Operation {name} not found."))
            return
        self._json(200, self.api._present(operation))


def _validate(model: str, body: Any) -> str | None:
    """The checks Vertex AI makes that a mapping mistake would trip, in its wording."""
    if not isinstance(body, dict) or not isinstance(body.get("instances"), list):
        return "Invalid JSON payload received. Missing instances."
    instance = body["instances"][0] if body["instances"] else {}
    parameters = body.get("parameters") or {}
    if not instance.get("prompt") and not instance.get("image"):
        return "Either a prompt or an image is required."
    for name in ("image", "lastFrame"):
        image = instance.get(name)
        if image is not None:
            try:
                base64.b64decode(image["bytesBase64Encoded"], validate=True)
            except (KeyError, TypeError, ValueError):
                return f"instances[0].{name} must carry bytesBase64Encoded image data."
            if image.get("mimeType") not in ("image/jpeg", "image/png"):
                return f"instances[0].{name}.mimeType must be image/jpeg or image/png."
    veo3 = model.startswith("veo-3")
    durations = (4, 6, 8) if veo3 else (5, 6, 7, 8)
    if parameters.get("durationSeconds", durations[-1]) not in durations:
        return f"Unsupported durationSeconds {parameters['durationSeconds']} for {model}."
    if parameters.get("aspectRatio", "16:9") not in ("16:9", "9:16"):
        return f"Unsupported aspectRatio {parameters['aspectRatio']}."
    if not veo3 and ("generateAudio" in parameters or "resolution" in parameters):
        return f"generateAudio and resolution are not supported by {model}."
    if parameters.get("resolution", "720p") not in ("720p", "1080p"):
        return f"Unsupported resolution {parameters['resolution']}; use 720p or 1080p."
    seed = parameters.get("seed", 0)
    if not isinstance(seed, int) or not 0 <= seed <= 2**32 - 1:
        return "seed must be an unsigned 32-bit integer."
    return None
