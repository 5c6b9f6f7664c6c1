"""The ``openai-videos`` engine end to end: one real reelforge drives another.

The "GPU server" is a second ``reelforge serve`` (the preview engine) reached through its
OpenAI ``/v1/videos`` front door with its own key; the front server routes ``veo2`` (and
its image-to-video sibling) to it. Both are real processes on loopback, the video at the
end is decoded, and the back server's own records prove one upstream video per job.
Cancellation and resumption are checked against the vLLM-Omni fake, which counts aborts.
"""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import httpx
import pytest

from fakes.vllm_omni import FakeVllmOmni
from reelforge.engines import EngineRouter, GenerationRequest, Inputs, JobContext
from reelforge.errors import Interruption, JobInterrupted
from reelforge.settings import Settings
from support import LiveServer, data_uri, download, inspect_mp4, picture, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def back(tmp_path_factory) -> LiveServer:
    live = LiveServer(
        home=tmp_path_factory.mktemp("back"), keys=("back-key",), env={"REELFORGE_WORKERS": "1"}
    )
    live.start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def front(tmp_path_factory, back: LiveServer) -> LiveServer:
    engines = {
        "back": {
            "kind": "openai-videos",
            "base_url": back.url,
            "api_key": back.key,
            "models": {
                "veo2": "veo2",
                "veo2/image-to-video": "veo2",
                "google/veo-3.1-t2v": "google/veo-3.1-t2v",
            },
            "poll_seconds": 0.1,
        }
    }
    routes = {"veo2": ["back"], "veo2/image-to-video": ["back"], "google/veo-3.1-t2v": ["back"]}
    live = LiveServer(
        home=tmp_path_factory.mktemp("front"),
        keys=("front-key",),
        env={
            "REELFORGE_WORKERS": "1",
            "REELFORGE_ENGINES": json.dumps(engines),
            "REELFORGE_ROUTES": json.dumps(routes),
            "REELFORGE_METRICS_TOKEN": "metrics-token",
        },
    )
    live.start()
    yield live
    live.stop()


def back_videos(back: LiveServer) -> list[dict]:
    answer = httpx.get(f"{back.url}/v1/videos", headers=back.headers(), timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def test_a_reelforge_drives_another_through_v1_videos(front, back, tmp_path: Path) -> None:
    before = len(back_videos(back))
    created = front.create({"model": "veo2", "prompt": "a lighthouse at dusk", "duration": 6})
    assert created.status_code == 200, created.text
    done = front.wait(created.json()["id"])
    assert done["status"] == "completed", done
    assert done["engine"] == "back"
    assert done["meta"]["engine"] == "back"
    assert done["meta"]["usage"]["credits_used"] > 0
    target = tmp_path / "front.mp4"
    assert download(done["video"]["url"], target).status_code == 200
    facts = inspect_mp4(target)
    assert (facts.codec, facts.frames) == ("h264", 6 * 24)
    assert (facts.width, facts.height) == (done["video"]["width"], done["video"]["height"])
    made = back_videos(back)
    assert len(made) == before + 1  # one upstream video for one job
    assert made[0]["status"] == "completed" and made[0]["seconds"] == "6"
    assert made[0]["prompt"].startswith("a lighthouse at dusk")  # enhanced in front


def test_health_and_metrics_show_the_routed_engines(front) -> None:
    health = httpx.get(f"{front.url}/health", timeout=30).json()
    assert health["models"]["veo2"]["engine"] == "back"
    assert health["engines"]["back"] == {
        "kind": "openai-videos",
        "circuit": "closed",
        "busy": 0,
        "capacity": None,
    }
    scraped = httpx.get(
        f"{front.url}/metrics", headers={"Authorization": "Bearer metrics-token"}, timeout=30
    )
    assert scraped.status_code == 200
    assert 'reelforge_engine_circuit_open{engine="back"} 0.0' in scraped.text
    assert 'reelforge_engine_busy_slots{engine="back"} 0.0' in scraped.text


def test_an_image_goes_upstream_as_input_reference(front, back, tmp_path: Path) -> None:
    image = data_uri(picture((640, 360), seed=4))
    created = front.create(
        {"model": "veo2/image-to-video", "prompt": "the scene comes alive", "image_url": image}
    )
    assert created.status_code == 200, created.text
    done = front.wait(created.json()["id"])
    assert done["status"] == "completed", done
    assert done["engine"] == "back"
    upstream = back_videos(back)[0]
    job_uuid = uuid.UUID(upstream["id"].removeprefix("video_"))
    # The back made it from the uploaded image: its job is the image-to-video sibling's.
    made = back.get(f"{job_uuid}:veo2/image-to-video")
    assert made.status_code == 200 and made.json()["status"] == "completed", made.text
    target = tmp_path / "i2v.mp4"
    download(done["video"]["url"], target)
    assert inspect_mp4(target).frames > 0


def test_the_provider_field_pins_or_refuses(front) -> None:
    refused = front.create({"model": "google/veo-3.1-t2v", "prompt": "a fox", "provider": "google"})
    assert refused.status_code == 400
    assert "provider 'google' is not available" in refused.json()["message"]
    auto = front.create({"model": "google/veo-3.1-t2v", "prompt": "a fox", "provider": "auto"})
    assert auto.status_code == 200, auto.text
    assert front.wait(auto.json()["id"])["engine"] == "back"


def routed(settings: Settings, url: str) -> Settings:
    engines = {"gpu": {"kind": "openai-videos", "base_url": url, "poll_seconds": 0.02}}
    return Settings.model_validate(
        {**settings.model_dump(), "engines": engines, "routes": {"veo2": ["gpu"]}}
    )


def request(**state) -> GenerationRequest:
    return GenerationRequest(
        model="veo2",
        prompt="a fox",
        duration_seconds=5,
        width=1280,
        height=720,
        seed=3,
        job_id=f"{uuid.uuid4()}:veo2",
        engine_state=state,
    )


def test_a_cancelled_job_aborts_the_upstream_work(settings: Settings) -> None:
    with FakeVllmOmni(queued_seconds=0.0, generating_seconds=60.0) as gpu:
        router = EngineRouter(routed(settings, gpu.base_url))
        job = JobContext("job")
        failure: list[BaseException] = []

        def generate() -> None:
            try:
                router.for_model("veo2").generate(request(), Inputs(), job)
            except BaseException as error:
                failure.append(error)

        runner = threading.Thread(target=generate)
        runner.start()
        wait_until(lambda: gpu.creates == 1)
        job.cancel(Interruption.CANCELLED)
        runner.join(timeout=30)
        router.close()
        assert isinstance(failure[0], JobInterrupted)
        assert gpu.aborted == list(gpu.videos)  # DELETE reached the server


def test_a_restarted_job_resumes_on_the_engine_that_holds_it(settings: Settings) -> None:
    with FakeVllmOmni(queued_seconds=0.0, generating_seconds=0.1) as gpu:
        first = httpx.post(f"{gpu.base_url}/v1/videos", files={"prompt": (None, "a fox")})
        video_id = first.json()["id"]
        router = EngineRouter(routed(settings, gpu.base_url))
        clip = router.for_model("veo2").generate(
            request(engine="gpu", upstream_id=video_id), Inputs(), JobContext("job")
        )
        router.close()
        assert clip.facts["engine"] == "gpu" and clip.facts["upstream_id"] == video_id
        assert gpu.create_attempts() == 1  # only the test's own create


def test_json_creates_reach_a_server_that_takes_them(back, settings: Settings, tmp_path) -> None:
    """``request_format = "json"``: the image travels as ``input_reference.image_url``."""
    from reelforge.engines.openai_compat import OpenAIVideosEngine
    from reelforge.settings import EngineInstance
    from support import upstream_options

    config = EngineInstance(
        base_url=back.url,
        api_key=back.key,
        request_format="json",
        models={"veo2/image-to-video": "veo2"},
    )
    engine = OpenAIVideosEngine("back-json", config, options=upstream_options(poll_seconds=0.1))
    request = GenerationRequest(
        model="veo2/image-to-video",
        prompt="waves roll in",
        duration_seconds=5,
        width=1280,
        height=720,
        seed=11,
        job_id="json-job",
    )
    try:
        clip = engine.generate(request, Inputs(image=picture((640, 360), seed=9)), JobContext("j"))
        assert clip.file is not None and inspect_mp4(clip.file).frames == 5 * 24
    finally:
        engine.close()
    job_uuid = uuid.UUID(clip.facts["upstream_id"].removeprefix("video_"))
    made = back.get(f"{job_uuid}:veo2/image-to-video")
    assert made.status_code == 200  # made as image-to-video from the JSON image_url


def test_a_resumed_task_that_failed_unbilled_moves_on_afresh(settings: Settings) -> None:
    with FakeVllmOmni(fail=True) as gpu_a, FakeVllmOmni(generating_seconds=0.05) as gpu_b:
        failed = httpx.post(f"{gpu_a.base_url}/v1/videos", files={"prompt": (None, "a fox")})
        engines = {
            name: {"base_url": fake.base_url, "poll_seconds": 0.02}
            for name, fake in (("gpu-a", gpu_a), ("gpu-b", gpu_b))
        }
        local = Settings.model_validate(
            {**settings.model_dump(), "engines": engines, "routes": {"veo2": ["gpu-a", "gpu-b"]}}
        )
        router = EngineRouter(local)
        saved: list[dict] = []
        job = JobContext("job", on_save_state=saved.append)
        state = {"engine": "gpu-a", "upstream_id": failed.json()["id"]}
        clip = router.for_model("veo2").generate(request(**state), Inputs(), job)
        router.close()
        assert clip.facts["engine"] == "gpu-b"
        assert gpu_b.creates == 1 and gpu_a.creates == 1  # gpu-a was only polled
        assert saved[-1]["engine"] == "gpu-b"
        assert saved[-1]["upstream_id"] in gpu_b.videos
