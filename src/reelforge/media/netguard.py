"""Which hosts and addresses image fetches may reach (server-side request forgery guard).

Users hand us URLs and we fetch them from inside the operator's network, so every URL is
judged by the address it *resolves to*, never by how it is spelled: ``2130706433``,
``0x7f.1``, ``[::ffff:127.0.0.1]`` and ``localhost.`` all mean loopback. Anything that is
not globally routable is refused unless the operator lists it in ``FetchPolicy.allow``.

``check_url`` is the cheap submit-time check (syntax, literal addresses, one DNS lookup
with a short timeout). ``reelforge.media.fetch`` repeats the resolution at fetch time and
connects to exactly the addresses vetted here, so DNS rebinding cannot slip through.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from reelforge.errors import InvalidRequest

if TYPE_CHECKING:
    from reelforge.settings import Settings

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]
"""``resolver(host, port) -> addresses``; raises ``OSError`` when the name does not resolve."""

FETCH_TIMEOUT_SECONDS = 20.0
MAX_IMAGE_BYTES = 20 * 2**20
MAX_REDIRECTS = 3
SUBMIT_RESOLVE_TIMEOUT_SECONDS = 3.0
MAX_URL_CHARS = 16 * 1024
DEFAULT_PORTS = {"http": 80, "https": 443}

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
_FORBIDDEN_V4: tuple[ipaddress.IPv4Network, ...] = (
    _V4("0.0.0.0/8"),  # "this network"; 0.0.0.0 reaches the local host on Linux
    _V4("10.0.0.0/8"),
    _V4("100.64.0.0/10"),  # carrier-grade NAT
    _V4("127.0.0.0/8"),
    _V4("169.254.0.0/16"),  # link-local, incl. the 169.254.169.254 metadata service
    _V4("172.16.0.0/12"),
    _V4("192.0.0.0/24"),  # IETF protocol assignments
    _V4("192.0.2.0/24"),  # documentation
    _V4("192.88.99.0/24"),  # 6to4 relay anycast
    _V4("192.168.0.0/16"),
    _V4("198.18.0.0/15"),  # benchmarking
    _V4("198.51.100.0/24"),  # documentation
    _V4("203.0.113.0/24"),  # documentation
    _V4("224.0.0.0/4"),  # multicast
    _V4("240.0.0.0/4"),  # reserved, incl. broadcast
)
_V6_GLOBAL_UNICAST = _V6("2000::/3")
_V6_IPV4_COMPATIBLE = _V6("::/96")
_V6_NAT64 = _V6("64:ff9b::/96")
_FORBIDDEN_V6_IN_GLOBAL: tuple[ipaddress.IPv6Network, ...] = (
    _V6("2001::/23"),  # IETF protocol assignments: Teredo, benchmarking, ORCHID, ...
    _V6("2001:db8::/32"),  # documentation
    _V6("3fff::/20"),  # documentation
)

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME_RE = re.compile(rf"^(?:{_LABEL}\.)*{_LABEL}\.?$")
_NUMERIC_PART_RE = re.compile(r"^(?:0[xX][0-9a-fA-F]*|[0-9]+)$")


class ResolutionError(OSError):
    """A host name did not resolve (internal to ``reelforge.media``; never reaches users)."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


@dataclass(frozen=True)
class FetchPolicy:
    """Limits and permissions for fetching user-supplied URLs.

    ``allow`` holds CIDRs (``10.1.0.0/16``, a bare IP) or host names (``images.corp``,
    ``*.corp`` for subdomains) that the operator explicitly permits even though they are
    internal. ``resolver`` and ``ssl_context`` are injectable for tests and private CAs.
    """

    allow: tuple[str, ...] = ()
    timeout_seconds: float = FETCH_TIMEOUT_SECONDS
    max_bytes: int = MAX_IMAGE_BYTES
    max_redirects: int = MAX_REDIRECTS
    resolver: Resolver | None = field(default=None, compare=False, repr=False)
    ssl_context: ssl.SSLContext | None = field(default=None, compare=False, repr=False)
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)
    _hosts: frozenset[str] = field(init=False, repr=False, compare=False)
    _suffixes: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.timeout_seconds <= 0 or self.max_bytes <= 0 or self.max_redirects < 0:
            raise ValueError("FetchPolicy limits must be positive")
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        suffixes: list[str] = []
        for raw in self.allow:
            entry = raw.strip().lower().rstrip(".")
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            name = entry[2:] if entry.startswith("*.") else entry
            if not name or not _HOSTNAME_RE.match(name):
                raise ValueError(f"fetch allow entry {raw!r} is neither a CIDR nor a host name")
            if entry.startswith("*."):
                suffixes.append("." + name)
            else:
                hosts.add(name)
        object.__setattr__(self, "_networks", tuple(networks))
        object.__setattr__(self, "_hosts", frozenset(hosts))
        object.__setattr__(self, "_suffixes", tuple(suffixes))

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchPolicy:
        """The policy the service runs with (``REELFORGE_FETCH_*``, ``REELFORGE_MAX_IMAGE_*``)."""
        return cls(
            allow=tuple(settings.fetch_allow),
            timeout_seconds=settings.fetch_timeout_seconds,
            max_bytes=settings.max_image_bytes,
        )

    def allows_host(self, host: str) -> bool:
        """Whether the operator permits ``host`` by name (any address it resolves to)."""
        name = host.lower().rstrip(".")
        return name in self._hosts or any(name.endswith(s) for s in self._suffixes)

    def allows_address(self, ip: IPAddress) -> bool:
        """Whether the operator permits ``ip`` through an allowed network."""
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)
        return any(c in net for c in candidates for net in self._networks)

    def permits(self, host: str, ip: IPAddress) -> bool:
        """Whether a connection to ``ip`` on behalf of URL host ``host`` may be made."""
        return self.allows_host(host) or not is_forbidden(ip, self)


def _embedded_v4_forbidden(ip: ipaddress.IPv6Address) -> bool | None:
    """Verdict for v6 forms that carry an IPv4 address, or None if ``ip`` is not one."""
    if ip.ipv4_mapped is not None:
        return _forbidden(ip.ipv4_mapped)
    if ip in _V6_IPV4_COMPATIBLE:
        return True  # deprecated IPv4-compatible form, and :: / ::1
    if ip in _V6_NAT64:
        return _forbidden(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        return _forbidden(ip.sixtofour)
    return None


def _forbidden(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv4Address):
        return any(ip in net for net in _FORBIDDEN_V4)
    embedded = _embedded_v4_forbidden(ip)
    if embedded is not None:
        return embedded
    if ip not in _V6_GLOBAL_UNICAST:
        return True  # loopback, unique-local, link-local, site-local, multicast, reserved
    return any(ip in net for net in _FORBIDDEN_V6_IN_GLOBAL)


def is_forbidden(ip: str | IPAddress, policy: FetchPolicy | None = None) -> bool:
    """Whether fetching from ``ip`` must be refused: anything not globally routable.

    Strings may use any spelling a URL host could (``0177.1``, ``::ffff:7f00:1``); networks
    in ``policy.allow`` override the verdict. Raises ``ValueError`` for a non-address.
    """
    if isinstance(ip, str):
        parsed = parse_ip_literal(ip)
        if parsed is None:
            raise ValueError(f"not an IP address: {ip!r}")
        ip = parsed
    if policy is not None and policy.allows_address(ip):
        return False
    return _forbidden(ip)


def _parse_ipv4_number(part: str) -> int | None:
    if part[:2] in ("0x", "0X"):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8) if all(c in "01234567" for c in part) else None
    return int(part)


def _looks_numeric(host: str) -> bool:
    """WHATWG rule: a host whose last label is a number must be an IPv4 address."""
    labels = host.rstrip(".").split(".")
    return bool(_NUMERIC_PART_RE.match(labels[-1]))


def _parse_ipv4_loose(host: str) -> ipaddress.IPv4Address | None:
    """Parse inet_aton/WHATWG spellings: ``127.1``, ``0177.0.0.1``, ``0x7f000001``, ``2130706433``.

    These are what ``getaddrinfo`` would turn into an address without asking DNS.
    """
    parts = host.split(".")
    if parts and parts[-1] == "":
        parts.pop()
    if not 1 <= len(parts) <= 4 or not all(_NUMERIC_PART_RE.match(p) for p in parts):
        return None
    numbers = [_parse_ipv4_number(p) for p in parts]
    if any(n is None for n in numbers):
        return None
    *head, last = [n for n in numbers if n is not None]
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(parts)):
        return None
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a host string denotes literally, in any spelling, else None."""
    text = host.strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        text = text.replace("%25", "%").split("%", 1)[0]  # drop an IPv6 zone id
        try:
            return ipaddress.IPv6Address(text)
        except ValueError:
            return None
    return _parse_ipv4_loose(text)


def _is_local_name(host: str) -> bool:
    name = host.lower().rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


@dataclass(frozen=True)
class Target:
    """A parsed, syntactically safe fetch target, as the HTTP client will see it."""

    url: httpx.URL
    host: str
    """ASCII host as it appears in the URL (punycode, lowercase; IPv6 without brackets)."""
    port: int
    ip: IPAddress | None
    """Set when the host is an IP literal in any spelling; no DNS is involved then."""

    @property
    def is_local_name(self) -> bool:
        """``localhost`` and its subdomains, loopback by definition (RFC 6761)."""
        return self.ip is None and _is_local_name(self.host)


def parse_target(url: str | httpx.URL, *, field: str = "image_url") -> Target:
    """Parse ``url`` with httpx's own parser and refuse anything but plain http(s) URLs.

    Using ``httpx.URL`` guarantees the host we judge is the host the client would use.
    """
    if isinstance(url, str):
        if len(url) > MAX_URL_CHARS:
            raise InvalidRequest(f"{field} is longer than {MAX_URL_CHARS} characters", field)
        try:
            parsed = httpx.URL(url.strip())
        except (httpx.InvalidURL, TypeError, ValueError):
            raise InvalidRequest(f"{field} is not a valid URL", field) from None
    else:
        parsed = url
    scheme = parsed.scheme
    if scheme not in DEFAULT_PORTS:
        shown = scheme if re.fullmatch(r"[a-z][a-z0-9+.-]{0,19}", scheme) else "?"
        message = (
            f"{field} must be an http or https URL; the scheme '{shown}' is not supported"
            if scheme
            else f"{field} must be an absolute http or https URL"
        )
        raise InvalidRequest(message, field)
    if parsed.userinfo:
        raise InvalidRequest(f"{field} must not contain a user name or password", field)
    host = parsed.raw_host.decode("ascii", errors="replace").lower()
    if not host:
        raise InvalidRequest(f"{field} has no host name", field)
    port = parsed.port if parsed.port is not None else DEFAULT_PORTS[scheme]
    if not 0 < port < 65536:
        raise InvalidRequest(f"{field} has an invalid port {port}", field)
    ip = parse_ip_literal(host)
    if ip is None and (
        len(host) > 254 or ":" in host or _looks_numeric(host) or not _HOSTNAME_RE.match(host)
    ):
        raise InvalidRequest(f"{field} has an invalid host name", field)
    return Target(url=parsed, host=host, port=port, ip=ip)


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def resolve_host(host: str, port: int, policy: FetchPolicy, *, timeout: float) -> list[IPAddress]:
    """Resolve ``host`` once (policy resolver or the system's), giving up after ``timeout``.

    Runs in a daemon thread because ``getaddrinfo`` cannot be cancelled; a hung lookup
    is abandoned, not waited for. Raises ``ResolutionError``.
    """
    resolver = policy.resolver or _system_resolver
    results: list[list[str]] = []
    errors: list[Exception] = []
    done = threading.Event()

    def run() -> None:
        try:
            results.append(list(resolver(host, port)))
        except Exception as exc:
            errors.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name="reelforge-resolve", daemon=True).start()
    if not done.wait(max(timeout, 0.0)):
        raise ResolutionError(f"resolving {host} timed out", timed_out=True)
    if errors:
        raise ResolutionError(f"resolving {host} failed: {errors[0]}")
    addresses: list[IPAddress] = []
    for raw in results[0] if results else []:
        ip = parse_ip_literal(str(raw))
        if ip is not None and ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise ResolutionError(f"{host} has no addresses")
    return addresses


def redact_url(url: str | httpx.URL) -> str:
    """``scheme://host[:port]/path`` for logs: no query string, fragment or credentials."""
    try:
        parsed = httpx.URL(url) if isinstance(url, str) else url
        path = parsed.raw_path.split(b"?", 1)[0].decode("ascii", errors="replace")
        host = parsed.raw_host.decode("ascii", errors="replace")
        if ":" in host:
            host = f"[{host}]"
        port = f":{parsed.port}" if parsed.port is not None else ""
        return f"{parsed.scheme}://{host}{port}{path}"[:300]
    except (httpx.InvalidURL, TypeError, ValueError):
        return "<invalid url>"


def _refuse(field: str, target: Target, *, resolved: bool) -> InvalidRequest:
    logger.info(
        "refused non-public fetch target",
        extra={"field": field, "url": redact_url(target.url)},
    )
    if target.ip is not None:
        what = f"{field} points to {target.ip}, which is not a public internet address"
    elif resolved:
        what = f"{field} host {target.host} resolves to a non-public address"
    else:
        what = f"{field} host {target.host} is a local name"
    return InvalidRequest(f"{what}; {public_only(field)}", field)


ALLOW_HINT = "an operator can allow others with REELFORGE_FETCH_ALLOW (CIDRs or host names)"


def public_only(field: str) -> str:
    """The end of every refusal: what may be used, and the setting that allows more."""
    return f"only publicly reachable {media_word(field)} can be used; {ALLOW_HINT}"


def media_word(field: str) -> str:
    """What a field's URL points at, for messages: ``videos`` for ``video_url``."""
    if field.startswith("video"):
        return "videos"
    if field.startswith(("image", "tail_image", "last_image")):
        return "images"
    return "addresses"


def check_url(
    url: str,
    policy: FetchPolicy,
    *,
    field: str = "image_url",
    resolve: bool = True,
    resolve_timeout: float = SUBMIT_RESOLVE_TIMEOUT_SECONDS,
) -> None:
    """Submit-time check of a URL the service will fetch later; raises ``InvalidRequest``.

    Literal addresses are judged without DNS. Names are resolved once (if ``resolve``)
    and refused when any address is forbidden; a name that does not resolve in time is
    accepted, because the worker resolves again and reports the failure on the job.
    """
    target = parse_target(url, field=field)
    if target.ip is not None:
        if not policy.permits(target.host, target.ip):
            raise _refuse(field, target, resolved=False)
        return
    if policy.allows_host(target.host):
        return
    if target.is_local_name:
        raise _refuse(field, target, resolved=False)
    if not resolve:
        return
    try:
        addresses = resolve_host(target.host, target.port, policy, timeout=resolve_timeout)
    except ResolutionError as exc:
        logger.info(
            "submit-time resolution failed; leaving it to the worker",
            extra={"field": field, "url": redact_url(target.url), "reason": str(exc)},
        )
        return
    if not all(policy.permits(target.host, ip) for ip in addresses):
        raise _refuse(field, target, resolved=True)
