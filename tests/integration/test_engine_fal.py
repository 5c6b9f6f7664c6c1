"""The ``fal`` engine against a fake of fal's queue API on loopback, through a real worker
(SQLite, local storage), alone and in a route with a vLLM-Omni fake behind it."""

from __future__ import annotations

import base64
import threading
import uuid

import pytest

from fakes.fal import FakeFal
from fakes.vllm_omni import FakeVllmOmni
from reelforge.catalog import MODELS
from reelforge.engines import EngineRouter, GenerationRequest, Inputs, JobContext
from reelforge.engines.fal import FAL_MODELS, app_id, request_body
from reelforge.engines.upstream import Pending
from reelforge.errors import ConfigurationError, Interruption, JobInterrupted
from reelforge.jobs import JobRecord, JobStatus, JobStore, NewJob
from reelforge.jobs.db import make_engine, upgrade
from reelforge.settings import Settings
from reelforge.storage import LocalStorage
from reelforge.worker import Worker
from support import data_uri, picture, wait_until

pytestmark = pytest.mark.integration
I2V = "google/veo-3.1-i2v"


@pytest.fixture
def store(settings: Settings) -> JobStore:
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    yield JobStore(engine)
    engine.dispose()


@pytest.fixture
def fal():
    with FakeFal() as fake:
        yield fake


def configured(settings: Settings, fal: FakeFal, route: list[str], **more) -> Settings:
    engines = {
        "fal": {"kind": "fal", "base_url": fal.base_url, "api_key": fal.key, "poll_seconds": 0.02},
        **more,
    }
    return Settings.model_validate(
        {
            **settings.model_dump(),
            "engines": engines,
            "routes": {I2V: route, "google/veo-3-1-lite-generate-preview": route},
            "fetch_allow": ["localhost"],
        }
    )


def run(local: Settings, store: JobStore, tmp_path, **params) -> JobRecord:
    job_id = f"{uuid.uuid4()}:{I2V}"
    body = {
        "model": I2V,
        "prompt": "the lighthouse wakes",
        "image_url": data_uri(picture()),
        **params,
    }
    body = MODELS[I2V].params_type.model_validate(body).model_dump(mode="json")
    store.create(
        NewJob(
            id=job_id,
            model=I2V,
            owner="o",
            params=body,
            seed=5,
            credits=1,
            video_token=uuid.uuid4().hex,
        )
    )
    worker = Worker(
        local, store, LocalStorage(tmp_path / "files"), EngineRouter(local), worker_id="w"
    )
    try:
        assert worker.run_once()
    finally:
        worker.engines.close()
    return store.get(job_id)


def test_a_job_runs_through_fals_queue(settings, store, tmp_path, fal) -> None:
    job = run(configured(settings, fal, ["fal"]), store, tmp_path, duration=6, resolution="1080p")
    assert job.status is JobStatus.COMPLETED, job.error_message
    assert job.info["engine"] == "fal"
    assert job.info["upstream_id"].startswith("fal-ai/veo3.1/requests/")  # the app id only
    (submitted,) = fal.submissions.values()
    assert submitted.endpoint == "fal-ai/veo3.1/image-to-video"
    assert submitted.input["duration"] == "6s" and submitted.input["resolution"] == "1080p"
    assert submitted.input["image_url"].startswith("data:image/jpeg;base64,")
    assert base64.b64decode(submitted.input["image_url"].split(",", 1)[1])[:2] == b"\xff\xd8"
    assert "model" not in submitted.input and "provider" not in submitted.input
    polls = fal.recorded(lambda r: r.path.endswith("/status"))
    assert polls and all(r.query.get("logs") == "1" for r in polls)
    assert fal.recorded(lambda r: r.headers.get("authorization") == f"Key {fal.key}")


def test_a_server_error_result_is_unbilled_and_fails_over(settings, store, tmp_path, fal):
    fal.result_error = (500, "Internal server error")
    with FakeVllmOmni() as gpu:
        local = configured(
            settings, fal, ["fal", "gpu"], gpu={"base_url": gpu.base_url, "poll_seconds": 0.02}
        )
        job = run(local, store, tmp_path)
        assert (fal.creates, gpu.creates) == (1, 1)
        assert gpu.videos[next(iter(gpu.videos))].files["input_reference"][:2] == b"\xff\xd8"
    assert job.status is JobStatus.COMPLETED, job.error_message
    assert job.info["engine"] == "gpu"


def test_a_refused_input_may_be_billed_and_ends_the_job(settings, store, tmp_path, fal):
    fal.result_error = (422, "The content could not be processed")
    with FakeVllmOmni() as gpu:
        local = configured(
            settings, fal, ["fal", "gpu"], gpu={"base_url": gpu.base_url, "poll_seconds": 0.02}
        )
        job = run(local, store, tmp_path)
        assert gpu.creates == 0
    assert job.status is JobStatus.ERROR
    assert "The content could not be processed" in job.error_message


def test_cancel_reaches_fal(settings, fal) -> None:
    fal.queued_seconds = 60.0
    router = EngineRouter(configured(settings, fal, ["fal"]))
    job = JobContext("job")
    failure: list[BaseException] = []
    request = GenerationRequest(
        model=I2V, prompt="x", duration_seconds=8, width=1280, height=720, seed=1, job_id="j"
    )

    def generate() -> None:
        try:
            router.for_model(I2V).generate(request, Inputs(image=picture()), job)
        except BaseException as error:
            failure.append(error)

    runner = threading.Thread(target=generate)
    runner.start()
    wait_until(lambda: fal.creates == 1)
    engine = router.for_model(I2V).members[0].engine
    (request_id,) = fal.submissions
    assert engine.poll(f"fal-ai/veo3.1/requests/{request_id}") == Pending("queued: 2 ahead")
    job.cancel(Interruption.CANCELLED)
    runner.join(timeout=30)
    router.close()
    assert isinstance(failure[0], JobInterrupted)
    assert [r.cancelled for r in fal.submissions.values()] == [True]


def test_models_fal_does_not_serve_skip_it(settings, fal) -> None:
    with FakeVllmOmni() as gpu:
        local = configured(
            settings, fal, ["fal", "gpu"], gpu={"base_url": gpu.base_url, "poll_seconds": 0.02}
        )
        router = EngineRouter(local)
        lite = router.for_model("google/veo-3-1-lite-generate-preview")
        assert [member.name for member in lite.members] == ["gpu"]
        router.close()


def test_fal_needs_a_key_at_start_up(settings, fal) -> None:
    local = configured(settings, fal, ["fal"])
    local.engines["fal"] = local.engines["fal"].model_copy(update={"api_key": None})
    with pytest.raises(ConfigurationError, match="needs an api_key"):
        EngineRouter(local)


@pytest.mark.parametrize("model", sorted(FAL_MODELS))
def test_every_fal_model_maps_its_fields(model: str) -> None:
    served = FAL_MODELS[model]
    image = picture((256, 144))
    inputs = Inputs(
        image=image if "image" in served.inputs else None,
        last_frame=image if "last_frame" in served.inputs else None,
        references=(image,) if "reference_images" in served.inputs else (),
    )
    request = GenerationRequest(
        model=model,
        prompt="p",
        duration_seconds=8,
        width=1280,
        height=720,
        seed=9,
        resolution="720P",
        generate_audio=True,
    )
    body = request_body(request, inputs)
    declared = {field.name for field in MODELS[model].declared}
    assert body["prompt"] == "p" and body["duration"] == "8s"
    assert ("resolution" in body) == ("resolution" in declared)
    if "resolution" in body:
        assert body["resolution"] == "720p"
    assert ("generate_audio" in body) == ("generate_audio" in declared)
    assert ("seed" in body) == ("seed" in declared)
    expected = {
        frozenset({"text"}): set(),
        frozenset({"image"}): {"image_url"},
        frozenset({"image", "last_frame"}): {"first_frame_url", "last_frame_url"},
        frozenset({"reference_images"}): {"image_urls"},
    }[served.inputs]
    assert {key for key in body if key.endswith(("_url", "_urls"))} == expected
    assert app_id(served.endpoint).count("/") == 1
