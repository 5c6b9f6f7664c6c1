"""A local fake of fal's queue API (docs.fal.ai/model-endpoints/queue), on loopback.

``POST /{endpoint}`` (a subpath allowed) answers ``{request_id, response_url,
status_url, cancel_url}``; ``GET /{app}/requests/{id}/status`` moves through
``IN_QUEUE`` (with ``queue_position``), ``IN_PROGRESS`` (with ``logs``) and
``COMPLETED``; ``GET /{app}/requests/{id}`` is the output ``{"video": {"url"}}`` on the
fake's CDN, or ``result_error`` as ``(status, detail)``; ``PUT .../cancel`` answers 202
``CANCELLATION_REQUESTED``. Status and result live under the app id only, as on fal, so
an engine that keeps the subpath gets 404. Errors are fal's ``{"detail": ...}``; keys go
in ``Authorization: Key <key>``. ``submissions`` records each admitted input.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from fakes._loopback import Fault, LoopbackFake, LoopbackHandler, retry_after_header

DEFAULT_KEY = "fake-fal-key"
CDN_PREFIX = "/cdn/"


@dataclass
class FalRequest:
    id: str
    endpoint: str
    input: dict[str, Any]
    created: float
    cancelled: bool = False


@dataclass
class FakeFal(LoopbackFake):
    cdn_prefix = CDN_PREFIX

    key: str = DEFAULT_KEY
    queued_seconds: float = 0.05
    running_seconds: float = 0.1
    result_error: tuple[int, str] | None = None
    submissions: dict[str, FalRequest] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def creates(self) -> int:
        with self._lock:
            return len(self.submissions)

    def _handler_class(self) -> type[LoopbackHandler]:
        return _Handler

    def status_of(self, request: FalRequest) -> str:
        elapsed = time.monotonic() - request.created
        if elapsed < self.queued_seconds:
            return "IN_QUEUE"
        if elapsed < self.queued_seconds + self.running_seconds:
            return "IN_PROGRESS"
        return "COMPLETED"


def _app(endpoint: str) -> str:
    return "/".join(endpoint.split("/")[:2])


class _Handler(LoopbackHandler):
    api: FakeFal

    def do_PUT(self) -> None:
        self._handle()

    def answer_fault(self, fault: Fault) -> None:
        self._json(
            fault.status, {"detail": "Service temporarily unavailable"}, retry_after_header(fault)
        )

    def route(self, path: str, body: Any) -> None:
        if self.headers.get("Authorization", "") != f"Key {self.api.key}":
            self._json(401, {"detail": "Invalid Key Authorization header format"})
            return
        parts = path.strip("/").split("/")
        if self.command == "POST":
            self._submit("/".join(parts), body)
            return
        if len(parts) < 4 or parts[2] != "requests":
            self._json(404, {"detail": "Not Found"})
            return
        app, request_id, rest = "/".join(parts[:2]), parts[3], parts[4:]
        request = self.api.submissions.get(request_id)
        if request is None or _app(request.endpoint) != app:
            self._json(404, {"detail": f"Request {request_id} not found"})
            return
        status = self.api.status_of(request)
        if rest == ["status"] and self.command == "GET":
            answer: dict[str, Any] = {"status": status, "request_id": request_id}
            if status == "IN_QUEUE":
                answer["queue_position"] = 2
            if status != "IN_QUEUE" and self.record.query.get("logs") == "1":
                answer["logs"] = [
                    {
                        "message": "Loading model",
                        "level": "INFO",
                        "timestamp": "2026-12-08T00:00:00Z",
                    }
                ]
            self._json(200, answer)
        elif rest == ["cancel"] and self.command == "PUT":
            if status == "COMPLETED":
                self._json(400, {"status": "ALREADY_COMPLETED"})
            else:
                request.cancelled = True
                self._json(202, {"status": "CANCELLATION_REQUESTED"})
        elif not rest and self.command == "GET":
            if status != "COMPLETED":
                self._json(400, {"detail": "Request is still in progress"})
            elif self.api.result_error is not None:
                code, detail = self.api.result_error
                self._json(code, {"detail": detail})
            else:
                url = f"http://localhost:{self.api.port}{CDN_PREFIX}{request_id}.mp4"
                self._json(200, {"video": {"url": url, "content_type": "video/mp4"}})
        else:
            self._json(405, {"detail": "Method Not Allowed"})

    def _submit(self, endpoint: str, body: Any) -> None:
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
            self._json(422, {"detail": [{"loc": ["body", "prompt"], "msg": "field required"}]})
            return
        request = FalRequest(str(uuid.uuid4()), endpoint, body, time.monotonic())
        with self.api._lock:
            self.api.submissions[request.id] = request
        base = f"{self.api.base_url}/{_app(endpoint)}/requests/{request.id}"
        self._json(
            200,
            {
                "request_id": request.id,
                "response_url": base,
                "status_url": f"{base}/status",
                "cancel_url": f"{base}/cancel",
            },
        )
