"""The worker in-process on real SQLite and storage: failures, shutdown, lost leases."""

from __future__ import annotations

import threading
import time
import uuid

import numpy as np
import pytest

from reelforge.engines import Capabilities, Clip, EngineFactory, EngineRouter
from reelforge.errors import EngineError
from reelforge.jobs import JobStatus, NewJob
from reelforge.media.encode import probe_mp4
from reelforge.storage import LocalStorage
from reelforge.worker import Worker, WorkerPool
from reelforge.worker.running import RunningJob
from support import wait_until

pytestmark = pytest.mark.integration


class ScriptedEngine:
    """An engine whose behaviour each test chooses; frames are tiny solid colours."""

    name = "scripted"

    def __init__(self, behaviour) -> None:
        self.behaviour = behaviour
        self.loads = 0

    def capabilities(self, model: str) -> Capabilities:
        return Capabilities()

    def load(self) -> None:
        self.loads += 1

    def close(self) -> None:
        pass

    def generate(self, request, inputs, job) -> Clip:
        return self.behaviour(request, job)


def frames_clip(request, job, on_frame=None) -> Clip:
    def frames():
        for index in range(request.frame_count):
            job.report(index / request.frame_count, "rendering")
            if on_frame:
                on_frame(index)
            yield np.full((request.height, request.width, 3), index % 255, dtype=np.uint8)

    return Clip(
        width=request.width, height=request.height, frame_count=request.frame_count, frames=frames()
    )


@pytest.fixture
def make_worker(settings, store, tmp_path):
    storage = LocalStorage(tmp_path / "files")

    def make(behaviour, **overrides):
        engine = ScriptedEngine(behaviour)
        local = settings.model_copy(update={"engine": "scripted", **overrides})
        router = EngineRouter(local, {"scripted": EngineFactory(lambda _settings: engine)})
        return Worker(local, store, storage, router, worker_id="w1"), engine, storage

    return make


def submit(store, **params) -> str:
    job_id = f"{uuid.uuid4()}:veo2"
    store.create(
        NewJob(
            id=job_id,
            model="veo2",
            owner="o",
            params={"model": "veo2", "prompt": "p", "duration": 5, **params},
            seed=1,
            credits=10,
            video_token=uuid.uuid4().hex,
        )
    )
    return job_id


def test_completes_with_a_probed_video_and_loads_the_engine_once(make_worker, store) -> None:
    worker, engine, storage = make_worker(frames_clip)
    first, second = submit(store), submit(store, aspect_ratio="9:16")
    assert worker.run_once() and worker.run_once() and not worker.run_once()
    assert engine.loads == 1
    for job_id, size in ((first, (1280, 720)), (second, (720, 1280))):
        job = store.get(job_id)
        assert job.status is JobStatus.COMPLETED and job.progress == 1.0
        facts = probe_mp4(storage.local_path(job.video_key))
        assert (facts.width, facts.height, facts.frame_count) == (*size, 120)
        assert job.video_size == storage.size(job.video_key)
        assert job.info["engine"] == "scripted"


def test_engine_errors_reach_the_user_and_internal_ones_do_not(make_worker, store) -> None:
    def refuse(request, job):
        raise EngineError("the prompt asks for something this engine cannot draw")

    def crash(request, job):
        raise RuntimeError("secret internal detail")

    worker, _, _ = make_worker(refuse)
    job_id = submit(store)
    worker.run_once()
    job = store.get(job_id)
    assert (job.error_name, job.error_message) == (
        "GenerationFailed",
        "the prompt asks for something this engine cannot draw",
    )

    worker, _, _ = make_worker(crash)
    job_id = submit(store)
    worker.run_once()
    job = store.get(job_id)
    assert job.status is JobStatus.ERROR and job.error_name == "GenerationFailed"
    assert "secret" not in job.error_message and job_id in job.error_message


def test_wrong_frames_fail_the_job_and_leave_no_file(make_worker, store, tmp_path) -> None:
    def short(request, job):
        frames = (np.zeros((request.height, request.width, 3), np.uint8) for _ in range(3))
        return Clip(width=request.width, height=request.height, frame_count=120, frames=frames)

    worker, _, storage = make_worker(short)
    job_id = submit(store)
    worker.run_once()
    job = store.get(job_id)
    assert job.status is JobStatus.ERROR and job.error_name == "GenerationFailed"
    assert list(storage.temp_dir().iterdir()) == []
    assert not (tmp_path / "files" / "videos").exists()


def test_shutdown_hands_the_job_back(make_worker, store) -> None:
    started = threading.Event()

    def slow(request, job):
        return frames_clip(request, job, on_frame=lambda i: (started.set(), time.sleep(0.01)))

    worker, _, _ = make_worker(slow)
    job_id = submit(store)
    thread = threading.Thread(target=worker.run_once)
    thread.start()
    assert started.wait(10)
    worker.stop_event.set()  # no drain: the heartbeat stops the job at its next beat
    thread.join(10)
    job = store.get(job_id)
    assert job.status is JobStatus.QUEUED and job.attempts == 0 and job.worker_id is None


def test_a_lost_lease_stops_the_job_without_finishing_it(make_worker, store) -> None:
    def slow(request, job):
        return frames_clip(request, job, on_frame=lambda i: time.sleep(0.02))

    worker, _, _ = make_worker(slow, lease_seconds=0.9)
    job_id = submit(store)
    thread = threading.Thread(target=worker.run_once)
    thread.start()
    wait_until(lambda: store.get(job_id).status is JobStatus.GENERATING)
    # Another worker takes the job, as after an expired lease. w1's heartbeat may extend
    # the lease again in between, so expire and claim until w2 owns it.
    stolen = None
    for _ in range(50):
        store.expire_leases(lambda worker_id: worker_id == "w1")
        stolen = store.claim("w2", lease_seconds=60, max_attempts=3)
        if stolen is not None:
            break
    assert stolen is not None and stolen.id == job_id
    thread.join(30)
    job = store.get(job_id)
    assert job.status is JobStatus.GENERATING and job.worker_id == "w2"


def test_job_timeout(make_worker, store) -> None:
    def slow(request, job):
        return frames_clip(request, job, on_frame=lambda i: time.sleep(0.05))

    worker, _, _ = make_worker(slow, job_timeout_seconds=0.3)
    job_id = submit(store)
    worker.run_once()
    job = store.get(job_id)
    assert (job.status, job.error_name) == (JobStatus.ERROR, "Timeout")
    assert "longer than the 0.3 s limit" in job.error_message


def test_engine_state_survives_to_the_next_attempt_and_credits_are_reported(
    make_worker, store, clock
) -> None:
    seen_states = []

    def upstreamish(request, job):
        seen_states.append(dict(request.engine_state))
        if not request.engine_state:
            job.save_state({"upstream_id": "up-1"})
            raise RuntimeError("the worker 'crashes' after creating the upstream task")
        clip = frames_clip(request, job)
        clip.credits_used = 42
        return clip

    worker, _, _ = make_worker(upstreamish)
    job_id = submit(store)
    job = store.claim("w1", lease_seconds=30, max_attempts=3)
    context = RunningJob(worker, job).context
    with pytest.raises(RuntimeError):
        worker._generate(job, context, worker.storage.temp_dir() / "x.mp4")
    assert store.get(job_id).info["engine_state"] == {"upstream_id": "up-1"}
    clock.advance(60)  # the lease runs out, as if the worker had died
    assert worker.run_once()
    job = store.get(job_id)
    assert seen_states == [{}, {"upstream_id": "up-1"}]
    assert job.status is JobStatus.COMPLETED
    assert job.credits == 42


def test_a_hung_engine_cannot_hold_a_job_past_its_deadline(make_worker, store) -> None:
    """An engine that never looks at its job context: the heartbeat ends the job."""
    release = threading.Event()

    def hung(request, job):
        release.wait(60)  # a stuck native call: no report, no cancellation check
        raise RuntimeError("woke up far too late")

    worker, _, _ = make_worker(
        hung, job_timeout_seconds=0.5, job_timeout_grace_seconds=0.5, lease_seconds=3
    )
    abandoned = []
    worker._on_abandoned = abandoned.append
    job_id = submit(store)
    thread = threading.Thread(target=worker.run_once, daemon=True)
    began = time.monotonic()
    thread.start()
    wait_until(lambda: store.get(job_id).status is JobStatus.ERROR)
    took = time.monotonic() - began
    job = store.get(job_id)
    assert job.error_name == "Timeout" and "0.5 s limit" in job.error_message
    assert 0.9 <= took < 5
    assert [j.id for j in abandoned] == [job_id]
    release.set()
    thread.join(10)
    assert store.get(job_id).status is JobStatus.ERROR  # the late engine changes nothing


def test_a_pool_replaces_a_thread_lost_to_a_hung_engine(settings, store, tmp_path) -> None:
    release = threading.Event()
    calls = []

    def maybe_hang(request, job):
        calls.append(request.job_id)
        if len(calls) == 1:
            release.wait(60)
        frames = (np.zeros((64, 64, 3), np.uint8) for _ in range(request.frame_count))
        return Clip(width=64, height=64, frame_count=request.frame_count, frames=frames)

    engine = ScriptedEngine(maybe_hang)
    local = settings.model_copy(
        update={
            "engine": "scripted",
            "job_timeout_seconds": 1.0,
            "job_timeout_grace_seconds": 0.3,
            "poll_seconds": 0.05,
        }
    )
    router = EngineRouter(local, {"scripted": EngineFactory(lambda _settings: engine)})
    pool = WorkerPool(local, store, LocalStorage(tmp_path / "files"), router, 1, recycle=False)
    hung, later = submit(store), submit(store)
    pool.start()
    try:
        wait_until(lambda: store.get(later).status is JobStatus.COMPLETED, timeout=30)
        assert store.get(hung).error_name == "Timeout"
    finally:
        release.set()
        pool.stop()
