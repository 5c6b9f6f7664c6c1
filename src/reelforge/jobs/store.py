"""The durable job store: create, read, claim with leases, heartbeat, finish.

Every state change is a single conditional UPDATE, so concurrent API processes and
workers (threads or machines) never double-run or overwrite each other's work:

* ``claim`` picks the oldest claimable job and marks it in one statement (``FOR UPDATE
  SKIP LOCKED`` on PostgreSQL; SQLite serialises writers).
* A claim holds a lease; ``heartbeat`` extends it. A job whose lease ran out (its worker
  died) becomes claimable again, until ``max_attempts`` claims have been used up.
* ``complete``/``fail``/``release`` only succeed for the worker that still holds the job,
  and never touch a finished job.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from reelforge.jobs.models import JobRow, JobStatus, utcnow
from reelforge.jobs.notify import CHANNEL, NEW_WORK, PgListener, job_payload

CRASHED_NAME = "WorkerCrashed"


@dataclass(frozen=True)
class JobRecord:
    """A snapshot of one job, detached from any database session."""

    id: str
    model: str
    owner: str
    status: JobStatus
    params: dict[str, Any]
    seed: int
    credits: int
    video_token: str
    progress: float
    stage: str | None
    attempts: int
    worker_id: str | None
    lease_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    video_key: str | None
    video_size: int | None
    error_name: str | None
    error_message: str | None
    info: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    request_hash: str | None = None

    @classmethod
    def from_row(cls, row: JobRow) -> JobRecord:
        values = {name: getattr(row, name) for name in cls.__dataclass_fields__}
        values["status"] = JobStatus(row.status)
        values["info"] = dict(row.info or {})
        return cls(**values)


@dataclass(frozen=True)
class NewJob:
    id: str
    model: str
    owner: str
    params: dict[str, Any]
    seed: int
    credits: int
    video_token: str
    info: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    request_hash: str | None = None


class JobStore:
    """Job persistence on SQLAlchemy (SQLite by default, PostgreSQL when scaled out)."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._clock = clock
        self._changed = threading.Condition()
        self._skip_locked = engine.dialect.name == "postgresql"
        self._watchers: dict[str, set[Callable[[], None]]] = {}
        self._watchers_lock = threading.Lock()
        self._postgres = engine.dialect.name == "postgresql"
        self._listener: PgListener | None = None

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def start_listening(self) -> None:
        """Hear about changes made by other processes (PostgreSQL; SQLite relies on polling)."""
        if self._postgres and self._listener is None:
            self._listener = PgListener(
                self.engine, on_new_work=self.wake_all, on_job_changed=self._changed_job
            )
            self._listener.start()

    def stop_listening(self) -> None:
        if self._listener is not None:
            self._listener.stop()
            self._listener = None

    def _publish(self, session: Session, *payloads: str) -> None:
        """Tell other processes, on commit of ``session`` (PostgreSQL only)."""
        if self._postgres:
            for payload in payloads:
                session.execute(
                    text("SELECT pg_notify(:channel, :payload)"),
                    {"channel": CHANNEL, "payload": payload},
                )

    def wake_all(self) -> None:
        """Wake workers of this process waiting in :meth:`wait_for_work`."""
        with self._changed:
            self._changed.notify_all()

    def watch(self, job_id: str, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (from any thread) whenever this process changes the job.

        Returns the function that stops watching. Changes made by other processes are not
        seen here; long-polling readers re-read the job periodically for those.
        """
        with self._watchers_lock:
            self._watchers.setdefault(job_id, set()).add(callback)

        def unwatch() -> None:
            with self._watchers_lock:
                callbacks = self._watchers.get(job_id)
                if callbacks is not None:
                    callbacks.discard(callback)
                    if not callbacks:
                        del self._watchers[job_id]

        return unwatch

    def _changed_job(self, job_id: str) -> None:
        with self._watchers_lock:
            callbacks = list(self._watchers.get(job_id, ()))
        for callback in callbacks:
            callback()

    def wait_for_work(self, timeout: float) -> None:
        """Block until a job is created in this process or ``timeout`` seconds pass."""
        with self._changed:
            self._changed.wait(timeout)

    # -- API side -----------------------------------------------------------------

    def create(self, job: NewJob) -> JobRecord:
        """Insert a queued job.

        With an ``idempotency_key`` that this owner already used, nothing is inserted and
        the earlier job is returned instead (its ``id`` differs from ``job.id``).
        """
        if job.idempotency_key is not None:
            existing = self.find_by_idempotency_key(job.owner, job.idempotency_key)
            if existing is not None:
                return existing
        now = self._clock()
        row = JobRow(
            id=job.id,
            model=job.model,
            owner=job.owner,
            status=JobStatus.QUEUED,
            params=job.params,
            seed=job.seed,
            credits=job.credits,
            video_token=job.video_token,
            progress=0.0,
            attempts=0,
            created_at=now,
            updated_at=now,
            info=job.info,
            idempotency_key=job.idempotency_key,
            request_hash=job.request_hash,
        )
        try:
            with self._session() as session:
                session.add(row)
                session.flush()
                record = JobRecord.from_row(row)
                self._publish(session, NEW_WORK)
        except IntegrityError:
            # Two concurrent creates with one key: the other one won.
            if job.idempotency_key is None:
                raise
            existing = self.find_by_idempotency_key(job.owner, job.idempotency_key)
            if existing is None:
                raise
            return existing
        self.wake_all()
        return record

    def find_by_idempotency_key(self, owner: str, key: str) -> JobRecord | None:
        with self._session() as session:
            row = session.scalar(
                select(JobRow).where(JobRow.owner == owner, JobRow.idempotency_key == key)
            )
            return JobRecord.from_row(row) if row else None

    def get(self, job_id: str) -> JobRecord | None:
        with self._session() as session:
            row = session.get(JobRow, job_id)
            return JobRecord.from_row(row) if row else None

    def count_by_status(self) -> dict[str, int]:
        with self._session() as session:
            rows = session.execute(select(JobRow.status, func.count()).group_by(JobRow.status))
            counts = {status.value: 0 for status in JobStatus}
            counts.update({status: count for status, count in rows})
            return counts

    # -- worker side --------------------------------------------------------------

    def claim(self, worker_id: str, *, lease_seconds: float, max_attempts: int) -> JobRecord | None:
        """Take the oldest runnable job, or ``None``; jobs out of attempts end in error."""
        now = self._clock()
        self._fail_exhausted(now, max_attempts)
        claimable = or_(
            JobRow.status == JobStatus.QUEUED,
            and_(
                JobRow.status == JobStatus.GENERATING,
                JobRow.lease_expires_at < now,
                JobRow.attempts < max_attempts,
            ),
        )
        candidate = select(JobRow.id).where(claimable).order_by(JobRow.created_at).limit(1)
        if self._skip_locked:
            candidate = candidate.with_for_update(skip_locked=True)
        statement = (
            update(JobRow)
            .where(JobRow.id == candidate.scalar_subquery())
            .where(claimable)
            .values(
                status=JobStatus.GENERATING,
                worker_id=worker_id,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                attempts=JobRow.attempts + 1,
                started_at=func.coalesce(JobRow.started_at, now),
                updated_at=now,
                stage="starting",
            )
            .returning(JobRow)
            .execution_options(synchronize_session=False)
        )
        with self._session() as session:
            row = session.execute(statement).scalars().first()
            record = JobRecord.from_row(row) if row else None
            if record is not None:
                self._publish(session, job_payload(record.id))
        if record is not None:
            self._changed_job(record.id)
        return record

    def _fail_exhausted(self, now: datetime, max_attempts: int) -> None:
        statement = (
            update(JobRow)
            .where(
                JobRow.status == JobStatus.GENERATING,
                JobRow.lease_expires_at < now,
                JobRow.attempts >= max_attempts,
            )
            .values(
                status=JobStatus.ERROR,
                error_name=CRASHED_NAME,
                error_message=(
                    f"the generation was interrupted {max_attempts} times (its worker stopped "
                    "responding each time) and was given up; submit it again, and if this "
                    "repeats, tell the operator"
                ),
                worker_id=None,
                lease_expires_at=None,
                completed_at=now,
                updated_at=now,
            )
            .returning(JobRow.id)
        )
        with self._session() as session:
            given_up = list(session.execute(statement).scalars())
            self._publish(session, *(job_payload(job_id) for job_id in given_up))
        for job_id in given_up:
            self._changed_job(job_id)

    def _owned(self, job_id: str, worker_id: str) -> Any:
        return and_(
            JobRow.id == job_id,
            JobRow.worker_id == worker_id,
            JobRow.status == JobStatus.GENERATING,
        )

    def heartbeat(
        self,
        job_id: str,
        worker_id: str,
        *,
        lease_seconds: float,
        progress: float | None = None,
        stage: str | None = None,
    ) -> bool:
        """Extend the lease (and record progress); ``False`` if the job is no longer ours."""
        now = self._clock()
        values: dict[str, Any] = {
            "lease_expires_at": now + timedelta(seconds=lease_seconds),
            "updated_at": now,
        }
        if progress is not None:
            values["progress"] = max(0.0, min(1.0, progress))
        if stage is not None:
            values["stage"] = stage
        with self._session() as session:
            result = session.execute(
                update(JobRow).where(self._owned(job_id, worker_id)).values(**values)
            )
            owned = result.rowcount == 1
            if owned and (progress is not None or stage is not None):
                self._publish(session, job_payload(job_id))
        if owned and (progress is not None or stage is not None):
            self._changed_job(job_id)
        return owned

    def complete(
        self,
        job_id: str,
        worker_id: str,
        *,
        video_key: str,
        video_size: int,
        info: dict[str, Any] | None = None,
        credits: int | None = None,
    ) -> bool:
        """Mark done; call only after the video is stored, so ``completed`` implies a file.

        ``credits`` replaces the price quoted at submit time (upstreams report their own).
        """
        values: dict[str, Any] = {
            "status": JobStatus.COMPLETED,
            "video_key": video_key,
            "video_size": video_size,
            "progress": 1.0,
        }
        if credits is not None:
            values["credits"] = max(0, credits)
        return self._finish(job_id, worker_id, values, info)

    def save_engine_state(self, job_id: str, worker_id: str, state: Mapping[str, Any]) -> bool:
        """Remember an engine's resume state with a job this worker owns."""
        with self._session() as session:
            row = session.get(JobRow, job_id)
            if row is None:
                return False
            info = {**(row.info or {}), "engine_state": dict(state)}
            result = session.execute(
                update(JobRow).where(self._owned(job_id, worker_id)).values(info=info)
            )
            return result.rowcount == 1

    def fail(
        self,
        job_id: str,
        worker_id: str,
        *,
        name: str,
        message: str,
        info: dict[str, Any] | None = None,
    ) -> bool:
        values = {"status": JobStatus.ERROR, "error_name": name, "error_message": message}
        return self._finish(job_id, worker_id, values, info)

    def _finish(
        self, job_id: str, worker_id: str, values: dict[str, Any], info: dict[str, Any] | None
    ) -> bool:
        """Move a job the worker still owns to a final state; ``False`` if it lost the job."""
        now = self._clock()
        values = {
            **values,
            "stage": None,
            "worker_id": None,
            "lease_expires_at": None,
            "completed_at": now,
            "updated_at": now,
        }
        with self._session() as session:
            if info:
                row = session.get(JobRow, job_id)
                if row is not None:
                    values["info"] = {**(row.info or {}), **info}
            result = session.execute(
                update(JobRow).where(self._owned(job_id, worker_id)).values(**values)
            )
            finished = result.rowcount == 1
            if finished:
                self._publish(session, job_payload(job_id))
        if finished:
            self._changed_job(job_id)
        return finished

    def release(self, job_id: str, worker_id: str) -> bool:
        """Hand a job back untouched (graceful shutdown); the claim does not count."""
        now = self._clock()
        values = {
            "status": JobStatus.QUEUED,
            "worker_id": None,
            "lease_expires_at": None,
            "attempts": JobRow.attempts - 1,
            "progress": 0.0,
            "stage": None,
            "updated_at": now,
        }
        with self._session() as session:
            result = session.execute(
                update(JobRow).where(self._owned(job_id, worker_id)).values(**values)
            )
            released = result.rowcount == 1
            if released:
                self._publish(session, NEW_WORK, job_payload(job_id))
        if released:
            self._changed_job(job_id)
            self.wake_all()
        return released

    def expire_leases(self, is_dead: Callable[[str], bool]) -> int:
        """End the leases of running jobs whose worker ``is_dead`` says is gone.

        Used at start-up for workers on this same machine: a job whose process no longer
        exists can run again at once instead of after its lease runs out.
        """
        now = self._clock()
        with self._session() as session:
            running = session.execute(
                select(JobRow.id, JobRow.worker_id).where(
                    JobRow.status == JobStatus.GENERATING, JobRow.lease_expires_at >= now
                )
            ).all()
            dead = [job_id for job_id, worker in running if worker and is_dead(worker)]
            if dead:
                session.execute(
                    update(JobRow)
                    .where(JobRow.id.in_(dead), JobRow.status == JobStatus.GENERATING)
                    .values(lease_expires_at=now - timedelta(seconds=1), updated_at=now)
                )
                self._publish(session, NEW_WORK)
        if dead:
            self.wake_all()
        return len(dead)
