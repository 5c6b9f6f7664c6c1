"""The job store on a real SQLite database: claiming, leases, attempts, ownership."""

from __future__ import annotations

import threading
import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from reelforge.errors import ConfigurationError
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
    assert store.get(job_id).status is JobStatus.GENERATING  # until the sweeper comes
    assert store.sweep(max_attempts=3) == 1
    assert store.sweep(max_attempts=3) == 0
    failed = store.get(job_id)
    assert failed.status is JobStatus.ERROR and failed.error_name == "WorkerCrashed"
    assert "3 times" in failed.error_message


def test_heartbeat_extends_lease_and_records_progress(store, job_factory, clock) -> None:
    job_id = job_factory()
    claim(store)
    clock.advance(LEASE - 1)
    beat = store.heartbeat(job_id, "w1", lease_seconds=LEASE, progress=0.5, stage="rendering")
    assert beat.owned and not beat.cancel_requested
    clock.advance(LEASE - 1)
    assert claim(store, "w2") is None
    job = store.get(job_id)
    assert job.progress == 0.5 and job.stage == "rendering"
    assert not store.heartbeat(job_id, "intruder", lease_seconds=LEASE).owned


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


def test_a_cancel_accepted_while_running_wins_over_a_late_result(store, job_factory) -> None:
    job_id = job_factory(owner="alice")
    claim(store)
    asked = store.cancel(job_id, "alice")
    assert asked.status is JobStatus.GENERATING and asked.cancel_requested_at is not None
    # The engine finished before it saw the request: the result is not recorded.
    assert not store.complete(job_id, "w1", video_key="k", video_size=1)
    job = store.get(job_id)
    assert job.status is JobStatus.ERROR and job.error_name == "Cancelled"
    assert job.video_key is None


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
    with pytest.raises(ConfigurationError, match="reelforge db upgrade"):
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


@pytest.fixture(params=["postgresql", "sqlite"])
def shared_database_url(request, postgres_url, tmp_path) -> str:
    return postgres_url if request.param == "postgresql" else f"sqlite:///{tmp_path / 'x.db'}"


def test_job_events_reach_other_processes(shared_database_url) -> None:
    """Two stores on separate engines and hubs stand for two processes sharing a database:
    LISTEN/NOTIFY on PostgreSQL, Unix datagrams beside a SQLite file."""
    from reelforge.jobs import NewJob
    from support import stores_in_two_processes

    with stores_in_two_processes(shared_database_url) as (api, worker):
        heard_new, heard_claim = threading.Event(), threading.Event()
        unwatch_worker = worker.events.watch("n1:veo2", heard_new.set)
        unwatch_api = api.events.watch("n1:veo2", heard_claim.set)
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
        assert heard_new.wait(5), "the worker side did not hear about the new job"
        print(f"cross-process event after {(time.monotonic() - started) * 1000:.1f} ms")
        heard_claim.clear()
        claimed = worker.claim("w1", lease_seconds=30, max_attempts=3)
        assert claimed.id == job.id
        assert heard_claim.wait(5), "the API side did not hear about the claim"
        unwatch_worker()
        unwatch_api()


def test_database_errors_never_carry_sql_parameters(db_engine) -> None:
    """Errors (and so logs) must not show parameters: they hold video tokens."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from reelforge.jobs.db import unavailable

    with pytest.raises(DBAPIError) as info, db_engine.connect() as connection:
        connection.execute(text("SELECT * FROM no_such_table WHERE x = :t"), {"t": "SECRET-TOKEN"})
    assert "SECRET-TOKEN" not in str(info.value)
    mapped = unavailable(info.value)
    assert mapped.status_code == 503 and mapped.retry_after_seconds
    assert "SECRET" not in mapped.message and "SELECT" not in mapped.message


def test_service_secrets_are_made_once_and_shared(db_engine) -> None:
    """Two stores on the database (two processes, two machines) read the same secret."""
    from reelforge.jobs.db import make_engine

    other = make_engine(db_engine.url.render_as_string(hide_password=False))
    try:
        first = JobStore(db_engine).secret("url-signing")
        second = JobStore(other).secret("url-signing")
    finally:
        other.dispose()
    assert first == second and len(first) >= 40
    assert JobStore(db_engine).secret("another") != first
