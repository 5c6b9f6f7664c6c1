"""API behaviour against a live server on loopback: auth, errors, ownership, files."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import numpy as np
import pytest

from reelforge.catalog import MODELS
from reelforge.media.fit import fit_frame
from support import LiveServer, data_uri, difference, encode_image, inspect_mp4, picture

pytestmark = pytest.mark.integration

T2V = {"model": "veo2", "prompt": "a small red boat on a calm blue lake", "seed": 11}
ERROR_KEYS = {"message", "path", "requestId", "statusCode", "timestamp"}


class _ImageHandler(BaseHTTPRequestHandler):
    image = b""
    hits: list[str] = []  # noqa: RUF012 - shared across handler instances on purpose

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        if self.path == "/photo.jpg":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(self.image)))
            self.end_headers()
            self.wfile.write(self.image)
        else:
            self.send_response(404)
            self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def image_server():
    _ImageHandler.image = encode_image(picture((800, 600), seed=5))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _ImageHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    live = LiveServer(
        home=tmp_path_factory.mktemp("api"),
        env={"REELFORGE_FETCH_ALLOW": "127.0.0.1/32", "REELFORGE_MAX_REQUEST_BYTES": "4000000"},
    ).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def finished(server: LiveServer) -> dict:
    created = server.create(T2V)
    assert created.status_code == 200, created.text
    return server.wait(created.json()["id"])


def assert_error_shape(response: httpx.Response, status: int, path: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert body["statusCode"] == status and body["path"] == path
    assert body["requestId"] == response.headers["x-request-id"]
    assert body["timestamp"].endswith("Z")
    return body


def test_health_and_openapi(server: LiveServer) -> None:
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "ok"
    assert health["models"]["veo2"]["engine"] == "preview"
    spec = httpx.get(f"{server.url}/openapi.json").json()
    for path in ("/v2/video/generations", "/v2/generate/video/google/generation"):
        assert {"get", "post"} <= set(spec["paths"][path])
    body = spec["paths"]["/v2/video/generations"]["post"]["requestBody"]
    titles = {v["title"] for v in body["content"]["application/json"]["schema"]["oneOf"]}
    assert titles == set(MODELS)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "x"}])
def test_requests_without_a_valid_key_are_401(server: LiveServer, headers: dict) -> None:
    response = httpx.post(f"{server.url}/v2/video/generations", json=T2V, headers=headers)
    body = assert_error_shape(response, 401, "/v2/video/generations")
    assert "valid API key" in body["message"]
    response = httpx.get(
        f"{server.url}/v2/video/generations", params={"generation_id": "x"}, headers=headers
    )
    assert_error_shape(response, 401, "/v2/video/generations")


def test_create_returns_queued_id_with_model_suffix(server: LiveServer) -> None:
    body = server.create({**T2V, "duration": "6"}).json()
    assert body["status"] == "queued" and body["id"].endswith(":veo2")
    assert set(body) == {"id", "status"}


def test_validation_errors_are_400_in_the_published_shape(server: LiveServer) -> None:
    response = server.create({**T2V, "duration": 9})
    body = assert_error_shape(response, 400, "/v2/video/generations")
    assert body["message"].startswith("Body validation error")
    assert "duration" in body["message"] and "Expected 5 | 6 | 7 | 8" in body["message"]
    legacy = httpx.post(
        f"{server.url}/v2/generate/video/google/generation",
        json={"model": "veo2"},
        headers=server.headers(),
    )
    assert (
        "prompt"
        in assert_error_shape(legacy, 400, "/v2/generate/video/google/generation")["message"]
    )


def test_malformed_json_and_huge_bodies(server: LiveServer) -> None:
    response = httpx.post(
        f"{server.url}/v2/video/generations",
        content=b'{"model": "veo2", "prompt": ',
        headers={**server.headers(), "Content-Type": "application/json"},
    )
    assert "not valid JSON" in assert_error_shape(response, 400, "/v2/video/generations")["message"]
    huge = {**T2V, "prompt": "x" * 5_000_000}
    response = server.create(huge)
    assert assert_error_shape(response, 413, "/v2/video/generations")["message"].startswith(
        "Request body is larger"
    )


def test_get_without_generation_id_lists_and_unknown_is_404(server: LiveServer) -> None:
    response = httpx.get(f"{server.url}/v2/video/generations", headers=server.headers())
    assert response.status_code == 200 and set(response.json()) == {
        "data",
        "has_more",
        "next_cursor",
    }
    response = server.get("00000000-0000-0000-0000-000000000000:veo2")
    assert_error_shape(response, 404, "/v2/video/generations")


def test_unknown_route_is_404_in_shape(server: LiveServer) -> None:
    response = httpx.get(f"{server.url}/v2/nothing", headers=server.headers())
    assert assert_error_shape(response, 404, "/v2/nothing")["message"] == "Cannot GET /v2/nothing"


def test_generations_of_another_key_are_404(server: LiveServer, finished: dict) -> None:
    assert server.get(finished["id"]).status_code == 200
    response = server.get(finished["id"], key=server.keys[1])
    assert_error_shape(response, 404, "/v2/video/generations")


def test_completed_response_fields(server: LiveServer, finished: dict) -> None:
    assert finished["status"] == "completed"
    assert finished["seed"] == 11 and finished["progress"] == 100
    assert finished["created_at"] <= finished["started_at"] <= finished["completed_at"]
    video = finished["video"]
    assert video["file_name"] == "output.mp4" and video["content_type"] == "video/mp4"
    assert (video["width"], video["height"], video["duration"]) == (1280, 720, 5)
    assert finished["meta"]["usage"]["credits_used"] == 5 * 105_000


def test_video_download_supports_ranges(server: LiveServer, finished: dict) -> None:
    url, size = finished["video"]["url"], finished["video"]["file_size"]
    whole = httpx.get(url)
    assert whole.status_code == 200 and len(whole.content) == size
    assert whole.headers["accept-ranges"] == "bytes"
    part = httpx.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{size}"
    assert part.headers["content-length"] == "100"
    tail = httpx.get(url, headers={"Range": "bytes=-50"})
    assert tail.status_code == 206 and tail.content == whole.content[-50:]
    beyond = httpx.get(url, headers={"Range": f"bytes={size + 10}-"})
    assert beyond.status_code == 416
    head = httpx.head(url)
    assert head.status_code == 200 and int(head.headers["content-length"]) == size
    # Another file under the same (signed) URL is refused before anything is looked up.
    assert httpx.get(url.replace("output.mp4", "other.mp4")).status_code == 403


def test_files_outside_videos_are_never_served(server: LiveServer) -> None:
    for path in ("/files/inputs/x/image_url", "/files/../reelforge.db", "/files/videos/../x"):
        assert httpx.get(server.url + path).status_code == 404


def test_same_seed_gives_the_same_frames(server: LiveServer, finished: dict, tmp_path) -> None:
    again = server.wait(server.create(T2V).json()["id"])
    first, second = tmp_path / "a.mp4", tmp_path / "b.mp4"
    first.write_bytes(httpx.get(finished["video"]["url"]).content)
    second.write_bytes(httpx.get(again["video"]["url"]).content)
    a, b = inspect_mp4(first), inspect_mp4(second)
    assert np.array_equal(a.first, b.first) and np.array_equal(a.last, b.last)
    random_seed = server.wait(server.create({**T2V, "seed": None}).json()["id"])
    assert isinstance(random_seed["seed"], int)


def test_private_image_urls_are_refused_at_submit(server: LiveServer) -> None:
    body = {"model": "veo2/image-to-video", "prompt": "x"}
    for url in ("http://169.254.169.254/latest/meta-data/", "file:///etc/passwd", "ftp://x/y"):
        response = server.create({**body, "image_url": url})
        message = assert_error_shape(response, 400, "/v2/video/generations")["message"]
        assert "image_url" in message


def test_broken_data_uri_is_refused_at_submit(server: LiveServer) -> None:
    body = {
        "model": "veo2/image-to-video",
        "prompt": "x",
        "image_url": "data:image/png;base64,AAAA",
    }
    response = server.create(body)
    message = assert_error_shape(response, 400, "/v2/video/generations")["message"]
    assert "image_url" in message and "AAAA" not in message


def test_image_fetched_from_allowed_server(server: LiveServer, image_server: str, tmp_path) -> None:
    body = {
        "model": "veo2/image-to-video",
        "prompt": "slow zoom in",
        "image_url": f"{image_server}/photo.jpg",
        "aspect_ratio": "auto",
        "duration": 5,
    }
    done = server.wait(server.create(body).json()["id"])
    assert done["status"] == "completed", done
    assert (done["video"]["width"], done["video"]["height"]) == (1280, 720)
    assert "/photo.jpg" in _ImageHandler.hits


def test_fetch_failure_ends_job_in_error_without_credits(server, image_server) -> None:
    body = {"model": "google/veo-3.0-i2v", "prompt": "x", "image_url": f"{image_server}/gone.jpg"}
    created = server.create(body)
    assert created.status_code == 200
    done = server.wait(created.json()["id"])
    assert done["status"] == "error" and done["video"] is None
    assert done["error"]["name"] == "ImageFetchError"
    assert "404" in done["error"]["message"]
    assert done["meta"]["usage"]["credits_used"] == 0


def test_portrait_auto_and_tail_image(server: LiveServer, tmp_path) -> None:
    head, tail = picture((600, 900), seed=8), picture((600, 900), seed=9)
    body = {
        "model": "veo2/image-to-video",
        "prompt": "pan left",
        "image_url": data_uri(head),
        "tail_image_url": data_uri(tail, "PNG"),
        "aspect_ratio": "auto",
    }
    done = server.wait(server.create(body).json()["id"])
    assert done["status"] == "completed", done
    target = tmp_path / "v.mp4"
    target.write_bytes(httpx.get(done["video"]["url"]).content)
    facts = inspect_mp4(target)
    assert (facts.width, facts.height) == (720, 1280)
    expected_first = fit_frame(head, (720, 1280))
    expected_last = fit_frame(tail, (720, 1280))
    assert difference(facts.first, expected_first) < 3
    assert difference(facts.last, expected_last) < 3
    assert difference(facts.last, expected_first) > 10
