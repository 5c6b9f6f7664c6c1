"""HTTP hardening: trusted ``Host`` names, security headers, CORS.

``video.url`` is built from ``REELFORGE_PUBLIC_URL`` or else from the request's ``Host``,
so a forged ``Host`` must never get that far: requests naming a host outside
``REELFORGE_ALLOWED_HOSTS`` (default: the bound address, the localhost names, the public
URL's host, and the machine's own names when bound to every interface) get 400.
``/health`` is exempt: it builds no URL and probes often use an address for ``Host``.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reelforge.api.errors import error_response
from reelforge.settings import Settings

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
WILDCARD_BINDS = ("0.0.0.0", "::", "")  # noqa: S104 - names of the wildcard, not a bind
UNCHECKED_PATHS = frozenset({"/health"})

SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
HTML_CSP = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; "
    b"base-uri 'none'; "
    b"frame-ancestors 'none'"
)
"""For the docs pages: everything from reelforge itself (Swagger UI's page has an inline
script, ReDoc searches in a blob: worker), and no framing by other sites."""
PLAYGROUND_CSP = (
    b"default-src 'self'; script-src 'self'; style-src 'self'; "
    b"img-src 'self' data: blob: http: https:; media-src 'self' blob: http: https:; "
    b"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    b"frame-ancestors 'none'"
)
"""For the playground: its code and style only from reelforge, no inline script; it talks
to this server alone (``connect-src``). Pictures and videos may come from elsewhere
because video URLs may be presigned object-store URLs."""
PLAYGROUND_PATHS = ("/", "/ui/")


def allowed_hosts(settings: Settings) -> list[str]:
    """``REELFORGE_ALLOWED_HOSTS``, else the names this server is reached by by default."""
    if settings.allowed_hosts:
        return list(settings.allowed_hosts)
    hosts = {settings.host.strip("[]").lower(), *LOCAL_HOSTS}
    if settings.public_url:
        hosts.add((urlsplit(settings.public_url).hostname or "").lower())
    if settings.host.strip("[]") in WILDCARD_BINDS:
        hosts.update(_own_names())
    hosts.discard("")
    return sorted(hosts)


def _own_names() -> set[str]:
    """The machine's host names and their addresses (bound to every interface)."""
    names = {socket.gethostname(), socket.getfqdn()}
    addresses: set[str] = set()
    for name in names:
        with contextlib.suppress(OSError):
            addresses.update(str(info[4][0]) for info in socket.getaddrinfo(name, None))
    return {name.lower() for name in names | addresses}


def _host_of(value: str) -> str:
    """The host of a ``Host`` header (``[::1]:8000`` -> ``::1``), lower case."""
    if value.startswith("["):
        return value[1 : value.find("]")].lower() if "]" in value else ""
    return value.rsplit(":", 1)[0].lower() if value.count(":") == 1 else value.lower()


def host_allowed(host: str, patterns: Iterable[str]) -> bool:
    for pattern in patterns:
        if pattern == "*" or host == pattern:
            return True
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return True
    return False


class TrustedHostMiddleware:
    """400 (in the API's error shape) for requests whose ``Host`` is not allowed."""

    def __init__(self, app: ASGIApp, hosts: Iterable[str]) -> None:
        self.app = app
        self.hosts = [host.lower() for host in hosts]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNCHECKED_PATHS:
            await self.app(scope, receive, send)
            return
        host = _host_of(Headers(scope=scope).get("host", ""))
        if host_allowed(host, self.hosts):
            await self.app(scope, receive, send)
            return
        message = (
            f"Host '{host[:100]}' is not served here; an operator allows it with "
            "REELFORGE_ALLOWED_HOSTS (or REELFORGE_PUBLIC_URL)"
        )
        response = error_response(Request(scope), 400, message)
        await response(scope, receive, send)


class SecurityHeadersMiddleware:
    """``nosniff`` and ``no-referrer`` on every response; a CSP on HTML pages."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(item for item in SECURITY_HEADERS if item[0] not in present)
                content_type = dict(headers).get(b"content-type", b"")
                if content_type.startswith(b"text/html"):
                    path = scope["path"]
                    playground = path == "/" or path.startswith(PLAYGROUND_PATHS[1])
                    headers.append(
                        (b"content-security-policy", PLAYGROUND_CSP if playground else HTML_CSP)
                    )
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


CORS_EXPOSED_HEADERS = (
    "x-request-id",
    "x-reelforge-version",
    "x-reelforge-wait",
    "x-reelforge-warning",
    "idempotent-replayed",
    "retry-after",
    "content-range",
    "accept-ranges",
    "content-length",
)
CORS_ALLOWED_HEADERS = (
    "authorization",
    "content-type",
    "idempotency-key",
    "range",
    "if-range",
    "x-goog-api-key",  # Google's SDKs send the key so (the Google door)
    "x-goog-api-client",
)
