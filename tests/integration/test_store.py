"""The job store on a real SQLite database: claiming, leases, attempts, ownership."""

from __future__ import annotations

import threading
import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from reelforge.errors import ServiceUnavailable
from reelforge.jobs import JobStatus, JobStore
from reelforge.jobs.db import current_revision, ensure_schema, head_revision, make_engine
from reelforge.jobs.models import Base

pytestmark = pytest.mark.integration
LEASE = 30.0


def claim(store: JobStore, worker: str = "w1", attempts: int = 3):
    return store.claim(worker, lease_seconds=LEASE, max_attempts=attempts)


def test_create_and_get(store, job_factory) -> None:
    job_id = job_factory(owner="alice")
    job = store.get(job_id)
    assert job.status is JobStatus.QUEUED and job.owner == "alice" and job.attempts == 0
    assert store.get("missing:veo2") is None


def test_claim_oldest_first_and_marks_generating(store, job_factory) -> None:
    first, second = job_factory(), job_factory()
    job = claim(store)
    assert job.id == first and job.status is JobStatus.GENERATING
    assert job.attempts == 1 and job.worker_id == "w1" and job.started_at is not None
    assert claim(store, "w2").id == second
    assert claim(store, "w3") is None


def test_concurrent_claims_never_share_a_job(store, job_factory) -> None:
    created = {job_factory() for _ in range(40)}
    claimed: list[str] = []
    lock = threading.Lock()

    def run(name: str) -> None:
        while (job := claim(store, name)) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=run, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(created)


def test_expired_lease_is_claimed_again_until_attempts_run_out(store, job_factory, clock) -> None:
    job_id = job_factory()
    assert claim(store, "w1").id == job_id
    assert claim(store, "w2") is None  # lease still held
    clock.advance(LEASE + 1)
    again = claim(store, "w2")
    assert again.id == job_id and again.attempts == 2
    assert not store.complete(job_id, "w1", video_key="k", video_size=1)  # w1 lost it
    clock.advance(LEASE + 1)
    assert claim(store, "w3").attempts == 3
    clock.advance(LEASE + 1)
    assert claim(store, "w4") is None
    failed = store.get(job_id)
    assert failed.status is JobStatus.ERROR and failed.error_name == "WorkerCrashed"
    assert "3 times" in failed.error_message


def test_heartbeat_extends_lease_and_records_progress(store, job_factory, clock) -> None:
    job_id = job_factory()
    claim(store)
    clock.advance(LEASE - 1)
    assert store.heartbeat(job_id, "w1", lease_seconds=LEASE, progress=0.5, stage="rendering")
    clock.advance(LEASE - 1)
    assert claim(store, "w2") is None
    job = store.get(job_id)
    assert job.progress == 0.5 and job.stage == "rendering"
    assert not store.heartbeat(job_id, "intruder", lease_seconds=LEASE)


def test_finished_jobs_are_never_run_again(store, job_factory, clock) -> None:
    done, failed = job_factory(), job_factory()
    claim(store, "w1")
    claim(store, "w2")
    assert store.complete(done, "w1", video_key="videos/t/output.mp4", video_size=10)
    assert store.fail(failed, "w2", name="InvalidImage", message="bad")
    clock.advance(10 * LEASE)
    assert claim(store, "w3") is None
    assert store.get(done).status is JobStatus.COMPLETED
    assert store.get(done).video_size == 10
    assert not store.fail(done, "w1", name="x", message="y")
    assert not store.complete(failed, "w2", video_key="k", video_size=1)
    assert store.get(failed).error_message == "bad"


def test_release_hands_job_back_without_counting(store, job_factory) -> None:
    job_id = job_factory()
    claim(store)
    assert store.release(job_id, "w1")
    job = store.get(job_id)
    assert job.status is JobStatus.QUEUED and job.attempts == 0 and job.worker_id is None
    assert claim(store, "w2").attempts == 1


def test_expire_leases_of_dead_workers(store, job_factory) -> None:
    alive, dead = job_factory(), job_factory()
    claim(store, "alive-worker")
    claim(store, "dead-worker")
    assert store.expire_leases(lambda worker: worker == "dead-worker") == 1
    reclaimed = claim(store, "w3")
    assert reclaimed.id == dead and reclaimed.attempts == 2
    assert store.get(alive).worker_id == "alive-worker"


def test_count_by_status(store, job_factory) -> None:
    job_factory()
    job_factory()
    claim(store)
    assert store.count_by_status() == {"queued": 1, "generating": 1, "completed": 0, "error": 0}


def test_migrations_match_models(db_engine) -> None:
    with db_engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert compare_metadata(context, Base.metadata) == []
    assert current_revision(db_engine) == head_revision(db_engine)


def test_outdated_schema_is_refused_unless_migrating(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    with pytest.raises(ServiceUnavailable, match="reelforge db upgrade"):
        ensure_schema(engine, auto_migrate=False)
    ensure_schema(engine, auto_migrate=True)
    assert current_revision(engine) == head_revision(engine)


def test_keys_are_hashed_and_revocable(keys, db_engine) -> None:
    record, secret = keys.create("ci")
    assert secret.startswith("rf_") and len(secret) > 40
    assert keys.authenticate(secret).owner == record.id
    assert keys.authenticate("static-key").owner.startswith("env:")
    assert keys.authenticate("wrong") is None
    with db_engine.connect() as connection:
        dump = "\n".join(str(row) for row in connection.exec_driver_sql("SELECT * FROM api_keys"))
    assert secret not in dump and secret[12:] not in dump
    keys.revoke(record.id)
    assert keys.authenticate(secret) is None
    assert [key.active for key in keys.list()] == [False]


def test_postgres_notifications_cross_processes(postgres_url) -> None:
    """Two stores on separate engines stand for two machines sharing one database."""
    from reelforge.jobs import NewJob
    from reelforge.jobs.db import make_engine, upgrade

    api_side, worker_side = make_engine(postgres_url), make_engine(postgres_url)
    upgrade(api_side)
    api, worker = JobStore(api_side), JobStore(worker_side)
    worker.start_listening()
    api.start_listening()
    try:
        woke = threading.Event()

        def idle_worker() -> None:
            worker.wait_for_work(timeout=20)
            woke.set()

        threading.Thread(target=idle_worker, daemon=True).start()
        time.sleep(0.3)
        started = time.monotonic()
        job = api.create(
            NewJob(
                id="n1:veo2",
                model="veo2",
                owner="o",
                params={},
                seed=1,
                credits=1,
                video_token="t",
            )
        )
        assert woke.wait(5), "the idle worker was not woken by the new job"
        print(f"cross-process wake-up after {(time.monotonic() - started) * 1000:.0f} ms")

        changed = threading.Event()
        unwatch = api.watch(job.id, changed.set)
        claimed = worker.claim("w1", lease_seconds=30, max_attempts=3)
        assert claimed.id == job.id
        assert changed.wait(5), "the API side did not hear about the claim"
        unwatch()
    finally:
        worker.stop_listening()
        api.stop_listening()
        api_side.dispose()
        worker_side.dispose()
