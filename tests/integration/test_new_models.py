"""The new kinds of input through a live server: ``video_url`` limits (size, duration,
pixels, codec, not a video, refused addresses) at submit time and in the worker, and
whole jobs decoded with PyAV (an extension holds its input then the new seconds, and
``video.duration`` says so; first and last frames; reference images; audio)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from support import LiveServer, data_uri, difference, download, inspect_mp4, picture
from video_samples import make_video, numbered_frame, video_data_uri

pytestmark = pytest.mark.integration

PUBLIC_HOST = "127.0.0.2"
MAX_VIDEO_BYTES = 400_000
SHORT = make_video(1.0, size=(640, 360))
LONG = make_video(4.0, size=(128, 72))
HUGE_PICTURE = make_video(0.25, size=(1920, 1088))
MJPEG = make_video(0.5, size=(320, 180), codec="mjpeg", container="matroska", pix_fmt="yuvj420p")
FILES = {
    "/short.mp4": SHORT,
    "/long.mp4": LONG,
    "/huge-picture.mp4": HUGE_PICTURE,
    "/mjpeg.mkv": MJPEG,
    "/not-a-video.mp4": b"<html>not a video</html>" * 20,
    "/oversized.mp4": b"\x00" * (MAX_VIDEO_BYTES + 1000),
}


class Files(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = FILES.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")


@pytest.fixture(scope="module")
def public():
    httpd = ThreadingHTTPServer((PUBLIC_HOST, 0), Files)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://{PUBLIC_HOST}:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    live = LiveServer(
        tmp_path_factory.mktemp("new-models"),
        env={
            "REELFORGE_FETCH_ALLOW": PUBLIC_HOST,
            "REELFORGE_MAX_INPUT_VIDEO_BYTES": str(MAX_VIDEO_BYTES),
            "REELFORGE_MAX_INPUT_VIDEO_SECONDS": "3",
            "REELFORGE_MAX_INPUT_VIDEO_PIXELS": str(1280 * 720),
            "REELFORGE_WORKER_ISOLATION": "thread",
            "REELFORGE_PRICES": '{"google/veo3": {"audio": 250000, "silent": 200000}}',
        },
    ).start()
    yield live
    live.stop()


EXTEND = "google/veo3-1-fast-extend-video"


def extend(server: LiveServer, video_url: str, **fields) -> dict:
    body = {"model": EXTEND, "prompt": "the camera drifts on", "video_url": video_url, **fields}
    response = server.create(body)
    assert response.status_code == 200, response.text
    return server.wait(response.json()["id"], timeout=240)


@pytest.mark.parametrize(
    ("video_url", "expected"),
    [
        ("http://127.0.0.1/x.mp4", "publicly reachable videos"),
        ("http://169.254.169.254/latest", "not a public"),
        ("ftp://example.com/x.mp4", "unsupported scheme"),
        ("data:video/mp4;base64," + "A" * 800_000, "the limit is 390.6 KiB"),
        (video_data_uri(b"<html>" * 100), "not a supported video"),
        ("data:image/png;base64,iVBORw0KGgo=", "expected a video type"),
        ("not a url", "expected an http(s) URL"),
    ],
)
def test_bad_video_urls_are_refused_at_submit(
    server: LiveServer, video_url: str, expected: str
) -> None:
    response = server.create({"model": EXTEND, "prompt": "x", "video_url": video_url})
    assert response.status_code == 400, response.text
    body = response.json()
    assert expected in body["message"] and "video_url" in body["message"]
    assert "AAAA" not in body["message"]


@pytest.mark.parametrize(
    ("path", "name", "expected"),
    [
        ("/oversized.mp4", "VideoFetchError", "video_url is larger than 390.6 KiB"),
        ("/long.mp4", "InvalidVideo", "video_url is 4 s long; the limit is 3 s"),
        ("/huge-picture.mp4", "InvalidVideo", "1920x1088; the limit is 0.9216 megapixels"),
        ("/mjpeg.mkv", "InvalidVideo", "mjpeg codec, which is not supported"),
        ("/not-a-video.mp4", "InvalidVideo", "video_url is not a video file"),
        ("/missing.mp4", "VideoFetchError", "video_url returned HTTP 404"),
    ],
)
def test_bad_videos_fail_the_job_in_the_worker(
    server: LiveServer, public: str, path: str, name: str, expected: str
) -> None:
    done = extend(server, public + path)
    assert done["status"] == "error"
    assert done["error"]["name"] == name and expected in done["error"]["message"]
    assert done["meta"]["usage"]["credits_used"] == 0


def test_an_extension_is_the_input_followed_by_seven_seconds(
    server: LiveServer, public: str, tmp_path
) -> None:
    done = extend(server, public + "/short.mp4", aspect_ratio="auto")
    assert done["status"] == "completed", done["error"]
    video = done["video"]
    facts = inspect_mp4(download(video["url"], tmp_path / "out.mp4") and tmp_path / "out.mp4")
    assert (facts.width, facts.height) == (video["width"], video["height"]) == (1280, 720)
    assert video["duration"] == 8 and facts.frames == 8 * 24 == video["duration"] * 24
    assert abs(facts.duration - 8) < 0.05 and abs(facts.audio_duration - 8) < 0.05
    assert difference(facts.first, numbered_frame(0, (1280, 720))) < 8
    usage = done["meta"]["usage"]
    assert usage["credits_used"] == 7 * 31_500  # the new seconds are charged
    assert usage["usd_spent"] == usage["credits_used"] / 2_000_000


def test_an_inline_portrait_extension_follows_the_input(server: LiveServer, tmp_path) -> None:
    portrait = make_video(1.5, size=(360, 640))
    done = extend(server, video_data_uri(portrait), generate_audio=False)
    assert done["status"] == "completed", done["error"]
    video = done["video"]
    assert (video["width"], video["height"], video["duration"]) == (720, 1280, 8.5)
    download(video["url"], tmp_path / "out.mp4")
    facts = inspect_mp4(tmp_path / "out.mp4")
    assert facts.frames == round(8.5 * 24) and facts.audio_codec is None


def test_a_last_frame_is_checked_at_submit_like_a_first_frame(server: LiveServer) -> None:
    """(First and last frames in the video itself: tests/unit/test_preview_kinds.py.)"""
    body = {
        "model": "google/veo-3.1-first-last-image-to-video-fast",
        "prompt": "a slow push in",
        "image_url": data_uri(picture((1280, 720), seed=21)),
        "last_image_url": data_uri(picture((200, 720), seed=22), "PNG"),
    }
    response = server.create(body)
    assert response.status_code == 400
    assert "last_image_url is 200x720 pixels" in response.json()["message"]


def test_reference_images_are_checked_at_submit(server: LiveServer) -> None:
    small = data_uri(picture((100, 300)))
    body = {
        "model": "google/veo-3.1-reference-to-video",
        "prompt": "x",
        "image_urls": [data_uri(picture((400, 400))), small],
    }
    response = server.create(body)
    assert response.status_code == 400
    assert "image_urls[1] is 100x300 pixels" in response.json()["message"]
    refused = server.create({**body, "image_urls": ["http://10.0.0.1/a.png"]})
    assert refused.status_code == 400 and "image_urls[0]" in refused.json()["message"]


def test_every_model_is_listed_with_its_fields_and_price(server: LiveServer) -> None:
    import httpx

    listed = {m["id"]: m for m in httpx.get(f"{server.url}/v2/models").json()["data"]}
    assert len(listed) == 17
    reference = listed["google/veo-3.1-reference-to-video"]
    assert reference["required"] == ["image_urls", "prompt"]
    assert reference["parameters"]["duration"]["enum"] == [8]
    assert reference["parameters"]["image_urls"]["input"] == "references"
    assert "aspect_ratio" not in reference["parameters"]
    extend = listed[EXTEND]["parameters"]
    assert extend["aspect_ratio"] == {
        "type": "string",
        "enum": ["auto", "16:9", "9:16"],
        "default": "auto",
    }
    assert listed["google/veo-3.1-t2v"]["parameters"]["resolution"]["enum"] == ["720p", "1080p"]
    veo3 = listed["google/veo3"]  # overridden by the operator (REELFORGE_PRICES)
    assert (veo3["credits_per_second"], veo3["credits_per_second_without_audio"]) == (
        250_000,
        200_000,
    )
