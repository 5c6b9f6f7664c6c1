"""The request-header limit of the HTTP protocol, fed read by read as a socket would."""

from __future__ import annotations

import asyncio

import pytest

from reelforge.api.connections import MAX_HEADER_BYTES, guarded_protocol

pytestmark = pytest.mark.unit


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = False

    def write(self, data: bytes) -> None:  # type: ignore[override]
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 1), "sockname": ("127.0.0.1", 2)}.get(name, default)

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


async def app(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def feed(reads: list[bytes]) -> Transport:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    protocol = guarded_protocol(30.0)(
        Config(app=app, log_config=None), ServerState(), {}, asyncio.get_running_loop()
    )
    transport = Transport()
    protocol.connection_made(transport)
    for data in reads:
        protocol.data_received(data)
        if transport.closed:
            break
    for _ in range(20):  # let the app answer, if it was called
        await asyncio.sleep(0)
    protocol.connection_lost(None)
    return transport


def head(total: int, start: bytes = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: ") -> bytes:
    """A request whose line and headers (blank line included) are ``total`` bytes."""
    return start + b"p" * (total - len(start) - 4) + b"\r\n\r\n"


@pytest.mark.parametrize("reads", [1, 2, 5])
def test_headers_over_the_limit_are_431_however_they_arrive(reads: int) -> None:
    """Headers that completed in a second read were never counted: ~128 KiB got through."""
    data = head(MAX_HEADER_BYTES + 1)
    size = -(-len(data) // reads)
    transport = asyncio.run(feed([data[i : i + size] for i in range(0, len(data), size)]))
    assert transport.written.startswith(b"HTTP/1.1 431")
    assert transport.closed


def test_headers_of_exactly_the_limit_with_a_body_in_the_same_read_pass() -> None:
    body = b"body" * 40_000
    start = b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nX-Pad: " % len(body)
    transport = asyncio.run(feed([head(MAX_HEADER_BYTES, start)[:-2], b"\r\n" + body]))
    assert transport.written.startswith(b"HTTP/1.1 200")
