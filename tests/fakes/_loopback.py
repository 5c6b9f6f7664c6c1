"""What every fake server shares: a threaded HTTP server on 127.0.0.1 and its lifecycle,
request recording, fault injection, JSON answers and a CDN that serves the sample video
(with ``Range``, and optionally cut short or slowed down).

A fake is a dataclass subclass of ``LoopbackFake`` with a handler subclass of
``LoopbackHandler``; the fake decides which requests a fault matches and how a fault is
answered (each API has its own error shape), the handler routes what is left.
"""

from __future__ import annotations

import functools
import io
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self
from urllib.parse import parse_qsl, urlsplit

import av
import numpy as np

POLL_SECONDS = 0.05
"""How quickly ``stop()`` takes effect."""
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

    Which requests match (``method``, ``path``) is the fake's rule (``fault_matches``);
    ``limit`` caps how often it fires; ``retry_after`` is sent as ``Retry-After``.
    """

    status: int
    every: int = 1
    method: str | None = None
    path: str | None = None
    retry_after: int | str | None = None
    limit: int | None = None
    seen: int = 0
    fired: int = 0

    def fires(self) -> bool:
        """Count a matching request; whether the fault answers it."""
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


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


@dataclass
class LoopbackFake:
    """``start()``/``stop()`` or a context manager; the handler reaches the fake as ``api``."""

    cdn_prefix: ClassVar[str] = "/cdn/"
    """Paths under this serve ``video``."""

    video: bytes = field(default_factory=sample_mp4)
    """What the CDN serves."""
    faults: list[Fault] = field(default_factory=list)
    cdn_cut_after: int | None = None
    """Cut the next CDN download after this many body bytes (once)."""
    cdn_chunk_delay: float = 0.0
    """Seconds to pause after each 8 KiB the CDN sends (a slow link)."""
    requests: list[RecordedRequest] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _handler_class(self) -> type[LoopbackHandler]:
        raise NotImplementedError

    def fault_matches(self, fault: Fault, method: str, path: str) -> bool:
        """Whether ``fault`` applies to this request (before counting ``every``)."""
        return (fault.method is None or fault.method == method) and (
            fault.path is None or fault.path in path
        )

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the fake first"
        return self._server.server_address[1]

    def add_fault(self, status: int, **options: Any) -> Fault:
        fault = Fault(status, **options)
        with self._lock:
            self.faults.append(fault)
        return fault

    def recorded(self, keep: Callable[[RecordedRequest], bool]) -> list[RecordedRequest]:
        """The requests so far that ``keep`` selects, in order."""
        with self._lock:
            return [r for r in self.requests if keep(r)]

    def cdn_requests(self) -> list[RecordedRequest]:
        return self.recorded(lambda r: r.path.startswith(self.cdn_prefix))

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> Self:
        fake = self

        class Handler(self._handler_class()):  # type: ignore[misc,valid-type]
            api = fake

        self._server = LoopbackServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self._server.serve_forever, args=(POLL_SECONDS,), daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- what the handler calls ------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            return next(
                (f for f in self.faults if self.fault_matches(f, method, path) and f.fires()),
                None,
            )

    def _take_cut(self) -> int | None:
        with self._lock:
            cut, self.cdn_cut_after = self.cdn_cut_after, None
            return cut


class LoopbackHandler(BaseHTTPRequestHandler):
    """Records each request, answers a fault that fires, serves the CDN, routes the rest."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave in two writes
    api: LoopbackFake
    record: RecordedRequest

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``api.requests`` instead."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def route(self, path: str, body: Any) -> None:
        """Answer a request that no fault took and that is not for the CDN."""
        raise NotImplementedError

    def answer_fault(self, fault: Fault) -> None:
        """Answer ``fault.status`` in the API's error shape."""
        raise NotImplementedError

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
            fault = self.api._fault(self.command, url.path)
            if fault is not None:
                self.answer_fault(fault)
            elif url.path.startswith(self.api.cdn_prefix) and self.command in ("GET", "HEAD"):
                self._cdn()
            else:
                self.route(url.path, body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

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


def retry_after_header(fault: Fault) -> dict[str, str]:
    return {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}


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
