"""The OpenAI Videos API (``/v1/videos``) driven by the real ``openai`` package against a
live server: the same jobs, keys and files as the AI/ML API side."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import httpx
import openai
import pytest
from PIL import Image

from fakes.proxy import FaultProxy
from support import LiveServer, encode_image, inspect_mp4, picture, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> LiveServer:
    live = LiveServer(home=tmp_path_factory.mktemp("openai"), env={"REELFORGE_WORKERS": "2"})
    live.start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def client(server: LiveServer) -> openai.OpenAI:
    with openai.OpenAI(api_key=server.key, base_url=f"{server.url}/v1", max_retries=0) as made:
        yield made


@pytest.fixture(scope="module")
def finished(client: openai.OpenAI):
    """One completed sora-2 (Veo 3.1 Fast) video, 6 s portrait, shared by the read-only tests."""
    video = client.videos.create_and_poll(
        prompt="a paper boat on a rainy street", seconds="6", size="720x1280"
    )
    assert video.status == "completed", video
    return video


def test_create_and_poll_gives_the_video_object(finished) -> None:
    assert finished.id.startswith("video_") and finished.object == "video"
    assert finished.model == "sora-2" and finished.progress == 100
    assert (finished.seconds, finished.size) == ("6", "720x1280")
    assert finished.prompt == "a paper boat on a rainy street"
    assert finished.completed_at >= finished.created_at
    assert finished.expires_at > finished.completed_at  # retention is on by default
    assert finished.error is None and finished.remixed_from_video_id is None


def test_every_content_variant_downloads_and_decodes(
    client: openai.OpenAI, finished, tmp_path: Path
) -> None:
    video = client.videos.download_content(finished.id)
    target = tmp_path / "v.mp4"
    video.write_to_file(target)
    facts = inspect_mp4(target)
    assert (facts.codec, facts.width, facts.height, facts.frames) == ("h264", 720, 1280, 6 * 24)
    thumbnail = Image.open(
        io.BytesIO(client.videos.download_content(finished.id, variant="thumbnail").content)
    )
    assert thumbnail.format == "JPEG" and thumbnail.size == (640, round(1280 * 640 / 720))
    sprites = client.videos.download_content(finished.id, variant="spritesheet").content
    sheet = Image.open(io.BytesIO(sprites))
    assert sheet.format == "JPEG" and sheet.size == (5 * 160, 2 * round(1280 * 160 / 720))


def test_one_generation_is_visible_through_both_apis(
    server: LiveServer, client: openai.OpenAI, finished
) -> None:
    listed = httpx.get(
        f"{server.url}/v2/video/generations", headers=server.headers(), params={"limit": 100}
    ).json()["data"]
    same = [item for item in listed if item["id"].split(":")[0].replace("-", "") in finished.id]
    assert len(same) == 1
    document = same[0]
    assert document["model"] == "google/veo-3.1-t2v-fast" and document["status"] == "completed"
    assert document["video"]["width"] == 720 and document["video"]["thumbnail_url"]
    assert httpx.get(document["video"]["thumbnail_url"]).headers["content-type"] == "image/jpeg"
    # ... and a job made on /v2 can be read on /v1.
    made = server.create({"model": "veo2", "prompt": "a kite"}).json()["id"]
    seen = client.videos.retrieve("video_" + made.split(":")[0].replace("-", ""))
    assert seen.model == "veo2" and seen.prompt == "a kite"


def test_an_uploaded_input_reference_makes_an_image_to_video(
    server: LiveServer, client: openai.OpenAI
) -> None:
    png = encode_image(picture((1280, 720), seed=8), "PNG")
    video = client.videos.create_and_poll(
        prompt="slow zoom", input_reference=("start.png", png, "image/png"), seconds="4"
    )
    assert video.status == "completed", video
    job = "-".join(_uuid_parts(video.id))
    document = httpx.get(
        f"{server.url}/v2/video/generations",
        headers=server.headers(),
        params={"generation_id": f"{job}:google/veo-3.1-i2v-fast"},
    ).json()
    assert document["status"] == "completed" and document["model"] == "google/veo-3.1-i2v-fast"
    with pytest.raises(openai.BadRequestError) as caught:
        client.videos.create(prompt="x", input_reference=("a.txt", b"not an image", "text/plain"))
    assert caught.value.body["param"] == "input_reference"


def _uuid_parts(video_id: str) -> list[str]:
    hexed = video_id.removeprefix("video_")
    return [hexed[:8], hexed[8:12], hexed[12:16], hexed[16:20], hexed[20:]]


def test_list_pages_with_after_and_order(server: LiveServer) -> None:
    key = server.keys[1]  # a key of its own, so the listing is only these
    with openai.OpenAI(api_key=key, base_url=f"{server.url}/v1", max_retries=0) as other:
        made = [other.videos.create(prompt=f"clip {n}").id for n in range(3)]
        first = other.videos.list(limit=2)
        assert [item.id for item in first.data] == made[::-1][:2]
        assert first.has_more and first.last_id == made[1]
        assert [item.id for item in first.get_next_page().data] == [made[0]]
        assert [item.id for item in other.videos.list(limit=100)] == made[::-1]
        assert [item.id for item in other.videos.list(order="asc", limit=100)] == made
        with pytest.raises(openai.BadRequestError):
            other.videos.list(order="sideways")


def test_remix_keeps_model_inputs_and_seed(
    server: LiveServer, client: openai.OpenAI, finished
) -> None:
    remix = client.videos.remix(finished.id, prompt="a paper boat on a sunny street")
    assert remix.remixed_from_video_id == finished.id and remix.id != finished.id
    assert remix.prompt == "a paper boat on a sunny street" and remix.size == "720x1280"
    done = client.videos.poll(remix.id)
    assert done.status == "completed" and done.seconds == "6"

    def seed(video_id: str) -> int:
        job = "-".join(_uuid_parts(video_id))
        return httpx.get(
            f"{server.url}/v2/video/generations",
            headers=server.headers(),
            params={"generation_id": f"{job}:google/veo-3.1-t2v-fast"},
        ).json()["seed"]

    assert seed(remix.id) == seed(finished.id)
    queued = client.videos.create(prompt="not yet")
    if client.videos.retrieve(queued.id).status != "completed":
        with pytest.raises(openai.ConflictError):
            client.videos.remix(queued.id, prompt="too early")


def test_delete_removes_the_video_and_its_files(client: openai.OpenAI) -> None:
    video = client.videos.create_and_poll(prompt="a short-lived clip")
    deleted = client.videos.delete(video.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (video.id, True, "video.deleted")
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(video.id)
    with pytest.raises(openai.NotFoundError):
        client.videos.download_content(video.id)


def test_errors_are_the_sdks_own_types(server: LiveServer, client: openai.OpenAI, finished) -> None:
    with (
        openai.OpenAI(api_key="wrong", base_url=f"{server.url}/v1", max_retries=0) as stranger,
        pytest.raises(openai.AuthenticationError) as unauthorized,
    ):
        stranger.videos.list()
    assert unauthorized.value.status_code == 401
    with pytest.raises(openai.BadRequestError) as bad_size:
        client.videos.create(prompt="x", size="1024x1024")
    assert bad_size.value.body["param"] == "size"
    assert "1280x720, 720x1280" in bad_size.value.body["message"]
    with pytest.raises(openai.BadRequestError) as bad_seconds:
        client.videos.create(prompt="x", seconds="12")
    assert bad_seconds.value.body["param"] == "seconds" and '"8"' in bad_seconds.value.message
    with pytest.raises(openai.BadRequestError) as bad_model:
        client.videos.create(prompt="x", model="sora-9")
    assert bad_model.value.body["param"] == "model"
    # A model that makes 1080p takes the bigger sizes.
    big = client.videos.create(
        prompt="x", model="google/veo-3.1-t2v", size="1920x1080", seconds="4"
    )
    assert big.size == "1920x1080" and big.model == "google/veo-3.1-t2v"
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve("video_" + "0" * 32)
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve("not-an-id")
    with (
        openai.OpenAI(api_key=server.keys[1], base_url=f"{server.url}/v1", max_retries=0) as other,
        pytest.raises(openai.NotFoundError),
    ):
        other.videos.retrieve(finished.id)  # another key's video does not exist for it


def _job_count(server: LiveServer) -> int:
    listed = httpx.get(
        f"{server.url}/v2/video/generations", headers=server.headers(), params={"limit": 100}
    )
    return len(listed.json()["data"])


def test_idempotency_key_makes_sdk_retries_safe_on_every_create_route(
    server: LiveServer, client: openai.OpenAI, finished
) -> None:
    """``/v1/videos`` ignored ``Idempotency-Key``: 5 calls the SDK retried made 10 jobs and
    held credits for each. JSON, multipart and remix now replay like ``/v2``."""
    before = _job_count(server)
    png = encode_image(picture((1280, 720), seed=9), "PNG")
    calls = {
        "json": lambda key: client.videos.with_raw_response.create(
            prompt="a kite", extra_headers={"Idempotency-Key": key}
        ),
        "multipart": lambda key: client.videos.with_raw_response.create(
            prompt="a kite",
            input_reference=("kite.png", png, "image/png"),
            extra_headers={"Idempotency-Key": key},
        ),
        "remix": lambda key: client.videos.with_raw_response.remix(
            finished.id, prompt="a kite at dusk", extra_headers={"Idempotency-Key": key}
        ),
    }
    for route, call in calls.items():
        first, again = call(f"retry-{route}"), call(f"retry-{route}")
        assert again.parse().id == first.parse().id, route
        assert "idempotent-replayed" not in first.headers
        assert again.headers["idempotent-replayed"] == "true", route
    assert _job_count(server) == before + len(calls)
    with pytest.raises(openai.BadRequestError) as caught:  # same key, another request
        client.videos.create(
            prompt="a different kite", extra_headers={"Idempotency-Key": "retry-json"}
        )
    assert "Idempotency-Key" in caught.value.message
    with openai.OpenAI(api_key=server.keys[1], base_url=f"{server.url}/v1", max_retries=0) as other:
        theirs = other.videos.create(prompt="a kite", extra_headers={"Idempotency-Key": "k-2"})
        mine = client.videos.create(prompt="a kite", extra_headers={"Idempotency-Key": "k-2"})
        assert theirs.id != mine.id, "keys are scoped per API key"
        other.videos.delete(theirs.id)


def test_the_sdks_own_retry_after_a_lost_answer_makes_one_video(server: LiveServer) -> None:
    """The audit's case: the create reached the server, its answer never came back, the
    SDK retried. With an ``Idempotency-Key`` the retry replays the first video."""
    proxy = FaultProxy(("127.0.0.1", server.port)).start()
    try:
        before = _job_count(server)
        proxy.set("answerless")
        url = f"http://{proxy.address}/v1"
        with openai.OpenAI(api_key=server.key, base_url=url, max_retries=2, timeout=30) as sdk:
            made: list[str] = []
            call = threading.Thread(
                target=lambda: made.append(
                    sdk.videos.create(
                        prompt="a lost answer", extra_headers={"Idempotency-Key": "lost-1"}
                    ).id
                )
            )
            call.start()
            wait_until(lambda: _job_count(server) == before + 1, timeout=30)
            proxy.set("forward")  # cuts the held answer: the SDK retries
            call.join(60)
        assert made and _job_count(server) == before + 1, "one video, one hold of credits"
    finally:
        proxy.stop()
