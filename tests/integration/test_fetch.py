"""The SSRF-safe fetcher against real HTTP(S) servers on loopback.

Loopback is exactly what the fetcher must refuse, so each test permits its server
explicitly (``allow``) and the interesting cases check what happens *without* that
permission: the server must not even see a connection.
"""

from __future__ import annotations

import gzip
import http.server
import io
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image

from reelforge import __version__
from reelforge.errors import ImageFetchError
from reelforge.media.fetch import fetch_bytes
from reelforge.media.images import load_image
from reelforge.media.netguard import FetchPolicy

pytestmark = pytest.mark.integration

Route = Callable[["Handler"], None]


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 9), (200, 30, 60)).save(buffer, "PNG")
    return buffer.getvalue()


PNG = _png()


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


@dataclass
class Server:
    """A threaded HTTP server on loopback that records every connection and request."""

    host: str
    routes: dict[str, Route]
    tls: ssl.SSLContext | None = None
    requests: list[Seen] = field(default_factory=list)
    connections: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    httpd: http.server.ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self.httpd is not None
        return self.httpd.server_address[1]

    def url(self, path: str, host: str | None = None) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host or self.host}:{self.port}{path}"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def do_GET(self) -> None:
        owner = self.server.owner
        owner.requests.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
        route = owner.routes.get(self.path.split("?", 1)[0])
        if route is None:
            self.reply(404, b"not found", "text/plain")
        else:
            route(self)

    def reply(self, status: int, body: bytes, content_type: str = "image/png") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, location: str, status: int = 302) -> None:
        self.send_response(status)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: Server

    def verify_request(self, request: object, client_address: object) -> bool:
        self.owner.connections += 1
        return True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hanging up on purpose (limits, deadlines) are expected here


@pytest.fixture
def make_server() -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def make(
        routes: dict[str, Route] | None = None,
        host: str = "127.0.0.1",
        tls: ssl.SSLContext | None = None,
    ) -> Server:
        server = Server(host=host, routes=dict(routes or {}), tls=tls)
        httpd = _HTTPServer((host, 0), Handler)
        httpd.owner = server
        if tls is not None:
            httpd.socket = tls.wrap_socket(
                httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        server.httpd = httpd
        threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop.set()
        assert server.httpd is not None
        server.httpd.shutdown()
        server.httpd.server_close()


def image(handler: Handler) -> None:
    handler.reply(200, PNG)


def status(code: int) -> Route:
    return lambda handler: handler.reply(code, b"nope", "text/plain")


def redirect(location: str, code: int = 302) -> Route:
    return lambda handler: handler.redirect(location, code)


def always(address: str) -> Callable[[str, int], list[str]]:
    return lambda host, port: [address]


LOCAL = FetchPolicy(allow=("127.0.0.1/32",))


# --- success and refusal ---------------------------------------------------------------


def test_fetch_returns_the_bytes(make_server: Callable[..., Server]) -> None:
    server = make_server({"/cat.png": image})
    result = fetch_bytes(server.url("/cat.png?size=large"), LOCAL, field="image_url")
    assert result.data == PNG
    assert result.content_type == "image/png"
    assert result.final_url == server.url("/cat.png?size=large")
    [seen] = server.requests
    assert seen.path == "/cat.png?size=large"
    assert seen.headers["user-agent"] == f"reelforge/{__version__}"
    assert seen.headers["host"] == f"127.0.0.1:{server.port}"
    assert "cookie" not in seen.headers
    assert "authorization" not in seen.headers


def test_load_image_end_to_end(make_server: Callable[..., Server]) -> None:
    server = make_server({"/cat.png": image})
    picture = load_image(server.url("/cat.png"), LOCAL, field="image_url", max_pixels=10_000)
    assert (picture.mode, picture.size) == ("RGB", (16, 9))


def test_refused_without_allow_and_server_never_contacted(
    make_server: Callable[..., Server],
) -> None:
    server = make_server({"/cat.png": image})
    for url, policy in (
        (server.url("/cat.png"), FetchPolicy()),
        (server.url("/cat.png", host="cats.test"), FetchPolicy(resolver=always("127.0.0.1"))),
        (server.url("/cat.png", host="2130706433"), FetchPolicy()),
        (server.url("/cat.png", host="[::ffff:127.0.0.1]"), FetchPolicy()),
        (server.url("/cat.png", host="localhost"), FetchPolicy()),
        (server.url("/cat.png"), FetchPolicy(allow=("127.0.0.2/32",))),
    ):
        with pytest.raises(ImageFetchError, match="not public"):
            fetch_bytes(url, policy, field="image_url")
    time.sleep(0.1)
    assert server.connections == 0
    assert server.requests == []


def test_allow_by_host_name(make_server: Callable[..., Server]) -> None:
    server = make_server({"/cat.png": image})
    policy = FetchPolicy(allow=("cats.test",), resolver=always("127.0.0.1"))
    assert fetch_bytes(server.url("/cat.png", host="cats.test"), policy).data == PNG
    assert server.requests[0].headers["host"] == f"cats.test:{server.port}"


@pytest.mark.parametrize("code", [404, 403, 500, 204])
def test_status_codes(make_server: Callable[..., Server], code: int) -> None:
    server = make_server({"/x": status(code)})
    if code == 204:
        assert fetch_bytes(server.url("/x"), LOCAL).data == b""
        return
    with pytest.raises(ImageFetchError) as info:
        fetch_bytes(server.url("/x"), LOCAL, field="tail_image_url")
    assert info.value.message == f"tail_image_url returned HTTP {code}"


def test_unresolvable_host() -> None:
    def nxdomain(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(ImageFetchError) as info:
        fetch_bytes("https://x.example/a.png", FetchPolicy(resolver=nxdomain))
    assert info.value.message == "image_url host x.example could not be resolved"


def test_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ImageFetchError, match="refused the connection"):
        fetch_bytes(f"http://127.0.0.1:{port}/a.png", LOCAL)


# --- redirects ------------------------------------------------------------------------


def chain(length: int) -> dict[str, Route]:
    routes: dict[str, Route] = {
        f"/hop/{n}": redirect(f"/hop/{n - 1}") for n in range(1, length + 1)
    }
    routes["/hop/0"] = image
    return routes


def test_redirects_within_limit(make_server: Callable[..., Server]) -> None:
    server = make_server(chain(3))
    result = fetch_bytes(server.url("/hop/3"), LOCAL)
    assert result.data == PNG
    assert result.final_url == server.url("/hop/0")
    assert [r.path for r in server.requests] == ["/hop/3", "/hop/2", "/hop/1", "/hop/0"]


def test_too_many_redirects(make_server: Callable[..., Server]) -> None:
    server = make_server(chain(4))
    with pytest.raises(ImageFetchError) as info:
        fetch_bytes(server.url("/hop/4"), LOCAL)
    assert info.value.message == "image_url redirected more than 3 times"
    assert len(server.requests) == 4
    server.requests.clear()
    with pytest.raises(ImageFetchError, match="more than 1 times"):
        fetch_bytes(server.url("/hop/2"), FetchPolicy(allow=LOCAL.allow, max_redirects=1))
    assert len(server.requests) == 2


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_redirect_codes_and_relative_locations(
    make_server: Callable[..., Server], code: int
) -> None:
    server = make_server({"/a/b": redirect("../img/cat.png", code), "/img/cat.png": image})
    assert fetch_bytes(server.url("/a/b"), LOCAL).final_url == server.url("/img/cat.png")


def test_redirect_to_forbidden_address_by_ip(make_server: Callable[..., Server]) -> None:
    target = make_server({"/secret": image}, host="127.0.0.1")
    entry = make_server({"/start": redirect(target.url("/secret"))}, host="127.0.0.2")
    policy = FetchPolicy(allow=("127.0.0.2/32",))
    with pytest.raises(ImageFetchError) as info:
        fetch_bytes(entry.url("/start"), policy)
    assert info.value.message.startswith("image_url redirects to a forbidden address")
    assert "REELFORGE_FETCH_ALLOW" in info.value.message and info.value.refused
    assert len(entry.requests) == 1
    time.sleep(0.1)
    assert target.connections == 0


def test_redirect_to_forbidden_address_by_name(make_server: Callable[..., Server]) -> None:
    target = make_server({"/secret": image})
    entry = make_server(
        {
            "/to-name": redirect(target.url("/secret", host="internal.test")),
            "/to-metadata": redirect("http://169.254.169.254/latest/meta-data/"),
            "/to-decimal": redirect(f"http://2130706433:{target.port}/secret"),
            "/to-mapped": redirect(f"http://[::ffff:7f00:1]:{target.port}/secret"),
        }
    )
    policy = FetchPolicy(allow=("images.test",), resolver=always("127.0.0.1"))
    for path in ("/to-name", "/to-metadata", "/to-decimal", "/to-mapped"):
        with pytest.raises(ImageFetchError, match="redirects to a forbidden address"):
            fetch_bytes(entry.url(path, host="images.test"), policy)
    time.sleep(0.1)
    assert target.connections == 0
    assert len(entry.requests) == 4


@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://x.test/a", "gopher://x/"])
def test_redirect_to_other_schemes(make_server: Callable[..., Server], location: str) -> None:
    server = make_server({"/go": redirect(location)})
    with pytest.raises(ImageFetchError, match="redirects to a URL that cannot be fetched"):
        fetch_bytes(server.url("/go"), LOCAL)


def test_redirect_without_location(make_server: Callable[..., Server]) -> None:
    server = make_server({"/go": status(302)})
    with pytest.raises(ImageFetchError, match="HTTP 302 without a Location"):
        fetch_bytes(server.url("/go"), LOCAL)


def test_cookies_are_not_carried_across_redirects(make_server: Callable[..., Server]) -> None:
    def set_cookie(handler: Handler) -> None:
        handler.send_response(302)
        handler.send_header("Set-Cookie", "session=abc; Path=/")
        handler.send_header("Location", "/cat.png")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    server = make_server({"/login": set_cookie, "/cat.png": image})
    fetch_bytes(server.url("/login"), LOCAL)
    assert all("cookie" not in r.headers for r in server.requests)


# --- DNS rebinding ----------------------------------------------------------------------


class Rebinder:
    """Answers with the vetted address first and a forbidden one on every later lookup."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        return ["127.0.0.1"] if len(self.calls) == 1 else ["169.254.169.254"]


def test_connection_goes_to_the_vetted_address(make_server: Callable[..., Server]) -> None:
    server = make_server({"/cat.png": image})
    rebinder = Rebinder()
    policy = FetchPolicy(allow=("127.0.0.1/32",), resolver=rebinder)
    assert fetch_bytes(server.url("/cat.png", host="rebind.test"), policy).data == PNG
    assert rebinder.calls == ["rebind.test"]  # the HTTP client never resolved it again
    assert server.requests[0].headers["host"] == f"rebind.test:{server.port}"


def test_each_redirect_hop_is_resolved_once_and_vetted(
    make_server: Callable[..., Server],
) -> None:
    server = make_server({"/cat.png": image})
    server.routes["/start"] = redirect(server.url("/cat.png", host="rebind.test"))
    rebinder = Rebinder()
    policy = FetchPolicy(allow=("127.0.0.1/32",), resolver=rebinder)
    with pytest.raises(ImageFetchError, match="redirects to a forbidden address"):
        fetch_bytes(server.url("/start", host="rebind.test"), policy)
    assert rebinder.calls == ["rebind.test", "rebind.test"]
    assert [r.path for r in server.requests] == ["/start"]


def test_resolver_called_once_per_hop(make_server: Callable[..., Server]) -> None:
    server = make_server(chain(2))
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"]

    policy = FetchPolicy(allow=("127.0.0.1/32",), resolver=resolver)
    fetch_bytes(server.url("/hop/2", host="cats.test"), policy)
    assert calls == ["cats.test"] * 3


# --- size limits ----------------------------------------------------------------------


def test_content_length_too_big(make_server: Callable[..., Server]) -> None:
    server = make_server({"/big": lambda h: h.reply(200, b"x" * 5000)})
    policy = FetchPolicy(allow=LOCAL.allow, max_bytes=1000)
    with pytest.raises(ImageFetchError) as info:
        fetch_bytes(server.url("/big"), policy)
    assert info.value.message == "image_url is larger than 1000 bytes"


def test_default_limit_message(make_server: Callable[..., Server]) -> None:
    def huge(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(21 * 2**20))
        handler.end_headers()

    server = make_server({"/huge": huge})
    with pytest.raises(ImageFetchError) as info:
        fetch_bytes(server.url("/huge"), LOCAL)
    assert info.value.message == "image_url is larger than 20 MiB"


def test_endless_chunked_body_cut_off(make_server: Callable[..., Server]) -> None:
    sent: list[int] = [0]

    def endless(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        chunk = b"z" * 16384
        while not handler.server.owner.stop.is_set():
            try:
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:
                return
            sent[0] += len(chunk)

    server = make_server({"/endless": endless})
    policy = FetchPolicy(allow=LOCAL.allow, max_bytes=256 * 1024)
    started = time.monotonic()
    with pytest.raises(ImageFetchError) as info:
        fetch_bytes(server.url("/endless"), policy)
    assert info.value.message == "image_url is larger than 256 KiB"
    assert time.monotonic() - started < 5
    # The server thread counts a chunk after its write returns, maybe after we looked.
    assert sent[0] >= 256 * 1024 - 16384


def test_gzip_encoded_body_is_decoded_within_limits(make_server: Callable[..., Server]) -> None:
    def gzipped(payload: bytes) -> Route:
        def route(handler: Handler) -> None:
            body = gzip.compress(payload)
            handler.send_response(200)
            handler.send_header("Content-Encoding", "gzip")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)

        return route

    server = make_server({"/ok": gzipped(PNG), "/bomb": gzipped(b"\0" * (4 * 2**20))})
    policy = FetchPolicy(allow=LOCAL.allow, max_bytes=2**20)
    assert fetch_bytes(server.url("/ok"), policy).data == PNG
    with pytest.raises(ImageFetchError, match="larger than 1 MiB"):
        fetch_bytes(server.url("/bomb"), policy)


# --- deadline -------------------------------------------------------------------------


def test_slow_drip_cut_off_at_deadline(make_server: Callable[..., Server]) -> None:
    def drip(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        while not handler.server.owner.stop.is_set():
            try:
                handler.wfile.write(b"x")
                handler.wfile.flush()
            except OSError:
                return
            time.sleep(0.05)

    server = make_server({"/drip": drip})
    policy = FetchPolicy(allow=LOCAL.allow, timeout_seconds=1.0)
    started = time.monotonic()
    with pytest.raises(ImageFetchError) as info:
        fetch_bytes(server.url("/drip"), policy)
    elapsed = time.monotonic() - started
    assert info.value.message == "image_url took longer than 1 s"
    assert 0.9 < elapsed < 2.0


def test_stalled_headers_cut_off_at_deadline(make_server: Callable[..., Server]) -> None:
    server = make_server({"/stall": lambda h: h.server.owner.stop.wait(10)})
    policy = FetchPolicy(allow=LOCAL.allow, timeout_seconds=0.5)
    started = time.monotonic()
    with pytest.raises(ImageFetchError, match=r"took longer than 0\.5 s"):
        fetch_bytes(server.url("/stall"), policy)
    assert time.monotonic() - started < 1.5


def test_deadline_covers_redirects(make_server: Callable[..., Server]) -> None:
    def slow_redirect(handler: Handler) -> None:
        time.sleep(0.4)
        handler.redirect("/slow")

    server = make_server({"/slow": slow_redirect})
    policy = FetchPolicy(allow=LOCAL.allow, timeout_seconds=1.0, max_redirects=10)
    started = time.monotonic()
    with pytest.raises(ImageFetchError, match="took longer than 1 s"):
        fetch_bytes(server.url("/slow"), policy)
    assert time.monotonic() - started < 2.0


def test_deadline_covers_dns() -> None:
    def slow(host: str, port: int) -> list[str]:
        time.sleep(3)
        return ["127.0.0.1"]

    policy = FetchPolicy(allow=LOCAL.allow, resolver=slow, timeout_seconds=0.5)
    started = time.monotonic()
    with pytest.raises(ImageFetchError, match=r"took longer than 0\.5 s"):
        fetch_bytes("http://slow.test/a.png", policy)
    assert time.monotonic() - started < 1.5


# --- TLS: the vetted IP is dialled, the certificate is checked against the URL's name -----


@dataclass
class Pki:
    ca: Path
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make test certificates")
    d = tmp_path_factory.mktemp("pki")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=d, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=reelforge test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=images.test")
    (d / "ext.cnf").write_text(
        "subjectAltName=DNS:images.test\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")  # fmt: skip
    return Pki(ca=d / "ca.pem", cert=d / "server.pem", key=d / "server.key")


@pytest.fixture
def tls_server(make_server: Callable[..., Server], pki: Pki) -> tuple[Server, list[str | None]]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.cert, pki.key)
    sni: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: sni.append(name)  # type: ignore[assignment]
    return make_server({"/cat.png": image}, tls=context), sni


def test_tls_verifies_the_url_host_while_dialling_the_vetted_ip(
    tls_server: tuple[Server, list[str | None]], pki: Pki
) -> None:
    server, sni = tls_server
    trusting = ssl.create_default_context(cafile=str(pki.ca))
    policy = FetchPolicy(allow=LOCAL.allow, resolver=always("127.0.0.1"), ssl_context=trusting)
    result = fetch_bytes(server.url("/cat.png", host="images.test"), policy)
    assert result.data == PNG
    assert sni == ["images.test"]
    assert server.requests[0].headers["host"] == f"images.test:{server.port}"


def test_tls_certificate_for_another_name_is_refused(
    tls_server: tuple[Server, list[str | None]], pki: Pki
) -> None:
    server, _ = tls_server
    trusting = ssl.create_default_context(cafile=str(pki.ca))
    policy = FetchPolicy(allow=LOCAL.allow, resolver=always("127.0.0.1"), ssl_context=trusting)
    with pytest.raises(ImageFetchError) as info:
        fetch_bytes(server.url("/cat.png", host="other.test"), policy)
    assert "other.test presented a TLS certificate that could not be verified" in (
        info.value.message
    )
    assert "mismatch" in info.value.message.lower()
    with pytest.raises(ImageFetchError, match="could not be verified"):
        fetch_bytes(server.url("/cat.png"), policy)  # by IP: the cert names no IP
    assert server.requests == []


def test_tls_untrusted_ca_is_refused_by_default(
    tls_server: tuple[Server, list[str | None]],
) -> None:
    server, _ = tls_server
    policy = FetchPolicy(allow=LOCAL.allow, resolver=always("127.0.0.1"))
    with pytest.raises(ImageFetchError, match="could not be verified"):
        fetch_bytes(server.url("/cat.png", host="images.test"), policy)
    assert server.requests == []
