"""The SDK against a fake of the real AI/ML API: no long-poll, no idempotency, a CDN.

Proves the SDK needs none of reelforge's extensions: it polls at growing intervals, rides
out 429s and 503s without ever creating a generation twice, keeps the key off the CDN and
resumes a cut download.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import httpx
import pytest

from fakes import FakeAimlApi
from reelforge import AsyncClient, Client
from reelforge.client import GenerationFailed, ServerError
from support import inspect_mp4

pytestmark = pytest.mark.integration

FAST = 0.005
"""Real seconds per fake second: the published ~50 s become 0.25 s."""


@pytest.fixture
def fake():
    with FakeAimlApi(time_scale=FAST) as server:
        yield server


def client_for(fake: FakeAimlApi, **options) -> Client:
    return Client(fake.key, fake.base_url + "/v2", poll_interval=0.02, **options)


def test_the_fake_speaks_only_the_published_protocol(fake: FakeAimlApi) -> None:
    auth = {"Authorization": f"Bearer {fake.key}"}
    legacy = fake.base_url + "/v2/generate/video/google/generation"
    created = httpx.post(legacy, json={"model": "veo2", "prompt": "a fox"}, headers=auth)
    assert created.status_code == 200
    assert created.json()["id"].endswith(":veo2")
    assert "x-reelforge-version" not in created.headers
    started = time.monotonic()
    query = {"generation_id": created.json()["id"], "wait": 5}
    polled = httpx.get(legacy, params=query, headers=auth)
    assert time.monotonic() - started < 4  # `wait` (5 s) is ignored
    assert polled.json()["status"] in ("queued", "generating")
    assert "x-reelforge-wait" not in polled.headers
    assert httpx.get(fake.base_url + "/health").status_code == 404
    refused = httpx.post(legacy, json={"model": "veo2"}, headers={"Authorization": "Bearer no"})
    assert refused.status_code == 401
    assert set(refused.json()) == {"message", "path", "requestId", "statusCode", "timestamp"}
    invalid = httpx.post(legacy, json={"model": "veo2"}, headers=auth)
    assert invalid.json()["message"].startswith("Body validation error: prompt: ")


def test_generate_through_429s_and_503s_creates_exactly_once(
    fake: FakeAimlApi, tmp_path: Path
) -> None:
    fake.time_scale = 0.02  # 50 fake seconds = 1 s
    fake.add_fault(429, every=2, method="GET", retry_after=0)
    fake.add_fault(503, every=3, method="GET")
    with client_for(fake) as client:
        generation = client.generate("veo2", "a fox in the snow", duration=5)
        path = client.download(generation, tmp_path / "fox.mp4")
    assert generation.succeeded
    assert generation.credits_used == 525_000
    assert fake.count("POST") == 1
    assert len(fake.generations) == 1
    statuses = [r.status for r in fake.matching("GET")]
    assert 429 in statuses and 503 in statuses
    assert path.read_bytes() == fake.video


def test_a_429_on_create_is_retried_after_retry_after(fake: FakeAimlApi) -> None:
    fake.add_fault(429, method="POST", limit=1, retry_after=1)
    with client_for(fake) as client:
        created = client.create("veo2", "a fox")
    first, second = fake.matching("POST")
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.95
    assert list(fake.generations) == [created.id]
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]


def test_a_create_that_may_have_been_processed_is_not_retried(fake: FakeAimlApi) -> None:
    fake.add_fault(503, method="POST", limit=2)
    with client_for(fake) as client:
        for _ in range(2):
            with pytest.raises(ServerError) as caught:
                client.create("veo2", "a fox")
            assert caught.value.status_code == 503
            assert caught.value.may_have_been_created
            assert "may have been created" in str(caught.value)
    assert fake.count("POST") == 2  # one per call: never repeated
    assert fake.count("GET", "/health") == 1  # probed once, then remembered


def test_polling_falls_back_with_growing_intervals(fake: FakeAimlApi) -> None:
    fake.time_scale = 0.02  # 50 fake seconds = 1 s
    with client_for(fake, max_retries=0) as client:
        client.generate("veo2", "a lighthouse at night")
    gets = fake.matching("GET")
    assert sum("wait" in r.query for r in gets) == 1  # tried once, never again
    gaps = [b.at - a.at for a, b in itertools.pairwise(gets[1:])]
    print(f"{len(gets)} GETs, gaps {[round(g, 3) for g in gaps]} s")
    assert 4 <= len(gets) <= 12
    assert gaps[-1] > 2 * gaps[0]
    assert sum(gaps[-3:]) > 2 * sum(gaps[:3])


def test_the_key_never_reaches_the_cdn(fake: FakeAimlApi, tmp_path: Path) -> None:
    with client_for(fake) as client:
        generation = client.generate("veo2", "a fox")
        assert generation.video is not None
        assert generation.video.url.startswith(fake.cdn_base)
        client.download(generation, tmp_path / "fox.mp4")
    cdn = fake.cdn_requests()
    assert cdn and all("authorization" not in r.headers for r in cdn)
    assert all(r.host.startswith("localhost:") for r in cdn)
    assert all(r.headers["authorization"] == f"Bearer {fake.key}" for r in fake.matching())


def test_download_resumes_after_a_cut_connection(fake: FakeAimlApi, tmp_path: Path) -> None:
    fake.cdn_cut_after = 10_000
    fake.cdn_chunk_delay = 0.002
    progress: list[tuple[int, int | None]] = []
    with client_for(fake) as client:
        generation = client.generate("veo2", "a fox")
        path = client.download(
            generation, tmp_path / "fox.mp4", on_progress=lambda *p: progress.append(p)
        )
    assert path.read_bytes() == fake.video
    assert not (tmp_path / "fox.mp4.part").exists()
    first, second = fake.cdn_requests()
    assert "range" not in first.headers
    assert second.headers["range"] == "bytes=10000-"
    assert second.status == 206
    assert progress[-1] == (len(fake.video), len(fake.video))
    assert len(progress) >= 3
    facts = inspect_mp4(path)
    assert (facts.width, facts.height, facts.frames) == (320, 180, 24)


def test_download_without_file_size_checks_the_served_length(
    fake: FakeAimlApi, tmp_path: Path
) -> None:
    with client_for(fake) as client:
        generation = client.generate(
            "google/veo-3.0-i2v", "she puts on glasses", image_url="https://images.test/a.jpg"
        )
        assert generation.video is not None and generation.video.file_size is None
        (tmp_path / "v.mp4.part").write_bytes(fake.video[:5000])
        path = client.download(generation.video.url, tmp_path / "v.mp4")
    assert path.read_bytes() == fake.video
    assert fake.cdn_requests()[0].headers["range"] == "bytes=5000-"


def test_an_error_status_raises_generation_failed(fake: FakeAimlApi) -> None:
    with client_for(fake) as client, pytest.raises(GenerationFailed) as caught:
        client.generate("veo2", "please FAIL")
    error = caught.value
    assert error.name == "ModelError"
    assert error.message == "The model could not generate a video for this prompt"
    assert error.generation_id in fake.generations
    assert error.generation.credits_used == 0


def test_async_client_against_the_fake(fake: FakeAimlApi, tmp_path: Path) -> None:
    fake.add_fault(503, every=2, method="GET")
    fake.cdn_cut_after = 12_000
    seen: list[str] = []

    async def on_progress(generation) -> None:
        seen.append(generation.status)

    async def main() -> None:
        async with AsyncClient(fake.key, fake.base_url, poll_interval=0.02) as client:
            generation = await client.generate("veo2", "a fox", on_progress=on_progress)
            await client.download(generation, tmp_path / "fox.mp4")
            with pytest.raises(GenerationFailed) as caught:
                await client.generate("veo2", "FAIL please")
            assert caught.value.generation_id in fake.generations

    asyncio.run(main())
    assert (tmp_path / "fox.mp4").read_bytes() == fake.video
    assert seen[0] != "completed" and seen[-1] == "completed"
    assert fake.count("POST") == 2
    assert [r.headers.get("range") for r in fake.cdn_requests()] == [None, "bytes=12000-"]
