"""The worker honours an engine's own time budget (``time_budget``), on real SQLite and
storage: it sets the attempt's deadline and the heartbeat's grace, is capped by
``job_timeout_max_seconds``, and the job says which budget applied."""

from __future__ import annotations

import threading
import time
import uuid

import numpy as np
import pytest

from reelforge.engines import Capabilities, Clip, EngineFactory, EngineRouter
from reelforge.jobs import JobStatus, NewJob
from reelforge.storage import LocalStorage
from reelforge.worker import Worker
from support import wait_until

pytestmark = pytest.mark.integration


class BudgetedEngine:
    """Works ``work_seconds`` (waking on cancellation, as engines do) within its budget."""

    name = "budgeted"

    def __init__(self, budget: float | None, work_seconds: float, *, hang: bool = False) -> None:
        self.budget = budget
        self.work_seconds = work_seconds
        self.hang = hang
        self.release = threading.Event()
        self.remaining_at_start: float | None = None

    def capabilities(self, model: str) -> Capabilities:
        return Capabilities()

    def load(self) -> None:
        pass

    def close(self) -> None:
        pass

    def time_budget(self, request) -> float | None:
        return self.budget

    def generate(self, request, inputs, job) -> Clip:
        self.remaining_at_start = job.remaining
        if self.hang:
            self.release.wait(60)  # a stuck native call: never looks at its job
        else:
            job.sleep(self.work_seconds)
        frames = (np.zeros((64, 64, 3), np.uint8) for _ in range(request.frame_count))
        return Clip(width=64, height=64, frame_count=request.frame_count, frames=frames)


@pytest.fixture
def make_worker(settings, store, tmp_path):
    def make(engine: BudgetedEngine, **overrides) -> Worker:
        local = settings.model_copy(update={"engine": "budgeted", **overrides})
        router = EngineRouter(local, {"budgeted": EngineFactory(lambda _settings: engine)})
        return Worker(local, store, LocalStorage(tmp_path / "files"), router, worker_id="w1")

    return make


def submit(store) -> str:
    job_id = f"{uuid.uuid4()}:veo2"
    store.create(
        NewJob(
            id=job_id,
            model="veo2",
            owner="o",
            params={"model": "veo2", "prompt": "p", "duration": 5},
            seed=1,
            credits=10,
            video_token=uuid.uuid4().hex,
        )
    )
    return job_id


def test_a_job_past_its_engine_budget_times_out_though_the_global_limit_is_far(
    make_worker, store
) -> None:
    engine = BudgetedEngine(budget=0.4, work_seconds=60)
    worker = make_worker(engine, job_timeout_seconds=600)
    job_id = submit(store)
    began = time.monotonic()
    worker.run_once()
    job = store.get(job_id)
    assert (job.status, job.error_name) == (JobStatus.ERROR, "Timeout")
    assert "longer than the 0.4 s limit (budgeted budget)" in job.error_message
    assert "REELFORGE_JOB_TIMEOUT_MAX_SECONDS" in job.error_message
    assert time.monotonic() - began < 10


def test_a_job_within_a_budget_larger_than_the_global_limit_completes(make_worker, store) -> None:
    engine = BudgetedEngine(budget=30, work_seconds=2.0)
    worker = make_worker(engine, job_timeout_seconds=1.0)
    job_id = submit(store)
    worker.run_once()
    job = store.get(job_id)
    assert job.status is JobStatus.COMPLETED, job.error_message
    assert job.info["time_budget"] == "budgeted"
    assert job.info["time_budget_seconds"] == 30
    assert engine.remaining_at_start is not None and 20 < engine.remaining_at_start <= 30


def test_the_ceiling_caps_an_engine_budget(make_worker, store) -> None:
    engine = BudgetedEngine(budget=10_000, work_seconds=60)
    worker = make_worker(engine, job_timeout_seconds=600, job_timeout_max_seconds=0.4)
    job_id = submit(store)
    worker.run_once()
    job = store.get(job_id)
    assert job.error_name == "Timeout" and "0.4 s limit" in job.error_message


def test_an_engine_without_a_budget_keeps_the_global_limit(make_worker, store) -> None:
    engine = BudgetedEngine(budget=None, work_seconds=0.0)
    worker = make_worker(engine, job_timeout_seconds=120)
    job_id = submit(store)
    worker.run_once()
    job = store.get(job_id)
    assert job.status is JobStatus.COMPLETED
    assert (job.info["time_budget"], job.info["time_budget_seconds"]) == ("global", 120)
    assert engine.remaining_at_start is not None and 100 < engine.remaining_at_start <= 120


def test_the_heartbeat_gives_up_on_a_hung_engine_after_its_budget_and_grace(
    make_worker, store
) -> None:
    engine = BudgetedEngine(budget=0.5, work_seconds=0.0, hang=True)
    worker = make_worker(
        engine, job_timeout_seconds=600, job_timeout_grace_seconds=0.5, lease_seconds=3
    )
    abandoned = []
    worker._on_abandoned = abandoned.append
    job_id = submit(store)
    thread = threading.Thread(target=worker.run_once, daemon=True)
    began = time.monotonic()
    thread.start()
    try:
        wait_until(lambda: store.get(job_id).status is JobStatus.ERROR, timeout=20)
        took = time.monotonic() - began
        job = store.get(job_id)
        assert job.error_name == "Timeout" and "0.5 s limit (budgeted budget)" in job.error_message
        assert 0.9 <= took < 10
        assert [j.id for j in abandoned] == [job_id]
    finally:
        engine.release.set()
        thread.join(10)
