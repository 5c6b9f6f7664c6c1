"""Fetching untrusted URLs without becoming a proxy into the operator's network.

User-supplied image URLs and the finished videos that upstream engines point us at are
both fetched here: ``fetch_bytes`` keeps a small body in memory, ``fetch_to_file`` streams
a large one to disk. They share every rule below.

Each hop resolves the host once, vets every address with ``netguard``, and then connects
only to those vetted addresses: the HTTP client is given a network backend that ignores
the name and dials the pinned IPs, so DNS rebinding cannot redirect the connection. The
URL itself is untouched, so the ``Host`` header, TLS SNI and certificate verification all
use the original host name. One wall-clock deadline covers resolution, connecting, TLS,
redirects and the body; every socket operation is clamped to what is left of it.

We use httpcore (httpx's transport layer) directly: it takes a custom network backend,
sends no cookies or credentials, reads no proxy settings or ``.netrc`` from the
environment, and follows no redirects on its own.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import httpcore
import httpx

from reelforge import __version__
from reelforge.errors import FetchError, ImageFetchError, InvalidRequest, VideoFetchError
from reelforge.media.netguard import (
    ALLOW_HINT,
    FetchPolicy,
    IPAddress,
    ResolutionError,
    Target,
    parse_target,
    public_only,
    redact_url,
    resolve_host,
)
from reelforge.retrying import RETRYABLE_STATUSES, parse_retry_after

logger = logging.getLogger(__name__)

USER_AGENT = f"reelforge/{__version__}"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
READ_CHUNK_BYTES = 64 * 1024
IMAGE_ACCEPT = "image/*, */*;q=0.5"
VIDEO_ACCEPT = "video/mp4, video/*;q=0.9, */*;q=0.5"
VIDEO_FETCH_TIMEOUT_SECONDS = 600.0
"""Default deadline of ``fetch_to_file``: a 1 GiB video at ~15 Mbit/s."""

Sink = Callable[[bytes], object]
"""Receives each decoded piece of a body, in order."""


@dataclass(frozen=True)
class FetchedResource:
    """A fetched body; ``final_url`` is the URL after redirects."""

    data: bytes = field(repr=False)
    content_type: str | None
    final_url: str


@dataclass(frozen=True)
class FetchedFile:
    """A body streamed to ``path``: ``size`` bytes (decoded), ``final_url`` after redirects."""

    path: Path
    size: int
    content_type: str | None
    final_url: str


def format_size(size: int) -> str:
    """Human size for messages: ``20 MiB``, ``25.3 MiB``, ``512 KiB``, ``100 bytes``."""
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


def format_seconds(seconds: float) -> str:
    """``20 s``, ``1.5 s``."""
    return f"{seconds:.1f}".removesuffix(".0") + " s"


class _Deadline:
    """One monotonic deadline shared by every step of a fetch."""

    def __init__(self, seconds: float) -> None:
        self.expires = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.expires - time.monotonic()

    def clamp(self, timeout: float | None, expired: type[Exception]) -> float:
        """``timeout`` cut to the time left; raises ``expired`` when none is left."""
        left = self.remaining()
        if left <= 0:
            raise expired("fetch deadline reached")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """Clamps every read, write and TLS handshake to the fetch deadline (slow drips)."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadline.clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._deadline.clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        wait = self._deadline.clamp(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self._inner.start_tls(ssl_context, server_hostname, wait), self._deadline
        )

    def get_extra_info(self, info: str) -> object:
        return self._inner.get_extra_info(info)


class _PinnedBackend(httpcore.NetworkBackend):
    """Dials only the vetted addresses of one host, whatever name httpcore asks for."""

    def __init__(self, host: str, addresses: list[IPAddress], deadline: _Deadline) -> None:
        self._host = host
        self._addresses = addresses
        self._deadline = deadline
        self._inner = httpcore.SyncBackend()
        self.connected_to: IPAddress | None = None

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        if host.lower() != self._host:
            raise httpcore.ConnectError(f"refusing to connect to unvetted host {host!r}")
        failure: httpcore.ConnectError | None = None
        for ip in self._addresses:
            wait = self._deadline.clamp(timeout, httpcore.ConnectTimeout)
            try:
                stream = self._inner.connect_tcp(
                    str(ip), port, wait, local_address, socket_options or []
                )
            except httpcore.ConnectError as exc:
                failure = exc
                continue
            self.connected_to = ip
            return _DeadlineStream(stream, self._deadline)
        raise failure or httpcore.ConnectError("no address to connect to")

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are never used for fetches")


@lru_cache(maxsize=1)
def _default_ssl_context() -> ssl.SSLContext:
    """certifi roots (or ``SSL_CERT_FILE``/``SSL_CERT_DIR``), hostname checking on."""
    return httpx.create_ssl_context()


@dataclass
class _Hop:
    status: int
    location: str | None = None
    size: int = 0
    content_type: str | None = None


class _Fetch:
    """State of one fetch: policy, limits, deadline and the field named in messages.

    ``max_bytes`` and ``timeout_seconds`` default to the policy's (the image limits);
    video downloads pass their own, while the address rules stay the policy's.
    """

    def __init__(
        self,
        policy: FetchPolicy,
        field: str,
        *,
        max_bytes: int | None = None,
        timeout_seconds: float | None = None,
        accept: str = IMAGE_ACCEPT,
        error_type: type[FetchError] = ImageFetchError,
    ) -> None:
        self.policy = policy
        self.error_type = error_type
        self.field = field
        self.max_bytes = policy.max_bytes if max_bytes is None else max_bytes
        self.timeout_seconds = (
            policy.timeout_seconds if timeout_seconds is None else timeout_seconds
        )
        if self.max_bytes <= 0 or self.timeout_seconds <= 0:
            raise ValueError("max_bytes and timeout_seconds must be positive")
        self.accept = accept
        self.deadline = _Deadline(self.timeout_seconds)

    def error(self, message: str) -> FetchError:
        return self.error_type(f"{self.field} {message}")

    def refused(self, message: str) -> FetchError:
        """The policy forbids the address: permanent (see ``FetchError.refused``)."""
        return self.error_type(f"{self.field} {message}", refused=True)

    def transient(self, message: str, retry_after: float | None = None) -> FetchError:
        return self.error_type(
            f"{self.field} {message}", transient=True, retry_after_seconds=retry_after
        )

    def too_slow(self) -> FetchError:
        return self.error(f"took longer than {format_seconds(self.timeout_seconds)}")

    def too_big(self) -> FetchError:
        return self.error(f"is larger than {format_size(self.max_bytes)}")

    def addresses(self, target: Target, *, redirected: bool) -> list[IPAddress]:
        """Resolve once and vet every address; the result is all the client may dial."""
        if target.ip is not None:
            addresses = [target.ip]
        elif target.is_local_name and not self.policy.allows_host(target.host):
            addresses = []
        else:
            try:
                addresses = resolve_host(
                    target.host, target.port, self.policy, timeout=self.deadline.remaining()
                )
            except ResolutionError as exc:
                if self.deadline.remaining() <= 0:
                    raise self.too_slow() from None
                logger.info(
                    "image host did not resolve",
                    extra={"field": self.field, "url": redact_url(target.url), "reason": str(exc)},
                )
                raise self.error(f"host {target.host} could not be resolved") from None
        if not addresses or not all(self.policy.permits(target.host, ip) for ip in addresses):
            logger.warning(
                "refused fetch of a non-public address",
                extra={"field": self.field, "url": redact_url(target.url)},
            )
            if redirected:
                raise self.refused(f"redirects to a forbidden address; {ALLOW_HINT}")
            raise self.refused(
                f"points to an address that is not public; {public_only(self.field)}"
            )
        return addresses

    @contextlib.contextmanager
    def exchange(
        self,
        target: Target,
        addresses: list[IPAddress],
        *,
        method: str = "GET",
        content: bytes | None = None,
        headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> Iterator[httpcore.Response]:
        """One request to the vetted ``addresses`` of ``target``; the streamed response."""
        backend = _PinnedBackend(target.host, addresses, self.deadline)
        url = httpcore.URL(
            scheme=target.url.raw_scheme,
            host=target.url.raw_host,
            port=target.port,
            target=target.url.raw_path,
        )
        sent = [
            (b"Host", target.url.netloc),
            (b"User-Agent", USER_AGENT.encode()),
            (b"Accept", self.accept.encode()),
            (b"Accept-Encoding", b"identity"),
            *headers,
        ]
        left = max(self.deadline.remaining(), 0.001)
        timeouts = {"connect": left, "read": left, "write": left, "pool": left}
        ssl_context = self.policy.ssl_context or _default_ssl_context()
        with (
            httpcore.ConnectionPool(
                ssl_context=ssl_context,
                network_backend=backend,
                max_connections=1,
                http1=True,
                http2=False,
                retries=0,
            ) as pool,
            pool.stream(
                method, url, headers=sent, content=content, extensions={"timeout": timeouts}
            ) as response,
        ):
            logger.debug(
                "fetch hop",
                extra={
                    "field": self.field,
                    "url": redact_url(target.url),
                    "address": str(backend.connected_to),
                    "status": response.status,
                },
            )
            yield response

    def request(self, target: Target, addresses: list[IPAddress], sink: Sink) -> _Hop:
        """One GET hop: a redirect's ``location``, or a 2xx body written to ``sink``."""
        with self.exchange(target, addresses) as response:
            status = response.status
            if status in REDIRECT_STATUSES:
                location = _header(response.headers, b"location")
                if location is None:
                    raise self.error(f"returned HTTP {status} without a Location header")
                return _Hop(status=status, location=location)
            if status in RETRYABLE_STATUSES:
                retry_after = parse_retry_after(_header(response.headers, b"retry-after"))
                raise self.transient(f"returned HTTP {status}", retry_after)
            if not 200 <= status < 300:
                raise self.error(f"returned HTTP {status}")
            length = _header(response.headers, b"content-length")
            if length and length.strip().isdigit() and int(length) > self.max_bytes:
                raise self.too_big()
            encoding = (_header(response.headers, b"content-encoding") or "identity").lower()
            size = self.read_body(response.iter_stream(), encoding, sink)
            return _Hop(
                status=status, size=size, content_type=_header(response.headers, b"content-type")
            )

    def read_body(self, chunks: Iterator[bytes], encoding: str, sink: Sink) -> int:
        """Pass at most ``max_bytes`` (raw and decoded) to ``sink`` before the deadline."""
        limit = self.max_bytes
        if encoding in ("identity", ""):
            decoder = None
        elif encoding in ("gzip", "x-gzip", "deflate"):
            decoder = zlib.decompressobj(wbits=47)  # gzip or zlib header, detected
        else:
            raise self.error(f"was sent with an unsupported Content-Encoding '{encoding[:20]}'")
        received = written = 0
        for chunk in chunks:
            received += len(chunk)
            if received > limit:
                raise self.too_big()
            piece = chunk if decoder is None else decoder.decompress(chunk, limit + 1 - written)
            written += len(piece)
            if written > limit or (decoder is not None and decoder.unconsumed_tail):
                raise self.too_big()
            if piece:
                sink(piece)
            if self.deadline.remaining() <= 0:
                raise self.too_slow()
        if decoder is not None:
            rest = decoder.flush()
            written += len(rest)
            if written > limit:
                raise self.too_big()
            if rest:
                sink(rest)
        return written


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _describe_connect_error(exc: Exception, host: str) -> str:
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ssl.SSLCertVerificationError):
        reason = cause.verify_message or "verification failed"
        return f"host {host} presented a TLS certificate that could not be verified ({reason})"
    if isinstance(cause, ssl.SSLError):
        return f"could not establish a TLS connection with {host}"
    if isinstance(cause, ConnectionRefusedError):
        return f"host {host} refused the connection"
    return f"host {host} could not be reached"


def _follow(fetch: _Fetch, url: str, sink: Sink) -> tuple[_Hop, str]:
    """GET ``url`` hop by hop (each re-vetted) until a 2xx body has gone to ``sink``.

    Returns the final hop and its URL.
    """
    field = fetch.field
    try:
        target = parse_target(url, field=field)
    except InvalidRequest as exc:
        raise fetch.error_type(exc.message, refused=True) from None
    redirects = 0
    while True:
        addresses = fetch.addresses(target, redirected=redirects > 0)
        try:
            hop = fetch.request(target, addresses, sink)
        except httpcore.TimeoutException:
            raise fetch.too_slow() from None
        except httpcore.ConnectError as exc:
            if fetch.deadline.remaining() <= 0:
                raise fetch.too_slow() from None
            raise fetch.transient(_describe_connect_error(exc, target.host)) from None
        except (httpcore.ProtocolError, httpcore.NetworkError) as exc:
            if fetch.deadline.remaining() <= 0:
                raise fetch.too_slow() from None
            logger.info(
                "fetch failed",
                extra={"field": field, "url": redact_url(target.url), "reason": repr(exc)},
            )
            raise fetch.transient(
                f"could not be downloaded: the connection to {target.host} failed"
            ) from None
        if hop.location is None:
            logger.info(
                "fetched",
                extra={
                    "field": field,
                    "url": redact_url(target.url),
                    "bytes": hop.size,
                    "redirects": redirects,
                },
            )
            return hop, str(target.url)
        if redirects >= fetch.policy.max_redirects:
            raise fetch.error(f"redirected more than {fetch.policy.max_redirects} times")
        redirects += 1
        try:
            target = parse_target(target.url.join(hop.location.strip()), field=field)
        except (InvalidRequest, httpx.InvalidURL, ValueError):
            raise fetch.error("redirects to a URL that cannot be fetched") from None


def fetch_bytes(url: str, policy: FetchPolicy, *, field: str = "image_url") -> FetchedResource:
    """GET ``url`` under ``policy``; raises ``ImageFetchError`` with a user-actionable message.

    Only 2xx bodies are returned. Redirects are followed by hand (each hop re-vetted) up
    to ``policy.max_redirects``; the whole call ends by ``policy.timeout_seconds``.
    """
    body = bytearray()
    hop, final_url = _follow(_Fetch(policy, field), url, body.extend)
    return FetchedResource(data=bytes(body), content_type=hop.content_type, final_url=final_url)


def fetch_to_file(
    url: str,
    policy: FetchPolicy,
    path: Path,
    *,
    max_bytes: int,
    field: str = "video",
    timeout_seconds: float = VIDEO_FETCH_TIMEOUT_SECONDS,
    on_progress: Callable[[int], object] | None = None,
) -> FetchedFile:
    """Stream ``url`` into ``path`` under ``policy``'s address rules; for bodies too big
    to hold in memory (finished videos).

    The same vetting, pinning, redirects and single deadline as ``fetch_bytes``, but the
    limits are the caller's: at most ``max_bytes`` (refused up front when the server
    announces more, cut off when it sends more), all within ``timeout_seconds``. No
    credentials are ever sent. ``on_progress`` gets the bytes written so far after each
    chunk; its exceptions propagate (that is how a worker cancels a long download). On
    any failure ``path`` is removed, so no partial file is left behind. Raises
    ``VideoFetchError`` (``transient`` when a retry may succeed).
    """
    fetch = _Fetch(
        policy,
        field,
        max_bytes=max_bytes,
        timeout_seconds=timeout_seconds,
        accept=VIDEO_ACCEPT,
        error_type=VideoFetchError,
    )
    path = Path(path)
    try:
        with path.open("wb") as file:
            written = 0

            def sink(piece: bytes) -> None:
                nonlocal written
                file.write(piece)
                written += len(piece)
                if on_progress is not None:
                    on_progress(written)

            hop, final_url = _follow(fetch, url, sink)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return FetchedFile(path=path, size=hop.size, content_type=hop.content_type, final_url=final_url)


WEBHOOK_ANSWER_BYTES = 64 * 1024
"""Most of a webhook receiver's answer that is read (and then discarded)."""


def post_to_url(
    url: str,
    policy: FetchPolicy,
    content: bytes,
    *,
    headers: dict[str, str],
    timeout_seconds: float,
    field: str = "webhook_url",
) -> int:
    """POST ``content`` to ``url`` under ``policy``'s address rules; the HTTP status.

    For deliveries (webhooks): the address is vetted and pinned like a fetch's, nothing
    is retried or redirected here (a redirect is just a status), and at most
    ``WEBHOOK_ANSWER_BYTES`` of the answer are read. Raises ``FetchError`` (``transient``
    for connection failures and timeouts) when no status was received.
    """
    fetch = _Fetch(policy, field, max_bytes=WEBHOOK_ANSWER_BYTES, timeout_seconds=timeout_seconds)
    try:
        target = parse_target(url, field=field)
    except InvalidRequest as exc:
        raise fetch.error_type(exc.message, refused=True) from None
    addresses = fetch.addresses(target, redirected=False)
    sent = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    sent.append((b"Content-Length", str(len(content)).encode()))
    try:
        with fetch.exchange(
            target, addresses, method="POST", content=content, headers=sent
        ) as response:
            read = 0
            for chunk in response.iter_stream():
                read += len(chunk)
                if read >= WEBHOOK_ANSWER_BYTES or fetch.deadline.remaining() <= 0:
                    break
            return response.status
    except httpcore.TimeoutException:
        raise fetch.transient(f"did not answer within {format_seconds(timeout_seconds)}") from None
    except (httpcore.ConnectError, httpcore.NetworkError, httpcore.ProtocolError) as exc:
        raise fetch.transient(_describe_connect_error(exc, target.host)) from None
