"""A loopback TCP proxy that can make the service behind it hang or go down.

Put it between reelforge and a dependency (Redis, an S3 endpoint) and switch its mode:

* ``forward``: bytes pass both ways (the dependency is healthy);
* ``hang``: new connections are accepted and never answered, and bytes on open ones are
  held (the dependency accepts but never answers);
* ``down``: new connections are reset at once and open ones are cut (it is down);
* ``answerless``: requests reach the service but its answers are held (a timeout after
  the work was done, as a client sees a slow network).

Nothing is faked about the protocol: the real client talks to the real server.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading
from typing import Literal

Mode = Literal["forward", "hang", "down", "answerless"]
CHUNK_BYTES = 64 * 1024
SELECT_SECONDS = 0.05
LINGER_RESET = struct.pack("ii", 1, 0)
"""SO_LINGER on, 0 s: ``close`` sends a reset."""


class FaultProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.mode: Mode = "forward"
        self.connections = 0
        """Connections accepted so far (whatever the mode)."""
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self._cut = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fault-proxy", daemon=True)

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def set(self, mode: Mode) -> None:
        """Switch modes; ``down`` and ``forward`` also cut what was open or held."""
        self.mode = mode
        if mode in ("down", "forward"):
            self._cut.set()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()

    def _serve(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._listener, selectors.EVENT_READ, None)
        pairs: dict[socket.socket, socket.socket] = {}
        upstreams: set[socket.socket] = set()
        held: list[socket.socket] = []
        while not self._stop.is_set():
            if self._cut.is_set():
                self._cut.clear()
                for sock in [*pairs, *held]:
                    self._close(selector, pairs, sock)
                held.clear()
            for key, _ in selector.select(SELECT_SECONDS):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._listener:
                    held.extend(self._accept(selector, pairs, upstreams))
                    continue
                holding = self.mode == "hang" or (self.mode == "answerless" and sock in upstreams)
                if holding:  # hold the bytes: the other side waits forever
                    with contextlib.suppress(KeyError, ValueError):
                        selector.unregister(sock)
                    held.append(sock)
                    continue
                try:
                    data = sock.recv(CHUNK_BYTES)
                    if data and sock in pairs:
                        pairs[sock].sendall(data)
                        continue
                except OSError:
                    pass
                self._close(selector, pairs, sock)
        for sock in [*pairs, *held]:
            self._close(selector, pairs, sock)

    def _accept(
        self, selector: selectors.BaseSelector, pairs: dict, upstreams: set[socket.socket]
    ) -> list[socket.socket]:
        """Take a new connection; returns it if it is to be held unanswered."""
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return []
        self.connections += 1
        if self.mode == "down":
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
            client.close()  # a reset, as from a port nobody listens on
            return []
        if self.mode == "hang":
            return [client]
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return []
        pairs[client], pairs[upstream] = upstream, client
        upstreams.add(upstream)
        selector.register(client, selectors.EVENT_READ, None)
        selector.register(upstream, selectors.EVENT_READ, None)
        return []

    def _close(self, selector: selectors.BaseSelector, pairs: dict, sock: socket.socket) -> None:
        for each in {sock, pairs.pop(sock, sock)}:
            pairs.pop(each, None)
            with contextlib.suppress(KeyError, ValueError):
                selector.unregister(each)
            with contextlib.suppress(OSError):
                each.close()
