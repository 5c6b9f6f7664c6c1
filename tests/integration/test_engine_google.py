"""The ``google`` engine, through the real ``google-genai`` SDK, against a fake of Google's API.

The fake (``fakes.google_veo``) speaks the Vertex AI protocol the installed SDK uses, on
loopback; every socket the test process opens is checked to be loopback too, so nothing
here can reach Google (or anything else) by accident.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import ipaddress
import logging
import socket
import time
import uuid
from pathlib import Path

import pytest
from PIL import Image
from pydantic import SecretStr

from fakes.google_veo import OPERATION_ERROR, FakeGoogleVeo
from reelforge.engines import EngineRouter, GenerationRequest, Inputs, JobContext
from reelforge.engines.google import DEFAULT_MODELS, GoogleEngine
from reelforge.engines.upstream import AUTH_REJECTED_MESSAGE, UpstreamOptions
from reelforge.errors import EngineError, ServiceUnavailable, UpstreamError
from reelforge.jobs import JobRecord, JobStatus, JobStore, NewJob
from reelforge.jobs.db import make_engine, upgrade
from reelforge.media.encode import probe_mp4
from reelforge.media.netguard import FetchPolicy
from reelforge.settings import Settings
from reelforge.storage import LocalStorage
from reelforge.worker import Worker
from support import data_uri, picture, upstream_options

pytestmark = pytest.mark.integration

POLL = 0.02
CDN_ALLOWED = FetchPolicy(allow=("localhost",))
LIMIT_NAMES = {field.name for field in dataclasses.fields(UpstreamOptions)}
SDK_ENVIRONMENT = (
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_GENAI_USE_ENTERPRISE",
    "GOOGLE_GENAI_API_VERSION",
    "GOOGLE_APPLICATION_CREDENTIALS",
)
"""Variables the SDK reads on its own; cleared so the developer's setup cannot leak in."""


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail any connection to a non-loopback address (and record every address dialled)."""
    dialled: list[str] = []
    connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> None:
        if isinstance(address, tuple):
            host = str(address[0])
            dialled.append(host)
            if not ipaddress.ip_address(host.split("%")[0]).is_loopback:
                raise OSError(f"test network guard: refusing to connect to {host}")
        connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    for name in SDK_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    return dialled


@pytest.fixture
def fake():
    with FakeGoogleVeo(seconds=0.2) as server:
        yield server


@pytest.fixture
def store(settings: Settings, clock) -> JobStore:
    """SQLite only: the engine's behaviour does not depend on the database."""
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    yield JobStore(engine, clock=clock)
    engine.dispose()


def google_settings(settings: Settings, fake: FakeGoogleVeo, **overrides) -> Settings:
    return settings.model_copy(
        update={
            "engine": "google",
            "google_api_key": SecretStr(fake.key),
            "google_base_url": fake.base_url,
            "google_poll_seconds": POLL,
            **overrides,
        }
    )


def run_job(
    settings: Settings, store: JobStore, storage: LocalStorage, model: str = "veo2", **params
) -> JobRecord:
    job_id = f"{uuid.uuid4()}:{model}"
    body = {"model": model, "prompt": "a heron at dawn", "duration": 5, **params}
    store.create(
        NewJob(
            id=job_id,
            model=model,
            owner="o",
            params=body,
            seed=11,
            credits=123,
            video_token=uuid.uuid4().hex,
        )
    )
    worker = Worker(settings, store, storage, EngineRouter(settings), worker_id="w1")
    try:
        assert worker.run_once()
    finally:
        worker.engines.close()
    return store.get(job_id)


class Recorder(JobContext):
    """A job context that records reports and saved state, and can 'crash' after a save."""

    def __init__(self, crash_after_save: bool = False) -> None:
        super().__init__("job", on_report=self._record, on_save_state=self.states_append)
        self.calls: list[tuple[float, str]] = []
        self.states: list[dict] = []
        self.crash_after_save = crash_after_save

    def _record(self, fraction: float, stage: str) -> None:
        self.calls.append((fraction, stage))
        if self.crash_after_save and self.states:
            raise Crash()

    def states_append(self, state: dict) -> None:
        self.states.append(state)


class Crash(Exception):
    """Stands for the worker process dying mid-job."""


@pytest.fixture
def engine_for():
    """Builds engines for the fake; closes them (and their temporary files) afterwards."""
    built: list[GoogleEngine] = []

    def make(fake: FakeGoogleVeo, **options) -> GoogleEngine:
        if "vertex_project" not in options:
            options.setdefault("api_key", fake.key)
        if "vertex_project" in options:
            options.setdefault("vertex_location", "us-central1")
        limits = {name: options.pop(name) for name in LIMIT_NAMES if name in options}
        options.setdefault("base_url", fake.base_url)
        engine = GoogleEngine(options=upstream_options(**limits), **options)
        engine.load()
        built.append(engine)
        return engine

    yield make
    for engine in built:
        engine.close()


def request(model: str = "veo2", **fields) -> GenerationRequest:
    values = {
        "prompt": "a heron at dawn",
        "duration_seconds": 5,
        "width": 1280,
        "height": 720,
        "seed": 11,
        **fields,
    }
    return GenerationRequest(model=model, **values)


def sent_image(image: dict) -> Image.Image:
    assert image["mimeType"] == "image/jpeg"
    return Image.open(io.BytesIO(base64.b64decode(image["bytesBase64Encoded"])))


# -- the whole path -------------------------------------------------------------------------


def test_a_job_completes_with_the_video_google_returned(
    settings: Settings, store: JobStore, tmp_path: Path, fake: FakeGoogleVeo, loopback_only
) -> None:
    storage = LocalStorage(tmp_path / "files")
    job = run_job(google_settings(settings, fake), store, storage, aspect_ratio="9:16")
    assert job.status is JobStatus.COMPLETED, job.error_message
    stored = storage.local_path(job.video_key)
    assert stored.read_bytes() == fake.video
    facts = probe_mp4(stored)
    assert (facts.width, facts.height, facts.frame_count) == (320, 180, 24)
    assert job.info["engine"] == "google"
    assert job.info["upstream_id"] in fake.operations
    assert job.credits == 123  # Google reports no credits: the price table stands
    [create] = fake.creates()
    assert (
        create.path == "/v1beta1/publishers/google/models/veo-2.0-generate-001:predictLongRunning"
    )
    assert create.headers["x-goog-api-key"] == fake.key
    assert create.body == {
        "instances": [{"prompt": "a heron at dawn"}],
        "parameters": {
            "sampleCount": 1,
            "durationSeconds": 5,
            "seed": 11,
            "aspectRatio": "9:16",
            "enhancePrompt": True,
        },
    }
    assert all(r.headers.get("x-goog-api-key") == fake.key for r in fake.polls())
    assert loopback_only and all(ipaddress.ip_address(h).is_loopback for h in loopback_only)


def test_veo3_parameters_and_the_image_are_mapped(fake: FakeGoogleVeo, engine_for) -> None:
    engine = engine_for(fake)
    wanted = request(
        "google/veo-3.0-i2v",
        duration_seconds=6,
        aspect_ratio="9:16",
        resolution="1080P",
        generate_audio=False,
        enhance_prompt=False,
        negative_prompt="rain, text",
        seed=2**32 - 1,
        prompt="an enhanced version",
        original_prompt="a heron at dawn",
    )
    clip = engine.generate(wanted, Inputs(image=picture((720, 1280))), Recorder())
    engine.close()
    assert clip.facts["upstream_id"].startswith(
        "publishers/google/models/veo-3.0-generate-001/operations/"
    )
    [create] = fake.creates()
    instance, parameters = create.body["instances"][0], create.body["parameters"]
    assert instance["prompt"] == "a heron at dawn"
    assert sent_image(instance["image"]).size == (720, 1280)
    assert "lastFrame" not in instance
    assert parameters == {
        "sampleCount": 1,
        "durationSeconds": 6,
        "seed": 2**32 - 1,
        "aspectRatio": "9:16",
        "resolution": "1080p",
        "negativePrompt": "rain, text",
        "enhancePrompt": False,
        "generateAudio": False,
    }


def test_a_tail_image_becomes_the_last_frame(
    settings: Settings, store: JobStore, tmp_path: Path, fake: FakeGoogleVeo
) -> None:
    images = {
        "image_url": data_uri(picture((800, 450), seed=3)),
        "tail_image_url": data_uri(picture((640, 360), seed=4), "PNG"),
    }
    storage = LocalStorage(tmp_path / "files")
    job = run_job(google_settings(settings, fake), store, storage, "veo2/image-to-video", **images)
    assert job.status is JobStatus.COMPLETED, job.error_message
    [create] = fake.creates()
    instance = create.body["instances"][0]
    assert sent_image(instance["image"]).size == (800, 450)
    assert sent_image(instance["lastFrame"]).size == (640, 360)
    assert "generateAudio" not in create.body["parameters"]  # Veo 2 refuses it


def test_models_can_be_remapped_and_an_unknown_one_is_an_operator_problem(
    fake: FakeGoogleVeo, engine_for
) -> None:
    assert DEFAULT_MODELS["google/veo-3.0-i2v"] == "veo-3.0-generate-001"
    engine = engine_for(fake, models={"veo2": "veo-3.0-fast-generate-001"})
    engine.generate(request(duration_seconds=8), Inputs(), Recorder())
    assert ":predictLongRunning" in fake.creates()[0].path
    assert "/veo-3.0-fast-generate-001:" in fake.creates()[0].path
    assert fake.creates()[0].body["parameters"]["generateAudio"] is False
    engine = engine_for(fake, models={"veo2": "veo-9-imaginary"})
    with pytest.raises(ServiceUnavailable, match="veo-9-imaginary is not available"):
        engine.generate(request(), Inputs(), Recorder())


def test_project_mode_uses_oauth_credentials_and_the_location(
    fake: FakeGoogleVeo, engine_for
) -> None:
    from google.oauth2.credentials import Credentials

    engine = engine_for(
        fake,
        vertex_project="reel-proj",
        vertex_location="europe-west4",
        credentials=Credentials(token=fake.token),
    )
    clip = engine.generate(request(), Inputs(), Recorder())
    assert clip.file is not None and clip.file.read_bytes() == fake.video
    [create] = fake.creates()
    assert create.path == (
        "/v1beta1/projects/reel-proj/locations/europe-west4/publishers/google/models/"
        "veo-2.0-generate-001:predictLongRunning"
    )
    assert create.headers["authorization"] == f"Bearer {fake.token}"
    assert "x-goog-api-key" not in create.headers
    assert all(r.path.startswith("/v1beta1/projects/reel-proj/") for r in fake.polls())

    wrong = engine_for(fake, vertex_project="p", credentials=Credentials(token="expired-token"))
    with pytest.raises(ServiceUnavailable, match="contact the operator"):
        wrong.generate(request(), Inputs(), Recorder())


# -- failures -------------------------------------------------------------------------------


def test_an_operation_error_carries_googles_message(
    settings: Settings, store: JobStore, tmp_path: Path, fake: FakeGoogleVeo
) -> None:
    storage = LocalStorage(tmp_path / "files")
    job = run_job(google_settings(settings, fake), store, storage, prompt="FAIL: a heron")
    assert job.status is JobStatus.ERROR and job.error_name == "UpstreamError"
    assert job.error_message == f"upstream generation failed: {OPERATION_ERROR[1]}"


def test_a_safety_filtered_result_is_explained(fake: FakeGoogleVeo, engine_for) -> None:
    with pytest.raises(UpstreamError, match="safety filters withheld the video: Unable to show"):
        engine_for(fake).generate(request(prompt="FILTER me"), Inputs(), Recorder())


def test_a_bad_key_is_reported_for_the_operator_without_the_key(
    settings: Settings,
    store: JobStore,
    tmp_path: Path,
    fake: FakeGoogleVeo,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "AIzaWrongKey0123456789"
    local = google_settings(settings, fake, google_api_key=SecretStr(wrong))
    with caplog.at_level(logging.DEBUG):
        job = run_job(local, store, LocalStorage(tmp_path / "files"))
    assert job.status is JobStatus.ERROR
    assert (job.error_name, job.error_message) == ("ServiceUnavailable", AUTH_REJECTED_MESSAGE)
    logged = caplog.text + repr([record.__dict__ for record in caplog.records])
    assert wrong not in logged
    assert "API key not valid" in logged
    assert len(fake.creates()) == 1


def test_missing_credentials_name_both_settings(settings: Settings) -> None:
    with pytest.raises(ServiceUnavailable, match="REELFORGE_GOOGLE_API_KEY") as info:
        GoogleEngine.from_settings(settings)
    assert "REELFORGE_GOOGLE_VERTEX_PROJECT" in info.value.message


def test_transient_faults_are_retried_but_an_ambiguous_create_is_not(
    fake: FakeGoogleVeo, engine_for
) -> None:
    fake.add_fault(429, path=":predictLongRunning", limit=1, retry_after=1)
    fake.add_fault(503, path=":fetchPredictOperation", every=2)
    started = time.monotonic()
    clip = engine_for(fake).generate(request(), Inputs(), Recorder())
    assert clip.file is not None and time.monotonic() - started >= 0.9
    assert [r.status for r in fake.creates()] == [429, 200]
    assert 503 in [r.status for r in fake.polls()]
    assert len(fake.operations) == 1

    fake.add_fault(500, path=":predictLongRunning", limit=1)
    with pytest.raises(UpstreamError, match="may have started anyway"):
        engine_for(fake).generate(request(), Inputs(), Recorder())
    assert len(fake.creates()) == 3


def test_an_operation_that_takes_too_long_fails_with_its_name(
    fake: FakeGoogleVeo, engine_for
) -> None:
    fake.seconds = 60.0
    engine = engine_for(fake, timeout_seconds=0.3)
    with pytest.raises(EngineError, match=r"did not finish within 0\.3 s") as info:
        engine.generate(request(), Inputs(), Recorder())
    [name] = fake.operations
    assert name in info.value.message


# -- resuming -------------------------------------------------------------------------------


def test_a_saved_operation_is_resumed_without_a_second_create(
    fake: FakeGoogleVeo, engine_for
) -> None:
    engine = engine_for(fake)
    first = Recorder(crash_after_save=True)
    with pytest.raises(Crash):
        engine.generate(request(), Inputs(), first)
    [state] = first.states
    assert state["operation"] in fake.operations
    assert state["google_model"] == "veo-2.0-generate-001"
    second = Recorder()
    resumed = dataclasses.replace(request(), engine_state=state)
    clip = engine.generate(resumed, Inputs(), second)
    assert clip.facts["upstream_id"] == state["operation"]
    assert second.states == [] and len(fake.creates()) == 1
    assert {r.body["operationName"] for r in fake.polls()} == {state["operation"]}
    assert second.calls[-1] == (0.98, "checking video")


# -- how the video comes back ---------------------------------------------------------------


def test_a_video_at_an_http_uri_is_fetched_under_the_address_rules(
    fake: FakeGoogleVeo, engine_for
) -> None:
    fake.delivery = "url"
    clip = engine_for(fake).generate(request(), Inputs(), Recorder())
    assert clip.file is not None and clip.file.read_bytes() == fake.video
    [download] = fake.matching("/files/")
    assert "x-goog-api-key" not in download.headers
    with pytest.raises(UpstreamError, match="not public"):
        engine_for(fake, policy=FetchPolicy()).generate(request(), Inputs(), Recorder())


def test_a_video_in_a_bucket_is_an_operator_problem(fake: FakeGoogleVeo, engine_for) -> None:
    fake.delivery = "gcs"
    with pytest.raises(UpstreamError, match="cannot read it; contact the operator"):
        engine_for(fake).generate(request(), Inputs(), Recorder())


def test_inline_videos_are_checked(fake: FakeGoogleVeo, engine_for) -> None:
    with pytest.raises(UpstreamError, match="larger than 1000 bytes"):
        engine_for(fake, max_video_bytes=1000).generate(request(), Inputs(), Recorder())
    fake.video = b"\x00\x00\x00\x18ftypmp42 but not really a video"
    with pytest.raises(UpstreamError, match="cannot use"):
        engine_for(fake).generate(request(), Inputs(), Recorder())
