"""Routes with failover, against fakes of vLLM-Omni's ``/v1/videos`` on loopback.

Every job runs through a real ``Worker`` (SQLite, local storage; PostgreSQL for the
capacity test). The fakes count what they admitted (``creates``), so each case proves
the job ended once, on the right engine or with a clear error, and that no second
upstream task was started for it while the first may be billed.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest
from pydantic import SecretStr

from fakes.vllm_omni import FakeVllmOmni
from reelforge import metrics
from reelforge.engines import EngineRouter
from reelforge.engines.routing import engine_health, held_leases
from reelforge.jobs import JobRecord, JobStatus, JobStore, NewJob
from reelforge.jobs.db import make_engine, upgrade
from reelforge.settings import Settings
from reelforge.storage import LocalStorage
from reelforge.worker import Worker
from support import free_port, inspect_mp4, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def store(settings: Settings) -> JobStore:
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    yield JobStore(engine)
    engine.dispose()


@pytest.fixture
def gpu_a():
    with FakeVllmOmni() as fake:
        yield fake


@pytest.fixture
def gpu_b():
    with FakeVllmOmni() as fake:
        yield fake


def routed_settings(settings: Settings, route: dict[str, str], **overrides) -> Settings:
    """``veo2`` routed over openai-videos instances named by ``route`` (name -> URL)."""
    engines = {
        name: {"kind": "openai-videos", "base_url": url, "poll_seconds": 0.02, **overrides}
        for name, url in route.items()
    }
    return settings.model_copy(
        update={
            "engines": Settings.model_validate({"engines": engines}).engines,
            "routes": {"veo2": list(route)},
            "breaker_failures": 3,
            "breaker_cooldown_seconds": 30.0,
        }
    )


def submit(store: JobStore, prompt: str = "a fox in the snow", **params) -> str:
    job_id = f"{uuid.uuid4()}:veo2"
    body = {"model": "veo2", "prompt": prompt, "duration": 5, **params}
    store.create(
        NewJob(
            id=job_id,
            model="veo2",
            owner="o",
            params=body,
            seed=7,
            credits=1,
            video_token=uuid.uuid4().hex,
        )
    )
    return job_id


def run(worker: Worker, store: JobStore, prompt: str = "a fox in the snow", **params) -> JobRecord:
    job_id = submit(store, prompt, **params)
    assert worker.run_once()
    job = store.get(job_id)
    assert job is not None and job.status.is_final
    return job


def make_worker(local: Settings, store: JobStore, tmp_path: Path, worker_id: str = "w1") -> Worker:
    storage = LocalStorage(tmp_path / "files")
    return Worker(local, store, storage, EngineRouter(local), worker_id=worker_id)


def failovers(engine: str) -> float:
    total = 0.0
    for family in metrics.FAILOVERS.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels["engine"] == engine:
                total += sample.value
    return total


def test_first_engine_down_fails_over_to_the_second(settings, store, tmp_path, gpu_b) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    local = routed_settings(settings, {"gpu-a": down, "gpu-b": gpu_b.base_url})
    before = failovers("gpu-a")
    worker = make_worker(local, store, tmp_path)
    job = run(worker, store)
    assert job.status is JobStatus.COMPLETED, job.error_message
    assert job.info["engine"] == "gpu-b"
    assert job.info["engine_state"]["engine"] == "gpu-b"
    assert gpu_b.creates == 1
    assert failovers("gpu-a") == before + 1
    fields = next(iter(gpu_b.videos.values())).fields
    assert fields["seconds"] == "5" and fields["model"] == "veo2" and fields["seed"] == "7"
    assert "x" in fields["size"]
    stored = inspect_mp4(worker.storage.local_path(job.video_key))
    assert stored.frames > 0


def test_slow_first_engine_is_waited_for_not_left(settings, store, tmp_path, gpu_a, gpu_b):
    gpu_a.create_delay = 0.3
    gpu_a.generating_seconds = 0.4
    local = routed_settings(settings, {"gpu-a": gpu_a.base_url, "gpu-b": gpu_b.base_url})
    job = run(make_worker(local, store, tmp_path), store)
    assert job.status is JobStatus.COMPLETED, job.error_message
    assert job.info["engine"] == "gpu-a"
    assert (gpu_a.creates, gpu_b.creates) == (1, 0)


def test_503_then_recovery_stays_on_the_first_engine(settings, store, tmp_path, gpu_a, gpu_b):
    gpu_a.add_fault(503, method="POST", limit=2, retry_after=0)
    local = routed_settings(settings, {"gpu-a": gpu_a.base_url, "gpu-b": gpu_b.base_url})
    job = run(make_worker(local, store, tmp_path), store)
    assert job.status is JobStatus.COMPLETED, job.error_message
    assert job.info["engine"] == "gpu-a"
    assert gpu_a.create_attempts() == 3
    assert (gpu_a.creates, gpu_b.creates) == (1, 0)


def test_503_past_the_retries_fails_over(settings, store, tmp_path, gpu_a, gpu_b) -> None:
    gpu_a.add_fault(503, method="POST", retry_after=0)
    local = routed_settings(settings, {"gpu-a": gpu_a.base_url, "gpu-b": gpu_b.base_url})
    job = run(make_worker(local, store, tmp_path), store)
    assert job.status is JobStatus.COMPLETED, job.error_message
    assert job.info["engine"] == "gpu-b"
    assert (gpu_a.creates, gpu_b.creates) == (0, 1)


def test_rejected_key_fails_over(settings, store, tmp_path, gpu_b) -> None:
    with FakeVllmOmni(key="the-right-key") as gpu_a:
        local = routed_settings(settings, {"gpu-a": gpu_a.base_url, "gpu-b": gpu_b.base_url})
        local.engines["gpu-a"] = local.engines["gpu-a"].model_copy(
            update={"api_key": SecretStr("a-wrong-key")}
        )
        job = run(make_worker(local, store, tmp_path), store)
        assert gpu_a.creates == 0
        assert gpu_a.create_attempts() == 1
    assert job.status is JobStatus.COMPLETED, job.error_message
    assert job.info["engine"] == "gpu-b"


def test_accepted_then_lost_ends_the_job_without_a_second_task(
    settings, store, tmp_path, gpu_b
) -> None:
    gpu_a = FakeVllmOmni(queued_seconds=60.0).start()
    local = routed_settings(settings, {"gpu-a": gpu_a.base_url, "gpu-b": gpu_b.base_url})
    worker = make_worker(local, store, tmp_path)
    job_id = submit(store)
    runner = threading.Thread(target=worker.run_once)
    runner.start()
    wait_until(lambda: gpu_a.creates == 1)
    wait_until(lambda: len(gpu_a.recorded(lambda r: r.method == "GET")) >= 1)
    gpu_a.gone = True  # the machine goes away with the task admitted
    gpu_a.stop()
    runner.join(timeout=60)
    job = store.get(job_id)
    assert job.status is JobStatus.ERROR
    assert "kept failing while following video_gen_" in job.error_message
    assert gpu_b.creates == 0


def test_lost_create_answer_is_not_repeated_anywhere(settings, store, tmp_path, gpu_a, gpu_b):
    gpu_a.drop_create_answer = True
    local = routed_settings(settings, {"gpu-a": gpu_a.base_url, "gpu-b": gpu_b.base_url})
    job = run(make_worker(local, store, tmp_path), store)
    assert job.status is JobStatus.ERROR
    assert "charged twice" in job.error_message
    assert (gpu_a.create_attempts(), gpu_b.creates) == (1, 0)


def test_unbilled_failure_reported_upstream_fails_over(settings, store, tmp_path, gpu_a, gpu_b):
    gpu_a.fail = True
    local = routed_settings(settings, {"gpu-a": gpu_a.base_url, "gpu-b": gpu_b.base_url})
    job = run(make_worker(local, store, tmp_path), store)
    assert job.status is JobStatus.COMPLETED, job.error_message
    assert job.info["engine"] == "gpu-b"
    assert (gpu_a.creates, gpu_b.creates) == (1, 1)
    assert job.credits == 1  # the published price, once


def test_every_engine_failing_ends_with_the_last_clear_error(settings, store, tmp_path) -> None:
    local = routed_settings(
        settings,
        {"gpu-a": f"http://127.0.0.1:{free_port()}", "gpu-b": f"http://127.0.0.1:{free_port()}"},
    )
    job = run(make_worker(local, store, tmp_path), store)
    assert job.status is JobStatus.ERROR
    assert job.error_name == "UpstreamError"
    assert "could not connect" in job.error_message


def test_circuit_opens_after_failures_and_closes_after_a_probe(
    settings, store, tmp_path, gpu_a, gpu_b
) -> None:
    fault = gpu_a.add_fault(503, method="POST", retry_after=0)
    local = routed_settings(settings, {"gpu-a": gpu_a.base_url, "gpu-b": gpu_b.base_url})
    local = local.model_copy(update={"breaker_failures": 2, "breaker_cooldown_seconds": 0.5})
    worker = make_worker(local, store, tmp_path)
    for _ in range(2):
        assert run(worker, store).info["engine"] == "gpu-b"
    breaker = worker.engines.breaker_states()
    assert breaker["gpu-a"] == "open"
    assert store.held_locks("breaker:") == {"breaker:gpu-a": "open"}
    health = engine_health(local, held_leases(store))
    assert (health["gpu-a"]["circuit"], health["gpu-b"]["circuit"]) == ("open", "closed")
    tried = gpu_a.create_attempts()
    assert run(worker, store).info["engine"] == "gpu-b"
    assert gpu_a.create_attempts() == tried  # skipped while open: not even asked
    gpu_a.faults.remove(fault)
    wait_until(lambda: worker.engines.breaker_states()["gpu-a"] == "half_open", timeout=5)
    job = run(worker, store)
    assert job.info["engine"] == "gpu-a"  # the probe went through and succeeded
    assert worker.engines.breaker_states()["gpu-a"] == "closed"
    assert store.held_locks("breaker:") == {}


def test_capacity_holds_across_workers_on_postgresql(settings, postgres_url, tmp_path) -> None:
    with FakeVllmOmni(queued_seconds=0.0, generating_seconds=0.4) as gpu:
        local = routed_settings(
            settings.model_copy(update={"database_url": postgres_url}),
            {"gpu-a": gpu.base_url},
            capacity=1,
        )
        stores, workers, engines = [], [], []
        for index in range(3):
            engine = make_engine(postgres_url)
            engines.append(engine)
            if index == 0:
                upgrade(engine)
            store = JobStore(engine)
            stores.append(store)
            workers.append(make_worker(local, store, tmp_path, worker_id=f"w{index}"))
        job_ids = [submit(stores[0]) for _ in range(3)]
        busy: list[int] = []
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                busy.append(engine_health(local, held_leases(stores[0]))["gpu-a"]["busy"])
                done.wait(0.02)

        threads = [threading.Thread(target=w.run_once) for w in workers]
        watcher = threading.Thread(target=watch)
        watcher.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        done.set()
        watcher.join()
        assert max(busy) == 1  # one slot, seen taken
        assert engine_health(local, held_leases(stores[0]))["gpu-a"]["busy"] == 0
        jobs = [stores[0].get(job_id) for job_id in job_ids]
        assert all(job.status is JobStatus.COMPLETED for job in jobs), [
            job.error_message for job in jobs
        ]
        assert gpu.creates == 3
        assert gpu.max_active == 1
        for engine in engines:
            engine.dispose()


def test_a_full_engine_passes_the_job_to_the_next(settings, store, tmp_path, gpu_a, gpu_b):
    route = {"gpu-a": gpu_a.base_url, "gpu-b": gpu_b.base_url}
    local = routed_settings(settings, route, capacity=1)
    assert store.try_lock("slot:gpu-a:0", "another-job", 60.0)  # gpu-a's one slot is taken
    job = run(make_worker(local, store, tmp_path), store)
    assert job.status is JobStatus.COMPLETED, job.error_message
    assert job.info["engine"] == "gpu-b"
    assert (gpu_a.creates, gpu_b.creates) == (0, 1)
    assert store.held_locks("slot:") == {"slot:gpu-a:0": "another-job"}  # its own given back


def test_a_claim_passes_over_jobs_whose_engines_are_all_full(
    settings, postgres_url, tmp_path
) -> None:
    """Capacity at claim time: while gpu-a's one slot is busy, a second worker takes the
    next job of another model instead of a veo2 job that could only wait."""
    with FakeVllmOmni(queued_seconds=0.0, generating_seconds=0.6) as gpu:
        local = routed_settings(
            settings.model_copy(update={"database_url": postgres_url}),
            {"gpu-a": gpu.base_url},
            capacity=1,
        )
        engines = [make_engine(postgres_url) for _ in range(2)]
        upgrade(engines[0])
        stores = [JobStore(engine) for engine in engines]
        first, second = (
            make_worker(local, store, tmp_path, worker_id=f"w{n}") for n, store in enumerate(stores)
        )
        running = submit(stores[0])
        waiting = submit(stores[0])
        other = f"{uuid.uuid4()}:google/veo3"
        stores[0].create(
            NewJob(
                id=other,
                model="google/veo3",
                owner="o",
                params={"model": "google/veo3", "prompt": "rain on a tin roof", "duration": 4},
                seed=1,
                credits=1,
                video_token=uuid.uuid4().hex,
            )
        )
        runner = threading.Thread(target=first.run_once)
        runner.start()
        wait_until(lambda: stores[1].held_locks("slot:") != {})
        assert first.engines.full_models() == ["veo2"]
        assert second.run_once()  # it took the other model's job, not the waiting one
        assert stores[1].get(other).status is JobStatus.COMPLETED
        assert stores[1].get(waiting).status is JobStatus.QUEUED
        runner.join(timeout=60)
        assert stores[1].get(running).status is JobStatus.COMPLETED
        assert second.run_once()
        assert stores[1].get(waiting).status is JobStatus.COMPLETED
        assert gpu.max_active == 1
        for engine in engines:
            engine.dispose()
