"""Fetching user-supplied image URLs without becoming a proxy into the operator's network.

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

import logging
import ssl
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache

import httpcore
import httpx

from reelforge import __version__
from reelforge.errors import ImageFetchError, InvalidRequest
from reelforge.media.netguard import (
    FetchPolicy,
    IPAddress,
    ResolutionError,
    Target,
    parse_target,
    redact_url,
    resolve_host,
)

logger = logging.getLogger(__name__)

USER_AGENT = f"reelforge/{__version__}"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
READ_CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class FetchedResource:
    """A fetched body; ``final_url`` is the URL after redirects."""

    data: bytes = field(repr=False)
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
    data: bytes = b""
    content_type: str | None = None


class _Fetch:
    """State of one ``fetch_bytes`` call: policy, deadline and the field for messages."""

    def __init__(self, policy: FetchPolicy, field: str) -> None:
        self.policy = policy
        self.field = field
        self.deadline = _Deadline(policy.timeout_seconds)

    def error(self, message: str) -> ImageFetchError:
        return ImageFetchError(f"{self.field} {message}")

    def too_slow(self) -> ImageFetchError:
        return self.error(f"took longer than {format_seconds(self.policy.timeout_seconds)}")

    def too_big(self) -> ImageFetchError:
        return self.error(f"is larger than {format_size(self.policy.max_bytes)}")

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
                raise self.error("redirects to a forbidden address")
            raise self.error(
                "points to an address that is not public; only publicly reachable "
                "images can be fetched"
            )
        return addresses

    def request(self, target: Target, addresses: list[IPAddress]) -> _Hop:
        backend = _PinnedBackend(target.host, addresses, self.deadline)
        url = httpcore.URL(
            scheme=target.url.raw_scheme,
            host=target.url.raw_host,
            port=target.port,
            target=target.url.raw_path,
        )
        headers = [
            (b"Host", target.url.netloc),
            (b"User-Agent", USER_AGENT.encode()),
            (b"Accept", b"image/*, */*;q=0.5"),
            (b"Accept-Encoding", b"identity"),
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
            pool.stream("GET", url, headers=headers, extensions={"timeout": timeouts}) as response,
        ):
            status = response.status
            logger.debug(
                "image fetch hop",
                extra={
                    "field": self.field,
                    "url": redact_url(target.url),
                    "address": str(backend.connected_to),
                    "status": status,
                },
            )
            if status in REDIRECT_STATUSES:
                location = _header(response.headers, b"location")
                if location is None:
                    raise self.error(f"returned HTTP {status} without a Location header")
                return _Hop(status=status, location=location)
            if not 200 <= status < 300:
                raise self.error(f"returned HTTP {status}")
            length = _header(response.headers, b"content-length")
            if length and length.strip().isdigit() and int(length) > self.policy.max_bytes:
                raise self.too_big()
            encoding = (_header(response.headers, b"content-encoding") or "identity").lower()
            data = self.read_body(response.iter_stream(), encoding)
            return _Hop(
                status=status, data=data, content_type=_header(response.headers, b"content-type")
            )

    def read_body(self, chunks: Iterator[bytes], encoding: str) -> bytes:
        """Read at most ``max_bytes`` (raw and decoded) before the deadline."""
        limit = self.policy.max_bytes
        if encoding in ("identity", ""):
            decoder = None
        elif encoding in ("gzip", "x-gzip", "deflate"):
            decoder = zlib.decompressobj(wbits=47)  # gzip or zlib header, detected
        else:
            raise self.error(f"was sent with an unsupported Content-Encoding '{encoding[:20]}'")
        received = 0
        body = bytearray()
        for chunk in chunks:
            received += len(chunk)
            if received > limit:
                raise self.too_big()
            if decoder is None:
                body += chunk
            else:
                body += decoder.decompress(chunk, limit + 1 - len(body))
                if len(body) > limit or decoder.unconsumed_tail:
                    raise self.too_big()
            if self.deadline.remaining() <= 0:
                raise self.too_slow()
        if decoder is not None:
            body += decoder.flush()
            if len(body) > limit:
                raise self.too_big()
        return bytes(body)


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


def fetch_bytes(url: str, policy: FetchPolicy, *, field: str = "image_url") -> FetchedResource:
    """GET ``url`` under ``policy``; raises ``ImageFetchError`` with a user-actionable message.

    Only 2xx bodies are returned. Redirects are followed by hand (each hop re-vetted) up
    to ``policy.max_redirects``; the whole call ends by ``policy.timeout_seconds``.
    """
    fetch = _Fetch(policy, field)
    try:
        target = parse_target(url, field=field)
    except InvalidRequest as exc:
        raise ImageFetchError(exc.message) from None
    redirects = 0
    while True:
        addresses = fetch.addresses(target, redirected=redirects > 0)
        try:
            hop = fetch.request(target, addresses)
        except httpcore.TimeoutException:
            raise fetch.too_slow() from None
        except httpcore.ConnectError as exc:
            if fetch.deadline.remaining() <= 0:
                raise fetch.too_slow() from None
            raise fetch.error(_describe_connect_error(exc, target.host)) from None
        except (httpcore.ProtocolError, httpcore.NetworkError) as exc:
            if fetch.deadline.remaining() <= 0:
                raise fetch.too_slow() from None
            logger.info(
                "image fetch failed",
                extra={"field": field, "url": redact_url(target.url), "reason": repr(exc)},
            )
            raise fetch.error(
                f"could not be downloaded: the connection to {target.host} failed"
            ) from None
        if hop.location is None:
            final_url = str(target.url)
            logger.info(
                "image fetched",
                extra={
                    "field": field,
                    "url": redact_url(target.url),
                    "bytes": len(hop.data),
                    "redirects": redirects,
                },
            )
            return FetchedResource(
                data=hop.data, content_type=hop.content_type, final_url=final_url
            )
        if redirects >= policy.max_redirects:
            raise fetch.error(f"redirected more than {policy.max_redirects} times")
        redirects += 1
        try:
            target = parse_target(target.url.join(hop.location.strip()), field=field)
        except (InvalidRequest, httpx.InvalidURL, ValueError):
            raise fetch.error("redirects to a URL that cannot be fetched") from None
