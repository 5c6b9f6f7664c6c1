"""The ``aimlapi`` engine against a fake of the real AI/ML API on loopback.

Jobs run through a real ``Worker`` (SQLite, local storage) where the whole path matters,
and through ``engine.generate`` directly where the engine's own behaviour is the point.
The fake speaks only the published protocol, on an accelerated clock, and serves videos
from a CDN spelt ``localhost`` (so ``fetch_allow`` must admit it, as an operator would
for a private upstream).
"""

from __future__ import annotations

import base64
import dataclasses
import io
import itertools
import logging
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from PIL import Image
from pydantic import SecretStr

from fakes import FakeAimlApi
from fakes.aimlapi import CREDITS_PER_SECOND, DEFAULT_ERROR
from reelforge.engines import EngineRouter, GenerationRequest, Inputs, JobContext
from reelforge.engines.aimlapi import AimlapiEngine
from reelforge.engines.upstream import (
    AUTH_REJECTED_MESSAGE,
    MAX_TRANSIENT_FAILURES,
    PROGRESS_GENERATED,
    generating_progress,
)
from reelforge.errors import (
    ConfigurationError,
    EngineError,
    Interruption,
    JobInterrupted,
    ServiceUnavailable,
    UpstreamError,
    VideoFetchError,
)
from reelforge.jobs import JobRecord, JobStatus, JobStore, NewJob
from reelforge.jobs.db import make_engine, upgrade
from reelforge.media.encode import probe_mp4
from reelforge.media.fetch import fetch_to_file
from reelforge.media.netguard import FetchPolicy
from reelforge.settings import Settings
from reelforge.storage import LocalStorage
from reelforge.worker import Worker
from support import data_uri, picture, upstream_options

pytestmark = pytest.mark.integration

FAST = 0.005
"""Real seconds per fake second: the published ~50 s become 0.25 s."""
POLL = 0.02
CDN_ALLOWED = FetchPolicy(allow=("localhost",))


@pytest.fixture
def fake():
    with FakeAimlApi(time_scale=FAST) as server:
        yield server


@pytest.fixture
def store(settings: Settings, clock) -> JobStore:
    """SQLite only: the engine's behaviour does not depend on the database."""
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    yield JobStore(engine, clock=clock)
    engine.dispose()


class Harness:
    """Runs jobs through a real worker whose engines are configured for the fake."""

    def __init__(self, settings: Settings, store: JobStore, storage: LocalStorage, fake) -> None:
        self.settings = settings
        self.store = store
        self.storage = storage
        self.fake = fake

    def worker(self, **overrides) -> Worker:
        local = self.settings.model_copy(
            update={
                "engine": "aimlapi",
                "aimlapi_key": SecretStr(self.fake.key),
                "aimlapi_base_url": self.fake.base_url,
                "aimlapi_poll_seconds": POLL,
                "fetch_allow": ["localhost"],
                **overrides,
            }
        )
        return Worker(local, self.store, self.storage, EngineRouter(local), worker_id="w1")

    def submit(self, model: str = "veo2", **params) -> str:
        job_id = f"{uuid.uuid4()}:{model}"
        body = {"model": model, "prompt": "a fox in the snow", "duration": 5, **params}
        self.store.create(
            NewJob(
                id=job_id,
                model=model,
                owner="o",
                params=body,
                seed=7,
                credits=1,
                video_token=uuid.uuid4().hex,
            )
        )
        return job_id

    def run(self, model: str = "veo2", settings: dict | None = None, **params) -> JobRecord:
        worker = self.worker(**(settings or {}))
        job_id = self.submit(model, **params)
        try:
            assert worker.run_once()
        finally:
            worker.engines.close()
        return self.store.get(job_id)


@pytest.fixture
def harness(settings: Settings, store: JobStore, tmp_path: Path, fake) -> Harness:
    return Harness(settings, store, LocalStorage(tmp_path / "files"), fake)


class Recorder(JobContext):
    """A job context that records reports and saved state, and can 'crash' after a save."""

    def __init__(self, crash_after_save: bool = False) -> None:
        super().__init__("job", on_report=self._record, on_save_state=self.states_append)
        self.calls: list[tuple[float, str, float]] = []
        self.states: list[dict] = []
        self.crash_after_save = crash_after_save

    def _record(self, fraction: float, stage: str) -> None:
        self.calls.append((fraction, stage, time.monotonic()))
        if self.crash_after_save and self.states:
            raise Crash()

    def states_append(self, state: dict) -> None:
        self.states.append(state)

    def stages(self) -> list[str]:
        return list(dict.fromkeys(stage for _, stage, _ in self.calls))


class Crash(Exception):
    """Stands for the worker process dying mid-job."""


@pytest.fixture
def engine_for():
    """Builds engines for the fake; closes them (and their temporary files) afterwards."""
    built: list[AimlapiEngine] = []

    def make(fake: FakeAimlApi, **options) -> AimlapiEngine:
        key, transport = options.pop("key", fake.key), options.pop("transport", None)
        engine = AimlapiEngine(
            key, base_url=fake.base_url, options=upstream_options(**options), transport=transport
        )
        built.append(engine)
        return engine

    yield make
    for engine in built:
        engine.close()


def request(model: str = "veo2", **fields) -> GenerationRequest:
    values = {
        "prompt": "a fox in the snow",
        "duration_seconds": 5,
        "width": 1280,
        "height": 720,
        "seed": 7,
        **fields,
    }
    return GenerationRequest(model=model, **values)


def decode_data_uri(value: str) -> Image.Image:
    header, _, payload = value.partition(",")
    assert header == "data:image/jpeg;base64"
    return Image.open(io.BytesIO(base64.b64decode(payload)))


# -- the whole path through a worker ------------------------------------------------------


def test_a_job_completes_with_the_upstream_video_and_credits(harness: Harness, fake) -> None:
    job = harness.run("veo2", negative_prompt="rain", aspect_ratio="9:16")
    assert job.status is JobStatus.COMPLETED, job.error_message
    stored = harness.storage.local_path(job.video_key)
    assert stored.read_bytes() == fake.video
    facts = probe_mp4(stored)
    assert (facts.width, facts.height, facts.frame_count) == (320, 180, 24)
    assert job.credits == 5 * CREDITS_PER_SECOND
    assert job.info["engine"] == "aimlapi"
    assert job.info["upstream_id"] in fake.generations
    [create] = fake.matching("POST")
    assert create.body == {
        "model": "veo2",
        "prompt": "a fox in the snow",
        "duration": 5,
        "aspect_ratio": "9:16",
        "seed": 7,
        "enhance_prompt": True,
        "negative_prompt": "rain",
    }
    assert list(harness.storage.temp_dir().iterdir()) == []


def test_the_key_goes_to_the_api_and_never_to_the_cdn(harness: Harness, fake) -> None:
    assert harness.run().status is JobStatus.COMPLETED
    api = fake.matching()
    assert api and all(r.headers["authorization"] == f"Bearer {fake.key}" for r in api)
    cdn = fake.cdn_requests()
    assert len(cdn) == 1 and cdn[0].host.startswith("localhost:")
    for recorded in cdn:
        assert "authorization" not in recorded.headers
        assert fake.key not in repr(recorded.headers)


def test_images_are_forwarded_as_reencoded_data_uris(harness: Harness, fake) -> None:
    first, last = picture((800, 450), seed=1), picture((640, 360), seed=2)
    params = {"image_url": data_uri(first, "PNG"), "tail_image_url": data_uri(last, "PNG")}
    job = harness.run("veo2/image-to-video", **params)
    assert job.status is JobStatus.COMPLETED, job.error_message
    [create] = fake.matching("POST")
    sent_first = decode_data_uri(create.body["image_url"])
    sent_last = decode_data_uri(create.body["tail_image_url"])
    assert (sent_first.format, sent_first.size) == ("JPEG", (800, 450))
    assert (sent_last.format, sent_last.size) == ("JPEG", (640, 360))
    assert create.body["image_url"] != params["image_url"]  # re-encoded, not passed through
    assert "resolution" not in create.body and "generate_audio" not in create.body


def test_veo3_fields_and_large_images_are_bounded(fake, engine_for) -> None:
    engine = engine_for(fake)
    wanted = request(
        "google/veo-3.0-i2v",
        duration_seconds=6,
        resolution="1080P",
        generate_audio=False,
        enhance_prompt=False,
        aspect_ratio="16:9",
        prompt="an enhanced prompt",
        original_prompt="the user's prompt",
    )
    engine.generate(wanted, Inputs(image=picture((2400, 1350))), Recorder())
    engine.close()
    [create] = fake.matching("POST")
    body = create.body
    assert body["prompt"] == "the user's prompt"
    assert (body["resolution"], body["generate_audio"], body["duration"]) == ("1080P", False, 6)
    assert body["enhance_prompt"] is False and "tail_image_url" not in body
    assert max(decode_data_uri(body["image_url"]).size) == 2048


def test_an_upstream_error_ends_the_job_with_its_name_and_message(harness: Harness) -> None:
    job = harness.run(prompt="FAIL please")
    assert job.status is JobStatus.ERROR
    assert job.error_name == "UpstreamError"
    name, message = DEFAULT_ERROR
    assert job.error_message == f"upstream generation failed: {name}: {message}"


def test_a_rejected_key_is_reported_for_the_operator_without_the_key(
    harness: Harness, fake, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "sk-wrong-key-0123456789"
    with caplog.at_level(logging.DEBUG):
        job = harness.run(settings={"aimlapi_key": SecretStr(wrong)})
    assert job.status is JobStatus.ERROR
    assert (job.error_name, job.error_message) == ("ServiceUnavailable", AUTH_REJECTED_MESSAGE)
    assert "contact the operator" in job.error_message
    logged = caplog.text + repr([record.__dict__ for record in caplog.records])
    assert wrong not in logged and wrong not in job.error_message
    assert "401" in logged  # the operator learns what happened from the log
    assert fake.count("POST") == 1


def test_a_missing_key_names_the_setting(harness: Harness, settings: Settings) -> None:
    with pytest.raises(ServiceUnavailable, match="REELFORGE_AIMLAPI_KEY"):
        AimlapiEngine.from_settings(settings)
    with pytest.raises(ConfigurationError, match="REELFORGE_AIMLAPI_KEY"):
        harness.run(settings={"aimlapi_key": None})  # refused before any job runs


def test_429s_with_retry_after_and_503s_are_ridden_out(harness: Harness, fake) -> None:
    fake.add_fault(429, method="POST", limit=1, retry_after=1)
    fake.add_fault(429, every=2, method="GET", retry_after=0)
    fake.add_fault(503, every=3, method="GET")
    job = harness.run()
    assert job.status is JobStatus.COMPLETED, job.error_message
    first, second = fake.matching("POST")
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.9  # Retry-After: 1 was honoured
    assert len(fake.generations) == 1
    statuses = [r.status for r in fake.matching("GET")]
    assert 429 in statuses and 503 in statuses


def test_retry_after_waits_keep_calling_progress(fake, engine_for) -> None:
    fake.add_fault(429, method="POST", limit=1, retry_after=2)
    progress = Recorder()
    engine_for(fake).generate(request(), Inputs(), progress)
    waiting = [at for _, stage, at in progress.calls if stage == "submitting"]
    assert waiting[-1] - waiting[0] >= 1.9
    gaps = [b - a for a, b in itertools.pairwise(waiting)]
    assert len(waiting) >= 3 and max(gaps) <= 1.2


@pytest.mark.parametrize("status", [500, 503])
def test_a_create_that_may_have_started_is_not_repeated(harness: Harness, fake, status) -> None:
    fake.add_fault(status, method="POST", limit=1)
    job = harness.run()
    assert job.status is JobStatus.ERROR and job.error_name == "UpstreamError"
    assert "may have started anyway" in job.error_message
    assert fake.count("POST") == 1


def test_persistent_failures_end_the_job_after_bounded_retries(harness: Harness, fake) -> None:
    fake.add_fault(503, method="GET")
    job = harness.run()
    assert job.status is JobStatus.ERROR and job.error_name == "UpstreamError"
    assert "kept failing" in job.error_message and "503" in job.error_message
    assert fake.count("GET") == MAX_TRANSIENT_FAILURES + 1


def test_a_400_carries_the_upstream_message(fake, engine_for) -> None:
    with pytest.raises(UpstreamError, match=r"refused the request: Body validation error: prompt"):
        engine_for(fake).generate(request(prompt=""), Inputs(), Recorder())


def test_a_generation_that_takes_too_long_fails_with_its_upstream_id(
    harness: Harness, fake
) -> None:
    fake.time_scale = 1.0  # 50 real seconds
    job = harness.run(settings={"aimlapi_timeout_seconds": 0.3})
    assert job.status is JobStatus.ERROR and job.error_name == "GenerationFailed"
    [upstream_id] = fake.generations
    assert upstream_id in job.error_message and "0.3 s" in job.error_message


def test_progress_rises_through_the_stages_and_stays_below_done(fake, engine_for) -> None:
    progress = Recorder()
    engine_for(fake).generate(request(), Inputs(), progress)
    assert progress.stages() == [
        "submitting",
        "queued",
        "generating",
        "downloading",
        "checking video",
    ]
    fractions = [fraction for fraction, _, _ in progress.calls]
    assert all(0.0 <= f < 1.0 for f in fractions)
    assert fractions == sorted(fractions)
    queued = {f for f, stage, _ in progress.calls if stage == "queued"}
    assert queued == {0.05}
    assert generating_progress(45.0, 45.0) > 0.5
    assert generating_progress(450.0, 45.0) < PROGRESS_GENERATED


class FakeTime(JobContext):
    """A job context on a fake clock: ``sleep`` advances it at once and records how long.

    Give the engine ``clock`` too, and waits of any length take no real time."""

    def __init__(self) -> None:
        super().__init__("job")
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        self.raise_if_cancelled()


def test_retry_after_is_honoured_while_following_and_downloading(fake, engine_for) -> None:
    fake.script = ()  # completed at the first look
    fake.add_fault(429, method="GET", limit=1, retry_after=7)
    fake.add_fault(503, path="/cdn/", limit=1, retry_after=3)
    engine = engine_for(fake, poll_seconds=30.0)
    job = FakeTime()
    engine.clock = job.clock
    started = time.monotonic()
    clip = engine.generate(request(), Inputs(), job)
    assert clip.file is not None and clip.file.read_bytes() == fake.video
    assert time.monotonic() - started < 2.0  # ten seconds of waiting, none of them real
    assert job.slept == [1.0] * 10  # 7 s, then 3 s, in ticks that each report progress
    assert [r.status for r in fake.matching("GET")] == [429, 200]
    assert [r.status for r in fake.cdn_requests()] == [503, 200]


def test_transient_waits_are_jittered_backoff_below_the_ceiling(fake, engine_for) -> None:
    fake.script = ()
    fake.add_fault(503, method="GET", limit=3)
    engine = engine_for(fake, poll_seconds=10.0)
    job = FakeTime()
    engine.clock = job.clock
    engine.generate(request(), Inputs(), job)
    gets = fake.matching("GET")
    assert [r.status for r in gets] == [503, 503, 503, 200]
    assert 0.0 < sum(job.slept) <= 10.0 + 20.0 + 40.0  # full jitter below 10 * 2**n


@pytest.mark.parametrize("status", [408, 429])
def test_a_create_refused_before_starting_is_repeated(fake, engine_for, status: int) -> None:
    fake.add_fault(status, method="POST", limit=1)
    engine = engine_for(fake)
    job = FakeTime()
    engine.clock = job.clock
    engine.generate(request(), Inputs(), job)
    assert [r.status for r in fake.matching("POST")] == [status, 200]
    assert len(fake.generations) == 1


class RefuseFirstConnection(httpx.HTTPTransport):
    """The first request fails to connect (nothing sent); the rest go through."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not self.refused:
            self.refused += 1
            raise httpx.ConnectError("connection refused", request=request)
        return super().handle_request(request)


def test_a_create_whose_connection_failed_before_sending_is_repeated(fake, engine_for) -> None:
    transport = RefuseFirstConnection()
    engine = engine_for(fake, transport=transport)
    job = FakeTime()
    engine.clock = job.clock
    engine.generate(request(), Inputs(), job)
    assert transport.refused == 1
    assert fake.count("POST") == 1 and len(fake.generations) == 1


def test_cancelling_wakes_a_long_poll_interval_at_once(fake, engine_for) -> None:
    fake.time_scale = 1.0  # 50 real seconds of generation
    engine = engine_for(fake, poll_seconds=30.0)
    job = JobContext("job")
    cancelled_at: list[float] = []

    def cancel() -> None:
        cancelled_at.append(time.monotonic())
        job.cancel(Interruption.CANCELLED)

    timer = threading.Timer(0.3, cancel)
    timer.start()
    with pytest.raises(JobInterrupted) as interrupted:
        engine.generate(request(), Inputs(), job)
    woke_after = time.monotonic() - cancelled_at[0]
    timer.join()
    assert interrupted.value.reason is Interruption.CANCELLED
    assert woke_after < 2.0  # not the 30 s poll interval (generous: the machine may be busy)
    assert fake.count("GET") == 1  # it was waiting out the 30 s poll interval


# -- resuming instead of paying twice ------------------------------------------------------


def test_a_crashed_attempt_is_resumed_without_a_second_create(fake, engine_for) -> None:
    engine = engine_for(fake)
    first = Recorder(crash_after_save=True)
    with pytest.raises(Crash):
        engine.generate(request(), Inputs(), first)
    [state] = first.states
    assert state["upstream_id"] in fake.generations
    second = Recorder()
    clip = engine.generate(dataclasses.replace(request(), engine_state=state), Inputs(), second)
    assert clip.facts["upstream_id"] == state["upstream_id"]
    assert clip.file is not None and clip.file.read_bytes() == fake.video
    assert second.states == []
    assert fake.count("POST") == 1
    polled = {r.query["generation_id"] for r in fake.matching("GET")}
    assert polled == {state["upstream_id"]}
    engine.close()
    assert not clip.file.exists()  # the engine's directory goes with it


def test_a_resumed_generation_has_only_what_is_left_of_the_deadline(fake, engine_for) -> None:
    fake.time_scale = 1.0  # 50 real seconds: still generating throughout
    running = fake._create({"model": "veo2", "prompt": "a fox"}, fake.key)
    engine = engine_for(fake, poll_seconds=2.0, timeout_seconds=100.0)
    job = FakeTime()
    engine.clock = job.clock
    state = {"upstream_id": running.id, "submitted_at": time.time() - 95.0}
    with pytest.raises(EngineError, match=r"did not finish within 100 s") as timed_out:
        engine.generate(dataclasses.replace(request(), engine_state=state), Inputs(), job)
    assert running.id in timed_out.value.message
    assert 4.5 < sum(job.slept) <= 5.5  # the 5 s left, not another 100
    assert fake.count("POST") == 0


def test_a_resumed_generation_past_its_deadline_is_still_collected(fake, engine_for) -> None:
    fake.script = ()
    done = fake._create({"model": "veo2", "prompt": "a fox"}, fake.key)
    engine = engine_for(fake)
    state = {"upstream_id": done.id, "submitted_at": time.time() - 10_000.0}
    clip = engine.generate(dataclasses.replace(request(), engine_state=state), Inputs(), Recorder())
    assert clip.facts["upstream_id"] == done.id and clip.credits_used == 5 * CREDITS_PER_SECOND
    assert fake.count("POST") == 0


def test_a_job_handed_back_on_shutdown_resumes_the_same_generation(harness: Harness, fake) -> None:
    fake.time_scale = 0.02  # one real second of generation
    worker = harness.worker()
    job_id = harness.submit()

    def stop_once_created() -> None:
        while fake.count("POST") == 0:
            time.sleep(0.002)
        worker.stop_event.set()

    threading.Thread(target=stop_once_created, daemon=True).start()
    assert worker.run_once()
    job = harness.store.get(job_id)
    assert job.status is JobStatus.QUEUED
    assert job.info["engine_state"]["upstream_id"] in fake.generations
    worker.stop_event.clear()
    assert worker.run_once()
    worker.engines.close()
    job = harness.store.get(job_id)
    assert job.status is JobStatus.COMPLETED, job.error_message
    assert fake.count("POST") == 1 and len(fake.generations) == 1
    assert job.info["upstream_id"] == job.info["engine_state"]["upstream_id"]


# -- the download ---------------------------------------------------------------------------


def test_a_slow_download_completes_and_reports_progress(fake, engine_for) -> None:
    fake.cdn_chunk_delay = 0.1  # ~0.4 s for the sample's four chunks
    progress = Recorder()
    clip = engine_for(fake).generate(request(), Inputs(), progress)
    assert clip.file is not None and clip.file.read_bytes() == fake.video
    downloading = [f for f, stage, _ in progress.calls if stage == "downloading"]
    assert len(set(downloading)) >= 3


def test_a_download_slower_than_its_deadline_fails_and_leaves_nothing(fake, engine_for) -> None:
    fake.cdn_chunk_delay = 0.3
    engine = engine_for(fake, download_timeout_seconds=0.5)
    with pytest.raises(UpstreamError, match=r"could not be downloaded.*took longer than 0\.5 s"):
        engine.generate(request(), Inputs(), Recorder())
    assert _engine_files(engine) == []


def test_a_video_larger_than_the_limit_is_refused(harness: Harness, fake) -> None:
    job = harness.run(settings={"max_video_bytes": 10_000})
    assert job.status is JobStatus.ERROR and job.error_name == "UpstreamError"
    assert "video is larger than 9.8 KiB" in job.error_message


def test_a_cut_download_is_retried(fake, engine_for) -> None:
    fake.cdn_cut_after = 10_000
    clip = engine_for(fake).generate(request(), Inputs(), Recorder())
    assert clip.file is not None and clip.file.read_bytes() == fake.video
    assert len(fake.cdn_requests()) == 2


def test_the_cdn_must_pass_the_address_rules(fake, engine_for) -> None:
    engine = engine_for(fake, policy=FetchPolicy())
    with pytest.raises(UpstreamError, match="not public"):
        engine.generate(request(), Inputs(), Recorder())
    assert fake.cdn_requests() == []


def test_a_file_that_is_not_an_mp4_is_refused(fake, engine_for) -> None:
    fake.video = b"<html>Not found</html>"
    engine = engine_for(fake)
    with pytest.raises(UpstreamError, match="cannot use: it is not an MP4"):
        engine.generate(request(), Inputs(), Recorder())
    assert _engine_files(engine) == []


def _engine_files(engine: AimlapiEngine) -> list[Path]:
    directory = engine._files._directory
    return [] if directory is None else list(directory.iterdir())


# -- fetch_to_file on its own ---------------------------------------------------------------


def _video_url(fake: FakeAimlApi) -> str:
    return f"{fake.cdn_base}/cdn/abc/output.mp4"


def test_fetch_to_file_streams_and_reports(fake, tmp_path: Path) -> None:
    seen: list[int] = []
    path = tmp_path / "v.mp4"
    fetched = fetch_to_file(
        _video_url(fake), CDN_ALLOWED, path, max_bytes=2**20, on_progress=seen.append
    )
    assert fetched.size == len(fake.video) == path.stat().st_size
    assert fetched.content_type == "video/mp4"
    assert seen[-1] == len(fake.video) and seen == sorted(seen)
    assert fake.cdn_requests()[0].headers["accept"].startswith("video/mp4")


@pytest.mark.parametrize(
    ("setup", "transient", "match"),
    [
        (lambda fake: setattr(fake, "cdn_cut_after", 10_000), True, "connection"),
        (lambda fake: fake.add_fault(503, path="/cdn/"), True, "HTTP 503"),
        (lambda fake: fake.add_fault(404, path="/cdn/"), False, "HTTP 404"),
        (lambda fake: None, False, "larger than 1 KiB"),
    ],
)
def test_fetch_to_file_leaves_no_partial_file(
    fake, tmp_path: Path, setup, transient, match
) -> None:
    setup(fake)
    path = tmp_path / "v.mp4"
    limit = 1024 if "larger" in match else 2**20
    with pytest.raises(VideoFetchError, match=match) as failure:
        fetch_to_file(_video_url(fake), CDN_ALLOWED, path, max_bytes=limit)
    assert failure.value.transient is transient
    assert not path.exists()


def test_fetch_to_file_can_be_cancelled_by_its_callback(fake, tmp_path: Path) -> None:
    def cancel(written: int) -> None:
        raise EngineError("cancelled")

    path = tmp_path / "v.mp4"
    with pytest.raises(EngineError):
        fetch_to_file(_video_url(fake), CDN_ALLOWED, path, max_bytes=2**20, on_progress=cancel)
    assert not path.exists()


@pytest.mark.parametrize(
    ("model", "params"),
    [
        ("google/veo-3.1-reference-to-video", {"duration": 8, "provider": "fal"}),
        ("google/veo3-1-fast-extend-video", {"duration": 7, "auto_fix": True}),
        ("google/veo-3.1-first-last-image-to-video", {"duration": 4, "resolution": "720p"}),
    ],
)
def test_new_models_are_forwarded_with_their_published_fields(
    harness: Harness, fake, model: str, params: dict
) -> None:
    import jsonschema

    from published_specs import published_models
    from video_samples import make_video, video_data_uri

    inputs = {
        "google/veo-3.1-reference-to-video": {
            "image_urls": [data_uri(picture((500, 500), seed=n)) for n in (1, 2)]
        },
        "google/veo3-1-fast-extend-video": {"video_url": video_data_uri(make_video(1.0))},
        "google/veo-3.1-first-last-image-to-video": {
            "image_url": data_uri(picture((800, 450), seed=3)),
            "last_image_url": data_uri(picture((800, 450), seed=4)),
        },
    }[model]
    job = harness.run(model, **params, **inputs)
    assert job.status is JobStatus.COMPLETED, job.error_message
    [create] = fake.matching("POST")
    published = next(item for item in published_models() if item.name == model)
    jsonschema.validate(create.body, published.schema)
    assert set(create.body) <= set(published.properties)
    for name, value in params.items():
        assert create.body[name] == value
    if "video_url" in create.body:
        assert create.body["video_url"] == inputs["video_url"]  # the fetched bytes, as sent
