"""What slow or idle clients may hold: the HTTP server's connection limits.

uvicorn bounds the time between requests on a kept-alive connection, but not the time a
client takes to send a request's headers: a client that opens a connection and sends
nothing, or one header byte now and then, holds it forever (slowloris). reelforge's
protocol closes a connection whose request headers are not complete within
``REELFORGE_READ_TIMEOUT_SECONDS`` or exceed ``MAX_HEADER_BYTES``; bodies are bounded by
``api.limits``. ``REELFORGE_MAX_CONNECTIONS`` caps open connections: beyond it requests
are answered 503 at once instead of queueing. Long-polls hold no thread (they await an
event), so they cost only their connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
from collections.abc import Callable
from typing import Any

from reelforge.errors import ConfigurationError
from reelforge.settings import Settings

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 64 * 2**10
"""Largest request line plus headers (browsers send a few KiB)."""
HEADERS_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n"
    b"connection: close\r\n\r\n"
)
FILES_PER_CONNECTION_MARGIN = 256
"""Descriptors kept free beyond the connection cap (database, storage, logs, workers)."""


def guarded_protocol(header_timeout: float, max_header_bytes: int = MAX_HEADER_BYTES) -> type:
    """uvicorn's httptools protocol with a deadline and a size limit for request headers."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None
        _header_bytes = 0
        _tail = b""
        _awaiting_headers = False

        def _arm(self) -> None:
            self._awaiting_headers = True
            self._header_bytes = 0
            self._tail = b""
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(header_timeout, self._too_slow)

        def _disarm(self) -> None:
            self._awaiting_headers = False
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _too_slow(self) -> None:
            self._header_timer = None
            if self._awaiting_headers and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if not self._awaiting_headers and (self.cycle is None or self.cycle.response_complete):
                self._arm()  # the first bytes of the next request on a kept-alive connection
            if self._awaiting_headers:
                # Counted before parsing, up to the blank line that ends the headers: a
                # read that completes them counts too (it used to be skipped, so about
                # twice the limit got through).
                seen = self._tail + data
                end = seen.find(b"\r\n\r\n")
                self._header_bytes += len(data) if end == -1 else max(0, end + 4 - len(self._tail))
                self._tail = seen[-3:]
                if self._header_bytes > max_header_bytes:
                    if not self.transport.is_closing():
                        self.transport.write(HEADERS_TOO_LARGE)
                        self.transport.close()
                    return
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

    return GuardedHttpToolsProtocol


GRACEFUL_SHUTDOWN_SECONDS = 5


def server_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` that bound what clients can hold."""
    _raise_open_files_limit(settings.max_connections + FILES_PER_CONNECTION_MARGIN)
    options: dict[str, Any] = {
        "limit_concurrency": settings.max_connections,
        "loop": settings.event_loop,
        "timeout_keep_alive": 5,
        # On SIGTERM, requests still running (long-polls of connected clients, event
        # streams) get this long before they are cut; workers drain separately.
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
    }
    try:
        options["http"] = guarded_protocol(settings.read_timeout_seconds)
    except ImportError:  # httptools missing (uvicorn without [standard]): h11 limits size only
        log.warning("httptools is not installed; slow request headers are not timed out")
    return options


LISTEN_BACKLOG = 2048


def bind(settings: Settings) -> socket.socket:
    """The listening socket, bound before anything else starts: a port in use stops
    ``serve`` with one line before it announces itself or starts a worker, and clients
    that connect while the app starts wait in the backlog instead of being refused."""
    host, port = settings.host, settings.port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
    except OSError as error:
        sock.close()
        raise ConfigurationError(
            f"cannot listen on {host}:{port}: {error.strerror} (another reelforge or "
            "program may have it; pick another with --port or REELFORGE_PORT)"
        ) from None
    return sock


def run_server(
    app: Any,
    settings: Settings,
    *,
    sock: socket.socket | None = None,
    on_signal: Callable[[int, bool], None] | None = None,
) -> None:
    """Serve ``app`` with uvicorn the way ``reelforge serve`` does (the benchmarks' anchor
    app too, so both are measured under the same settings).

    ``sock`` is a socket from ``bind``; ``on_signal(number, again)`` hears each stop
    signal. A second one does not cut uvicorn's shutdown short (that would skip the
    app's own, which hands running jobs back): ``on_signal`` hurries the workers instead.
    """
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            again = self.should_exit
            if on_signal is not None:
                on_signal(sig, again)
            if not again:
                super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,
        **server_options(settings),  # bounds on slow and idle clients
    )
    # As uvicorn.run does: after a graceful stop, uvicorn raises the SIGINT it caught again.
    with contextlib.suppress(KeyboardInterrupt):
        Server(config).run(sockets=None if sock is None else [sock])


def _raise_open_files_limit(wanted: int) -> None:
    """Raise the soft limit on open files toward ``wanted`` (never above the hard limit),
    so the connection cap, not an exhausted descriptor table, is what refuses clients."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < wanted:
        log.warning(
            "the open files limit (%d) is below REELFORGE_MAX_CONNECTIONS plus a margin; "
            "lower the setting or raise the limit",
            target,
        )
