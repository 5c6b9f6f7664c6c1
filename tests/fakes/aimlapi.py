"""A local fake of the AI/ML API video endpoints: the published protocol and nothing more.

A real threaded HTTP server on 127.0.0.1. It has none of reelforge's extensions: no
long-poll, no idempotency, no ``x-reelforge-version`` header, no ``/health``. Generations
move through a scripted status sequence on an accelerated clock (``time_scale`` 0.01 turns
the published example's ~50 s into 0.5 s). Completed videos link to the fake's own CDN,
spelt ``http://localhost:PORT/cdn/...`` while the API is ``http://127.0.0.1:PORT``, so a
test can prove the API key never reaches the CDN. Faults (429, 5xx, cut or slow
downloads) are injected deterministically, and every request is recorded.

    with FakeAimlApi(time_scale=0.01) as fake:
        fake.add_fault(503, every=3, method="GET")
        ...  # use fake.base_url and fake.key
        assert fake.count("POST") == 1
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from fakes._loopback import (
    Fault,
    LoopbackFake,
    LoopbackHandler,
    RecordedRequest,
    retry_after_header,
)

PATHS = ("/v2/video/generations", "/v2/generate/video/google/generation")
CDN_PREFIX = "/cdn/"
DEFAULT_SCRIPT: tuple[tuple[str, float], ...] = (("queued", 10.0), ("generating", 40.0))
"""Status and how long it lasts, in fake seconds, like the published examples' timings."""
DEFAULT_KEY = "fake-aimlapi-key"
DEFAULT_DURATION_SECONDS = {"google/veo-3.0-i2v": 8}
CREDITS_PER_SECOND = 105_000
FAIL_MARKER = "FAIL"
"""A prompt containing this ends in ``error``."""
DEFAULT_ERROR = ("ModelError", "The model could not generate a video for this prompt")


@dataclass
class FakeGeneration:
    id: str
    model: str
    body: dict[str, Any]
    owner: str
    created: float
    script: tuple[tuple[str, float], ...]
    error: tuple[str, str] | None
    url_only: bool


@dataclass
class FakeAimlApi(LoopbackFake):
    """The fake server; ``start()``/``stop()`` or use it as a context manager."""

    cdn_prefix = CDN_PREFIX

    keys: tuple[str, ...] = (DEFAULT_KEY,)
    time_scale: float = 0.01
    """Real seconds per fake second."""
    script: tuple[tuple[str, float], ...] = DEFAULT_SCRIPT
    error: tuple[str, str] | None = None
    """End every generation in ``error`` with this ``(name, message)``."""
    url_only_models: tuple[str, ...] = ("google/veo-3.0-i2v",)
    """Models whose ``video`` has only ``url``, as the published veo-3.0-i2v example shows."""
    generations: dict[str, FakeGeneration] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cdn_base(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def key(self) -> str:
        return self.keys[0]

    def _handler_class(self) -> type[LoopbackHandler]:
        return _Handler

    def fault_matches(self, fault: Fault, method: str, path: str) -> bool:
        """A fault's ``path`` is a prefix; without one it matches API requests only."""
        if fault.method is not None and fault.method != method:
            return False
        return path in PATHS if fault.path is None else path.startswith(fault.path)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Requests seen, by method and path (API paths when ``path`` is None)."""
        return len(self.matching(method, path))

    def matching(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        return self.recorded(
            lambda r: (
                (method is None or r.method == method)
                and (r.path == path if path is not None else r.path in PATHS)
            )
        )

    def status_of(self, generation: FakeGeneration) -> str:
        elapsed = (time.monotonic() - generation.created) / self.time_scale
        for status, seconds in generation.script:
            if elapsed < seconds:
                return status
            elapsed -= seconds
        return "error" if generation.error else "completed"

    # -- what the handler calls ------------------------------------------------------

    def _create(self, body: dict[str, Any], owner: str) -> FakeGeneration:
        model = body["model"]
        error = self.error
        if FAIL_MARKER in body["prompt"]:
            error = error or DEFAULT_ERROR
        generation = FakeGeneration(
            id=f"{uuid.uuid4()}:{model}",
            model=model,
            body=body,
            owner=owner,
            created=time.monotonic(),
            script=self.script,
            error=error,
            url_only=model in self.url_only_models,
        )
        with self._lock:
            self.generations[generation.id] = generation
        return generation

    def _present(self, generation: FakeGeneration) -> dict[str, Any]:
        status = self.status_of(generation)
        answer: dict[str, Any] = {"id": generation.id, "status": status}
        answer.update(video=None, error=None, meta=None)
        if status == "completed":
            token = generation.id.split(":", 1)[0]
            video: dict[str, Any] = {"url": f"{self.cdn_base}{CDN_PREFIX}{token}/output.mp4"}
            if not generation.url_only:
                video.update(
                    content_type="video/mp4", file_name="output.mp4", file_size=len(self.video)
                )
            seconds = generation.body.get("duration") or DEFAULT_DURATION_SECONDS.get(
                generation.model, 5
            )
            answer["video"] = video
            answer["meta"] = {"usage": {"credits_used": CREDITS_PER_SECOND * int(seconds)}}
        elif status == "error":
            assert generation.error is not None
            name, message = generation.error
            answer["error"] = {"name": name, "message": message}
            answer["meta"] = {"usage": {"credits_used": 0}}
        return answer


class _Handler(LoopbackHandler):
    api: FakeAimlApi

    def answer_fault(self, fault: Fault) -> None:
        message = {429: "Too Many Requests", 503: "Service unavailable"}.get(
            fault.status, "Internal server error"
        )
        self._error(fault.status, message, retry_after_header(fault))

    def route(self, path: str, body: Any) -> None:
        if path in PATHS and self.command == "POST":
            self._create(body)
        elif path in PATHS and self.command == "GET":
            self._get()
        else:
            self._error(404, f"Cannot {self.command} {path}")

    def _owner(self) -> str | None:
        scheme, _, key = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or key.strip() not in self.api.keys:
            self._error(
                401,
                "This request requires a valid API key. You can create a new API key on the "
                "Billing page: https://aimlapi.com/app/keys",
            )
            return None
        return key.strip()

    def _create(self, body: Any) -> None:
        owner = self._owner()
        if owner is None:
            return
        if not isinstance(body, dict):
            kind = type(body).__name__
            self._error(400, f"Body validation error: Expected object, received {kind}")
            return
        for name in ("model", "prompt"):
            if not isinstance(body.get(name), str) or not body[name]:
                received = "undefined" if name not in body else json.dumps(body[name])
                detail = f"Required. Expected string, received {received}"
                self._error(400, f"Body validation error: {name}: {detail}")
                return
        generation = self.api._create(body, owner)
        self._json(200, {"id": generation.id, "status": "queued"})

    def _get(self) -> None:
        owner = self._owner()
        if owner is None:
            return
        generation_id = self.record.query.get("generation_id")
        if not generation_id:
            self._error(400, "Query validation error: generation_id: Required")
            return
        generation = self.api.generations.get(generation_id)
        if generation is None or generation.owner != owner:
            self._error(404, f"Generation {generation_id} not found")
            return
        self._json(200, self.api._present(generation))

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        body = {
            "message": message,
            "path": urlsplit(self.path).path,
            "requestId": str(uuid.uuid4()),
            "statusCode": status,
            "timestamp": now.replace("+00:00", "Z"),
        }
        self._json(status, body, headers)
