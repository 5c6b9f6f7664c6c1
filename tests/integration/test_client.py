"""The SDK against a live ``reelforge serve``: every model end to end, long-poll, errors.

Requests go through a recording ``httpx.HTTPTransport`` (real sockets), so the tests can
count what the SDK sent.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

import httpx
import pytest

from reelforge import AsyncClient, Client
from reelforge.client import (
    AuthenticationError,
    Generation,
    GenerationFailed,
    InvalidRequestError,
    NotFoundError,
    WaitTimeout,
)
from support import LiveServer, encode_image, inspect_mp4, picture

pytestmark = pytest.mark.integration

GENERATIONS = "/v2/video/generations"
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000:veo2"


class RecordingTransport(httpx.HTTPTransport):
    """A real transport that remembers each request it sent."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return super().handle_request(request)

    def gets(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "GET" and r.url.path == GENERATIONS]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(
        home=tmp_path_factory.mktemp("client"),
        env={"REELFORGE_FETCH_ALLOW": "127.0.0.1/32", "REELFORGE_ENCODER_PRESET": "ultrafast"},
    )
    yield live.start()
    live.stop()


@pytest.fixture
def transport() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture
def client(server: LiveServer, transport: RecordingTransport):
    with Client(server.key, server.url + "/v2", transport=transport) as sdk:
        yield sdk


def missing_image_url(server: LiveServer) -> str:
    """A loopback URL (allowed by REELFORGE_FETCH_ALLOW) that answers 404."""
    return f"{server.url}/files/no-such-area/missing.jpg"


def lag_seconds(generation: Generation, noticed: float) -> float:
    assert generation.completed_at is not None
    return noticed - generation.completed_at.timestamp()


@pytest.mark.parametrize("model", ["veo2", "veo2/image-to-video", "google/veo-3.0-i2v"])
def test_generate_and_download_each_model(
    client: Client, transport: RecordingTransport, tmp_path: Path, model: str
) -> None:
    jpeg = encode_image(picture((1024, 768), seed=3))
    (tmp_path / "first.jpg").write_bytes(jpeg)
    (tmp_path / "last.png").write_bytes(encode_image(picture((1024, 768), seed=4), "PNG"))
    params: dict[str, object] = {
        "veo2": {"duration": 5},
        # a path given as str, and a pathlib.Path
        "veo2/image-to-video": {
            "image_url": str(tmp_path / "first.jpg"),
            "tail_image_url": tmp_path / "last.png",
        },
        "google/veo-3.0-i2v": {"image_url": jpeg, "duration": 4},  # bytes
    }[model]
    seen: list[str] = []
    prompt = "a fox" if model == "veo2" else "a slow zoom in"  # cheap preview scenes
    generation = client.generate(
        model, prompt, on_progress=lambda g: seen.append(g.status), **params
    )
    noticed = time.time()
    assert generation.succeeded and generation.model == model
    assert seen[-1] == "completed"
    assert generation.video is not None and generation.video.file_size
    print(f"{model}: noticed {lag_seconds(generation, noticed) * 1000:.0f} ms after completion")

    path = client.download(generation, tmp_path / "out.mp4")
    assert path.stat().st_size == generation.video.file_size
    facts = inspect_mp4(path)
    seconds = 4 if model == "google/veo-3.0-i2v" else 5
    assert (facts.width, facts.height, facts.frames) == (1280, 720, seconds * 24)
    assert facts.audio_codec == ("aac" if model == "google/veo-3.0-i2v" else None)
    # Long-poll (2 s slices with on_progress), never a tight loop.
    assert len(transport.gets()) <= 8
    assert all("wait" in r.url.params for r in transport.gets()[1:])


def test_long_poll_notices_completion_at_once(
    client: Client, transport: RecordingTransport
) -> None:
    lags, gets, durations = [], [], []
    for _ in range(3):
        before = len(transport.gets())
        started = time.monotonic()
        generation = client.generate("veo2", "a fox", duration=5)
        noticed = time.time()
        durations.append(time.monotonic() - started)
        lags.append(lag_seconds(generation, noticed))
        gets.append(len(transport.gets()) - before)
    print(
        f"completion noticed after {[round(lag * 1000) for lag in lags]} ms; "
        f"GETs per generation {gets} over {[round(d, 2) for d in durations]} s"
    )
    assert statistics.median(lags) < 0.25
    for count, seconds in zip(gets, durations, strict=True):
        # A first GET, one long-poll per status change (queued -> generating ->
        # completed), one more per 2 s slice: a client polling every 100 ms would make
        # ~10 per second, whatever the job's length.
        assert count <= min(4, 3 + seconds / 2)


def test_typed_errors(server: LiveServer, client: Client) -> None:
    with Client("not-a-key", server.url) as stranger, pytest.raises(AuthenticationError) as caught:
        stranger.create("veo2", "a fox")
    assert caught.value.status_code == 401
    assert caught.value.request_id

    with pytest.raises(InvalidRequestError) as invalid:
        client.create("veo2", "a fox", duration=9)
    assert (invalid.value.status_code, invalid.value.field) == (400, "duration")
    assert invalid.value.request_id

    with pytest.raises(NotFoundError) as missing:
        client.get(UNKNOWN_ID)
    assert missing.value.status_code == 404


def test_a_failed_job_raises_generation_failed_with_its_id(
    server: LiveServer, client: Client
) -> None:
    url = missing_image_url(server)
    first = client.create("veo2/image-to-video", "a fox", image_url=url, idempotency_key="k-1")
    again = client.create("veo2/image-to-video", "a fox", image_url=url, idempotency_key="k-1")
    assert again.id == first.id

    with pytest.raises(GenerationFailed) as caught:
        client.wait(first.id, timeout=60)
    error = caught.value
    assert error.generation_id == first.id
    assert error.name == "ImageFetchError"
    assert "404" in error.message
    assert error.generation.credits_used == 0

    with pytest.raises(GenerationFailed) as generated:
        client.generate("veo2/image-to-video", "a fox", image_url=url, timeout=60)
    assert generated.value.generation_id not in (None, first.id)


def test_wait_timeout_keeps_the_id_and_the_work(client: Client, tmp_path: Path) -> None:
    created = client.create("veo2", "a fox", duration=5)
    with pytest.raises(WaitTimeout) as caught:
        client.wait(created.id, timeout=0.3)
    assert caught.value.generation_id == created.id
    assert client.wait(created.id, timeout=120).succeeded


def test_async_client(server: LiveServer, tmp_path: Path) -> None:
    async def main() -> None:
        async with AsyncClient(server.key, server.url) as client:
            progress: list[tuple[int, int | None]] = []
            generation = await client.generate(
                "veo2/image-to-video",
                "pan left",
                image_url=encode_image(picture((800, 600), seed=5)),
            )
            path = await client.download(
                generation, tmp_path / "async.mp4", on_progress=lambda *p: progress.append(p)
            )
            assert generation.video is not None
            assert progress[-1] == (generation.video.file_size, generation.video.file_size)
            facts = inspect_mp4(path)
            assert (facts.width, facts.height, facts.frames) == (1280, 720, 120)

            with pytest.raises(NotFoundError):
                await client.get(UNKNOWN_ID)
            with pytest.raises(InvalidRequestError) as invalid:
                await client.create("veo2", "a fox", aspect_ratio="4:3")
            assert invalid.value.field == "aspect_ratio"
            with pytest.raises(GenerationFailed) as failed:
                await client.generate(
                    "veo2/image-to-video", "x", image_url=missing_image_url(server), timeout=60
                )
            assert failed.value.name == "ImageFetchError" and failed.value.generation_id

    asyncio.run(main())
