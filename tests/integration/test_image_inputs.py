"""Image inputs against a live server: a hostile-input suite and a gallery of awkward images.

Two loopback servers stand in for the world: "public" on 127.0.0.2 (allowed through
``REELFORGE_FETCH_ALLOW``) plays the internet, "internal" on 127.0.0.1 plays the
operator's private network and must never receive a single request through
``image_url``, however the address is spelled or redirected.
"""

from __future__ import annotations

import base64
import functools
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from PIL import Image

from gallery import GALLERY, bomb_png
from reelforge.media.fit import fit_frame
from support import LiveServer, difference, encode_image, first_frame, inspect_mp4, picture

pytestmark = pytest.mark.integration

PUBLIC_HOST = "127.0.0.2"
MAX_IMAGE_BYTES = 3_000_000
FETCH_TIMEOUT_SECONDS = 2
GOOD_JPEG = encode_image(picture((800, 600), seed=40))


@functools.cache
def gallery_image(name: str) -> tuple[bytes, Image.Image]:
    """Built once: the fake internet must answer well within the 2 s fetch limit."""
    return GALLERY[name]()


class Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__((host, 0), handler)
        self.requests: list[str] = []
        self.connections = 0

    def get_request(self):
        self.connections += 1
        return super().get_request()

    @property
    def base(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class PublicHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", content_type: str = "image/jpeg") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        url = urlparse(self.path)
        query = parse_qs(url.query)
        route = url.path
        if route == "/ok.jpg":
            self._send(200, GOOD_JPEG)
        elif route == "/redirect":
            self.send_response(302)
            self.send_header("Location", query["to"][0])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif route.startswith("/chain/"):
            hops = int(route.rsplit("/", 1)[1])
            if hops == 0:
                self._send(200, GOOD_JPEG)
            else:
                self.send_response(301)
                self.send_header("Location", f"/chain/{hops - 1}")
                self.send_header("Content-Length", "0")
                self.end_headers()
        elif route == "/slow.jpg":
            self.send_response(200)
            self.send_header("Content-Length", str(len(GOOD_JPEG)))
            self.end_headers()
            for byte in GOOD_JPEG[:200]:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.1)
        elif route == "/endless.jpg":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"\xff" * 65536
            try:
                for _ in range(10_000):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:
                pass
        elif route == "/huge.jpg":
            self.send_response(200)
            self.send_header("Content-Length", str(50 * 2**30))
            self.end_headers()
        elif route == "/bomb.png":
            self._send(200, bomb_png(), "image/png")
        elif route == "/fake.jpg":
            self._send(200, b"<!doctype html><html><body>not an image</body></html>")
        elif route.startswith("/gallery/"):
            data, _ = gallery_image(route.rsplit("/", 1)[1])
            self._send(200, data, "application/octet-stream")
        else:
            self._send(404, b"missing", "text/plain")


class InternalHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(GOOD_JPEG)))
        self.end_headers()
        self.wfile.write(GOOD_JPEG)


def _serve(server: Recorder) -> Recorder:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def internal():
    server = _serve(Recorder("127.0.0.1", InternalHandler))
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def public():
    server = _serve(Recorder(PUBLIC_HOST, PublicHandler))
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def server(tmp_path_factory, internal):
    live = LiveServer(
        home=tmp_path_factory.mktemp("inputs"),
        env={
            "REELFORGE_FETCH_ALLOW": f"{PUBLIC_HOST}/32",
            "REELFORGE_FETCH_TIMEOUT_SECONDS": str(FETCH_TIMEOUT_SECONDS),
            "REELFORGE_MAX_IMAGE_BYTES": str(MAX_IMAGE_BYTES),
            "REELFORGE_WORKERS": "2",
        },
    ).start()
    yield live
    live.stop()
    assert internal.requests == [], "the internal server was reached"
    assert internal.connections == 0, "the internal server saw a connection"
    log = live.log_path.read_text()
    assert "base64," not in log
    assert base64.b64encode(GOOD_JPEG)[1000:1040].decode() not in log


def i2v(image_url: str, **extra: object) -> dict:
    return {
        "model": "google/veo-3.0-i2v",
        "prompt": "slow push in",
        "image_url": image_url,
        "duration": 4,
        "generate_audio": False,
        **extra,
    }


def submit_error(server: LiveServer, body: dict) -> str:
    response = server.create(body)
    assert response.status_code == 400, response.text
    message = response.json()["message"]
    assert "image_url" in message or "tail_image_url" in message
    return message


def job_error(server: LiveServer, body: dict) -> dict:
    response = server.create(body)
    assert response.status_code == 200, response.text
    done = server.wait(response.json()["id"], timeout=60)
    assert done["status"] == "error", done
    assert done["video"] is None
    assert done["meta"]["usage"]["credits_used"] == 0
    return done["error"]


# -- addresses, in every spelling, refused at submit -----------------------------------

INTERNAL_SPELLINGS = [
    "http://127.0.0.1:{port}/x.jpg",
    "http://2130706433:{port}/x.jpg",
    "http://0177.0.0.1:{port}/x.jpg",
    "http://0x7f.0.0.1:{port}/x.jpg",
    "http://0x7f000001:{port}/x.jpg",
    "http://017700000001:{port}/x.jpg",
    "http://127.1:{port}/x.jpg",
    "http://127.0.1:{port}/x.jpg",
    "http://[::1]:{port}/x.jpg",
    "http://[::ffff:127.0.0.1]:{port}/x.jpg",
    "http://[::ffff:7f00:1]:{port}/x.jpg",
    "http://[0:0:0:0:0:ffff:127.0.0.1]:{port}/x.jpg",
    "http://[::127.0.0.1]:{port}/x.jpg",
    "http://[64:ff9b::7f00:1]:{port}/x.jpg",
    "http://[2002:7f00:1::]:{port}/x.jpg",
    "http://localhost:{port}/x.jpg",
    "http://LOCALHOST.:{port}/x.jpg",
    "http://images.localhost:{port}/x.jpg",
    "http://0.0.0.0:{port}/x.jpg",
    "http://0:{port}/x.jpg",
    "http://[::]:{port}/x.jpg",
    "http://user:secret@127.0.0.1:{port}/x.jpg",
    "https://127.0.0.1:{port}/x.jpg",
    "HTTP://127.0.0.1:{port}/x.jpg",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://10.0.0.1/x.jpg",
    "http://172.16.0.1/x.jpg",
    "http://192.168.1.1/x.jpg",
    "http://100.64.0.1/x.jpg",
    "http://198.18.0.1/x.jpg",
    "http://224.0.0.1/x.jpg",
    "http://239.255.255.250/x.jpg",
    "http://240.0.0.1/x.jpg",
    "http://255.255.255.255/x.jpg",
    "http://[fc00::1]/x.jpg",
    "http://[fe80::1]/x.jpg",
    "http://[ff02::1]/x.jpg",
]
OTHER_SCHEMES = [
    "file:///etc/passwd",
    "ftp://127.0.0.1/x.jpg",
    "gopher://127.0.0.1:{port}/_GET",
    "dict://127.0.0.1:{port}/",
    "javascript:alert(1)",
    "//127.0.0.1:{port}/x.jpg",
    "data:text/html;base64,PGh0bWw+",
]


@pytest.mark.parametrize("spelling", INTERNAL_SPELLINGS + OTHER_SCHEMES)
@pytest.mark.parametrize("field", ["image_url", "tail_image_url"])
def test_internal_addresses_are_refused_at_submit(server, internal, spelling, field) -> None:
    url = spelling.format(port=internal.server_address[1])
    if field == "image_url":
        body = i2v(url)
    else:
        body = {
            "model": "veo2/image-to-video",
            "prompt": "x",
            "image_url": f"http://{PUBLIC_HOST}:1/ok.jpg",
            "tail_image_url": url,
        }
    message = submit_error(server, body)
    assert field in message
    assert "secret" not in message


# -- problems found while fetching: the job ends in error -----------------------------


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/x.jpg",
        "http://2130706433:{port}/x.jpg",
        "http://[::ffff:127.0.0.1]:{port}/x.jpg",
        "http://localhost:{port}/x.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
    ],
)
def test_redirects_into_private_space_are_refused(server, public, internal, target) -> None:
    redirect_to = target.format(port=internal.server_address[1])
    url = str(httpx.URL(f"{public.base}/redirect", params={"to": redirect_to}))
    error = job_error(server, i2v(url))
    assert error["name"] == "ImageFetchError"
    assert "redirect" in error["message"]


def test_redirect_chain_within_public_space_works_up_to_the_limit(server, public) -> None:
    response = server.create(i2v(f"{public.base}/chain/3"))
    assert server.wait(response.json()["id"])["status"] == "completed"
    error = job_error(server, i2v(f"{public.base}/chain/4"))
    assert "redirected more than 3 times" in error["message"]


@pytest.mark.parametrize(
    ("path", "name", "words"),
    [
        ("/missing.jpg", "ImageFetchError", "returned HTTP 404"),
        ("/slow.jpg", "ImageFetchError", f"longer than {FETCH_TIMEOUT_SECONDS} s"),
        ("/endless.jpg", "ImageFetchError", "larger than"),
        ("/huge.jpg", "ImageFetchError", "larger than"),
        ("/bomb.png", "InvalidImage", "the limit is"),
        ("/fake.jpg", "InvalidImage", "HTML"),
    ],
)
def test_fetch_problems_end_the_job_with_an_actionable_error(
    server, public, path, name, words
) -> None:
    started = time.monotonic()
    error = job_error(server, i2v(f"{public.base}{path}"))
    assert error["name"] == name
    assert words in error["message"], error
    assert error["message"].startswith("image_url")
    assert time.monotonic() - started < 30


# -- inline data refused at submit ----------------------------------------------------

TINY = encode_image(picture((100, 300), seed=41), "PNG")
HTML = b"<!doctype html><html><script>alert(1)</script></html>"


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("data:image/png;base64,%%%%not-base64%%%%", "Base64"),
        ("data:image/png;base64,", "no data"),
        ("data:image/png;base64," + base64.b64encode(HTML).decode(), "HTML"),
        ("data:image/svg+xml;base64," + base64.b64encode(b"<svg/>").decode(), "svg"),
        ("data:image/png;base64," + base64.b64encode(TINY).decode(), "at least 256"),
        ("data:image/png;base64," + base64.b64encode(bomb_png()).decode(), "the limit is"),
        (
            "data:image/jpeg;base64," + base64.b64encode(GOOD_JPEG[: len(GOOD_JPEG) // 2]).decode(),
            "truncated",
        ),
        ("data:image/jpeg;base64," + "A" * (MAX_IMAGE_BYTES * 4 // 3 + 400), "limit"),
        (base64.b64encode(HTML).decode() * 3, "image_url"),
    ],
)
def test_bad_inline_images_are_400(server, value, words) -> None:
    message = submit_error(server, i2v(value))
    assert words.lower() in message.lower(), message
    assert "PGh0bWw" not in message and "AAAAAAAA" not in message


# -- the gallery: awkward but valid images -----------------------------------------------


FETCHED = ("exif-rotated.jpg", "cmyk.jpg", "animated.gif", "photo.webp")
"""Gallery images also sent as URLs (the decoding is the same; the path there differs)."""
GALLERY_CASES = [(name, "data") for name in GALLERY] + [(name, "url") for name in FETCHED]


@pytest.fixture(scope="module")
def gallery_jobs(server, public) -> dict[tuple[str, str], str]:
    """Submit the whole gallery at once, so the server's workers render it in parallel."""
    jobs = {}
    for name, via in GALLERY_CASES:
        data, _ = gallery_image(name)
        if via == "data":
            image_url = "data:image/x;base64," + base64.b64encode(data).decode()
        else:
            image_url = f"{public.base}/gallery/{name}"
        response = server.create(i2v(image_url))
        assert response.status_code == 200, (name, via, response.text)
        jobs[(name, via)] = response.json()["id"]
    return jobs


@pytest.mark.parametrize(("name", "via"), GALLERY_CASES)
def test_gallery_images_give_a_correct_first_frame(server, gallery_jobs, name, via) -> None:
    done = server.wait(gallery_jobs[(name, via)])
    assert done["status"] == "completed", done
    first = first_frame(httpx.get(done["video"]["url"]).content)
    assert first.shape == (720, 1280, 3)
    _, upright = gallery_image(name)
    assert difference(first, fit_frame(upright, (1280, 720))) < 4


def test_bare_base64_and_auto_aspect(server, tmp_path) -> None:
    portrait = picture((600, 900), seed=42)
    body = {
        "model": "veo2/image-to-video",
        "prompt": "tilt up",
        "image_url": base64.b64encode(encode_image(portrait)).decode(),
        "aspect_ratio": "auto",
    }
    done = server.wait(server.create(body).json()["id"])
    assert done["status"] == "completed", done
    video = tmp_path / "v.mp4"
    video.write_bytes(httpx.get(done["video"]["url"]).content)
    facts = inspect_mp4(video)
    assert (facts.width, facts.height) == (720, 1280)
    assert difference(facts.first, fit_frame(portrait, (720, 1280))) < 4


def test_allowed_public_fetch_works(server, public) -> None:
    done = server.wait(server.create(i2v(f"{public.base}/ok.jpg")).json()["id"])
    assert done["status"] == "completed", done
    assert "/ok.jpg" in public.requests
