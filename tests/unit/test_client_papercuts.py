"""What a new SDK user tripped over: ``download`` of an id, the server's word on an
expired video instead of "HTTP 410" and a signed URL, and waits that are not silent.
A real ``Client`` over ``httpx.MockTransport`` (the network edge), sleeps injected."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from reelforge import Client
from reelforge.client import DownloadError, RateLimitError

pytestmark = pytest.mark.unit

BASE = "http://api.test"
PATH = "/v2/video/generations"
GEN_ID = "6f1c0d8e-1111-4222-8333-944445555666:veo2"
VIDEO = bytes(range(256)) * 8
SIGNED = f"{BASE}/files/videos/t/output.mp4?expires=99&signature=s3cr3t"
EXPIRED_MESSAGE = (
    "this video expired 168 hours after it was made and was deleted (the service keeps "
    "videos that long); generate it again"
)


def document(**extra: object) -> dict:
    return {"id": GEN_ID, "status": "completed", "model": "veo2", **extra}


def client_over(serve, sleeps: list[float] | None = None) -> Client:
    client = Client("k", BASE, transport=httpx.MockTransport(serve))
    client._sleep = (sleeps if sleeps is not None else []).append  # no real waiting
    return client


def test_download_takes_a_generation_id(tmp_path: Path) -> None:
    seen: list[str] = []

    def serve(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == PATH:
            assert request.url.params["generation_id"] == GEN_ID
            video = {"url": SIGNED, "file_name": "output.mp4", "file_size": len(VIDEO)}
            return httpx.Response(200, json=document(video=video))
        return httpx.Response(200, content=VIDEO)

    with client_over(serve) as client:
        path = client.download(GEN_ID, tmp_path / "v.mp4")
    assert path.read_bytes() == VIDEO
    assert seen == [PATH, "/files/videos/t/output.mp4"]


def test_download_of_anything_else_is_a_type_error(tmp_path: Path) -> None:
    with client_over(lambda request: httpx.Response(500)) as client, pytest.raises(TypeError):
        client.download(42, tmp_path / "v.mp4")  # type: ignore[arg-type]


def test_a_410_says_what_the_server_said_and_hides_the_signature(tmp_path: Path) -> None:
    def serve(request: httpx.Request) -> httpx.Response:
        return httpx.Response(410, json={"message": EXPIRED_MESSAGE, "statusCode": 410})

    with client_over(serve) as client, pytest.raises(DownloadError) as caught:
        client.download(SIGNED, tmp_path / "v.mp4")
    assert caught.value.status_code == 410
    assert caught.value.message == EXPIRED_MESSAGE
    assert "s3cr3t" not in str(caught.value)


def test_an_expired_generation_says_so_without_trying_its_url(tmp_path: Path) -> None:
    seen: list[str] = []

    def serve(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(
            200, json=document(video=None, video_expired=True, expires_at="2026-12-01T10:00:00Z")
        )

    with client_over(serve) as client, pytest.raises(DownloadError) as caught:
        client.download(GEN_ID, tmp_path / "v.mp4")
    assert "expired at 2026-12-01 10:00 UTC" in caught.value.message
    assert "generate it again" in caught.value.message
    assert caught.value.generation_id == GEN_ID
    assert seen == [PATH]


def test_a_429_wait_is_logged_with_its_length(caplog: pytest.LogCaptureFixture) -> None:
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "47"}, json={"message": "Too Many"}),
            httpx.Response(200, json=document()),
        ]
    )
    sleeps: list[float] = []
    with (
        caplog.at_level(logging.WARNING, "reelforge.client"),
        client_over(lambda request: next(answers), sleeps) as client,
    ):
        assert client.get(GEN_ID).status == "completed"
    assert sleeps == [47.0]
    (record,) = [r for r in caplog.records if r.name == "reelforge.client"]
    text = record.getMessage()
    assert "HTTP 429" in text and "retrying in 47.0 s as the server's Retry-After asks" in text


def test_a_refused_retry_is_not_logged_as_a_wait(caplog: pytest.LogCaptureFixture) -> None:
    def serve(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "3600"}, json={"message": "later"})

    with (
        caplog.at_level(logging.WARNING, "reelforge.client"),
        client_over(serve) as client,
        pytest.raises(RateLimitError),
    ):
        client.get(GEN_ID)
    assert not [r for r in caplog.records if r.name == "reelforge.client"]
