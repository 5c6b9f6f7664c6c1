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

import functools
import io
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import av
import numpy as np

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
CDN_CHUNK_BYTES = 8 * 1024


@functools.cache
def sample_mp4(seconds: int = 1, size: tuple[int, int] = (320, 180), fps: int = 24) -> bytes:
    """A real, small H.264 MP4 (built once per process) for the CDN to serve."""
    width, height = size
    rng = np.random.default_rng(7)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        y, x = np.mgrid[0:height, 0:width]
        for index in range(seconds * fps):
            shift = index * 6
            frame = np.stack(
                [(x + shift) % 256, (y * 2 + shift) % 256, (x + y + 3 * shift) % 256], axis=-1
            )
            frame = (frame + rng.integers(0, 24, frame.shape)).clip(0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


@dataclass
class Fault:
    """Answer ``status`` instead of serving, on every ``every``-th matching request.

    Matches API requests only unless ``path`` (a prefix) says otherwise; ``limit`` caps
    how often it fires; ``retry_after`` is sent as the ``Retry-After`` header.
    """

    status: int
    every: int = 1
    method: str | None = None
    path: str | None = None
    retry_after: int | str | None = None
    limit: int | None = None
    seen: int = 0
    fired: int = 0

    def fires(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        if self.path is None and path not in PATHS:
            return False
        if self.path is not None and not path.startswith(self.path):
            return False
        self.seen += 1
        if self.seen % self.every or (self.limit is not None and self.fired >= self.limit):
            return False
        self.fired += 1
        return True


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    """Lower-case names."""
    body: Any
    host: str
    at: float
    """``time.monotonic()`` when it arrived."""
    status: int | None = None
    """What the fake answered (set once it has)."""


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
class FakeAimlApi:
    """The fake server; ``start()``/``stop()`` or use it as a context manager."""

    keys: tuple[str, ...] = (DEFAULT_KEY,)
    time_scale: float = 0.01
    """Real seconds per fake second."""
    script: tuple[tuple[str, float], ...] = DEFAULT_SCRIPT
    error: tuple[str, str] | None = None
    """End every generation in ``error`` with this ``(name, message)``."""
    url_only_models: tuple[str, ...] = ("google/veo-3.0-i2v",)
    """Models whose ``video`` has only ``url``, as the published veo-3.0-i2v example shows."""
    faults: list[Fault] = field(default_factory=list)
    cdn_cut_after: int | None = None
    """Cut the next CDN download after this many body bytes (once)."""
    cdn_chunk_delay: float = 0.0
    """Seconds to pause after each 8 KiB the CDN sends (a slow link)."""
    requests: list[RecordedRequest] = field(default_factory=list)
    generations: dict[str, FakeGeneration] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the fake first"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cdn_base(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def key(self) -> str:
        return self.keys[0]

    @property
    def video(self) -> bytes:
        return sample_mp4()

    def start(self) -> FakeAimlApi:
        sample_mp4()
        fake = self

        class Handler(_Handler):
            api = fake

        self._server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeAimlApi:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def add_fault(self, status: int, **options: Any) -> Fault:
        fault = Fault(status, **options)
        with self._lock:
            self.faults.append(fault)
        return fault

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Requests seen, by method and path (API paths when ``path`` is None)."""
        return len(self.matching(method, path))

    def matching(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            seen = list(self.requests)
        return [
            r
            for r in seen
            if (method is None or r.method == method)
            and (r.path == path if path is not None else r.path in PATHS)
        ]

    def cdn_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(CDN_PREFIX)]

    def status_of(self, generation: FakeGeneration) -> str:
        elapsed = (time.monotonic() - generation.created) / self.time_scale
        for status, seconds in generation.script:
            if elapsed < seconds:
                return status
            elapsed -= seconds
        return "error" if generation.error else "completed"

    # -- what the handler calls ------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            return next((f for f in self.faults if f.fires(method, path)), None)

    def _take_cut(self) -> int | None:
        with self._lock:
            cut, self.cdn_cut_after = self.cdn_cut_after, None
            return cut

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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave in two writes
    api: FakeAimlApi

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``api.requests`` instead."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def _handle(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            body = raw
        self.record = RecordedRequest(
            method=self.command,
            path=url.path,
            query=dict(parse_qsl(url.query)),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            host=self.headers.get("Host", ""),
            at=time.monotonic(),
        )
        self.api._record(self.record)
        try:
            self._route(url.path, body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _route(self, path: str, body: Any) -> None:
        fault = self.api._fault(self.command, path)
        if fault is not None:
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            message = {429: "Too Many Requests", 503: "Service unavailable"}.get(
                fault.status, "Internal server error"
            )
            self._error(fault.status, message, headers)
        elif path.startswith(CDN_PREFIX) and self.command in ("GET", "HEAD"):
            self._cdn()
        elif path in PATHS and self.command == "POST":
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

    def _cdn(self) -> None:
        data = self.api.video
        size = len(data)
        start, end = 0, size - 1
        status = 200
        headers = {"Content-Type": "video/mp4", "Accept-Ranges": "bytes", "ETag": '"sample"'}
        wanted = self.headers.get("Range")
        if wanted:
            span = _parse_range(wanted, size)
            if span is None:
                self._send(416, b"", {**headers, "Content-Range": f"bytes */{size}"})
                return
            start, end = span
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        payload = data[start : end + 1]
        self.record.status = status
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(payload))}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        cut = self.api._take_cut()
        sent = 0
        for offset in range(0, len(payload), CDN_CHUNK_BYTES):
            chunk = payload[offset : offset + CDN_CHUNK_BYTES]
            if cut is not None and sent + len(chunk) >= cut:
                self.wfile.write(chunk[: cut - sent])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.wfile.write(chunk)
            sent += len(chunk)
            if self.api.cdn_chunk_delay:
                self.wfile.flush()
                time.sleep(self.api.cdn_chunk_delay)

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

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        content = json.dumps(body).encode()
        self._send(status, content, {"Content-Type": "application/json", **(headers or {})})

    def _send(self, status: int, content: bytes, headers: dict[str, str]) -> None:
        self.record.status = status
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(content))}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(content)


def _parse_range(value: str, size: int) -> tuple[int, int] | None:
    """One ``bytes=`` range (``a-b``, ``a-`` or ``-n``) as inclusive offsets, if satisfiable."""
    match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", value)
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    return (start, end) if start <= end and start < size else None


def errors_of(requests: Iterable[RecordedRequest]) -> list[int]:
    """The non-2xx statuses answered, in order (for assertions on injected faults)."""
    return [r.status for r in requests if r.status is not None and r.status >= 300]
