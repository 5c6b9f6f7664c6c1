"""The durable job store: create, read, list, claim with leases, heartbeat, finish.

Every state change is a single conditional UPDATE, so concurrent API processes and
workers (threads or machines) never double-run or overwrite each other's work:

* ``claim`` picks the oldest claimable job and marks it in one statement (``FOR UPDATE
  SKIP LOCKED`` on PostgreSQL; SQLite serialises writers).
* A claim holds a lease; ``heartbeat`` extends it. A job whose lease ran out (its worker
  died) becomes claimable again, until ``max_attempts`` claims have been used up.
* ``complete``/``fail``/``release`` only succeed for the worker that still holds the job,
  and never touch a finished job.
* ``sweep`` ends jobs whose attempts are used up; workers run it on a timer.
* ``cancel`` ends a job that has not started at once, and asks the worker of a running
  one to stop (it hears of it at its next heartbeat); ``delete`` removes the record.

Every change a client can see bumps the job's ``revision``. Every move to a final state
goes through ``_finalized``, which records the job's webhook delivery in the same
transaction (``outbox.enqueue``).

The store only records changes. Every method names the events its change causes, and
one hook (``_transaction``) hands them to the ``EventHub`` around the commit; who hears
about them, in this process or another, is ``jobs.events``' business.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Engine, and_, delete, func, literal, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, sessionmaker

from reelforge.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
)
from reelforge.jobs import outbox, quotas
from reelforge.jobs.events import NEW_WORK, WEBHOOK_WORK, EventHub, job_payload
from reelforge.jobs.models import ApiKeyRow, JobRow, JobStatus, KeyUsageRow, LockRow, utcnow
from reelforge.jobs.quotas import Admission
from reelforge.jobs.secrets import service_secret

CRASHED_NAME = "WorkerCrashed"
CANCELLED_NAME = "Cancelled"
CANCELLED_MESSAGE = "the generation was cancelled"


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
    revision: int = 0
    cancel_requested_at: datetime | None = None
    webhook_url: str | None = None
    credits_reserved: int = 0
    video_expired_at: datetime | None = None

    @classmethod
    def from_row(cls, row: JobRow) -> JobRecord:
        values = {name: getattr(row, name) for name in cls.__dataclass_fields__}
        values["status"] = JobStatus(row.status)
        values["info"] = dict(row.info or {})
        values["revision"] = row.revision or 0
        values["credits_reserved"] = row.credits_reserved or 0
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
    webhook_url: str | None = None


@dataclass(frozen=True)
class Heartbeat:
    owned: bool
    """False once the job is no longer this worker's (lease lost, deleted)."""
    cancel_requested: bool
    """The user asked to cancel the job: stop it."""


class Page(NamedTuple):
    jobs: list[JobRecord]
    has_more: bool
    next_cursor: str | None


@dataclass
class _Transaction:
    """A session plus the events its changes cause (published around the commit)."""

    session: Session
    events: list[str] = field(default_factory=list)

    def emit(self, *payloads: str) -> None:
        self.events.extend(payloads)


_FINAL_FIELDS = (
    JobRow.id,
    JobRow.owner,
    JobRow.status,
    JobRow.webhook_url,
    JobRow.info,
    JobRow.credits,
    JobRow.credits_reserved,
)
"""What ``_finalized`` needs of each job an UPDATE moved to a final state."""


def encode_cursor(job: JobRecord) -> str:
    raw = json.dumps([job.created_at.isoformat(), job.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, job_id = json.loads(raw)
        return datetime.fromisoformat(created), str(job_id)
    except (binascii.Error, ValueError, TypeError) as error:
        raise InvalidRequest(
            "Query validation error: after: not a cursor this service returned", "after"
        ) from error


class JobStore:
    """Job persistence on SQLAlchemy (SQLite by default, PostgreSQL when scaled out)."""

    def __init__(
        self,
        engine: Engine,
        *,
        events: EventHub | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._clock = clock
        self._dialect = engine.dialect.name
        self._skip_locked = self._dialect == "postgresql"
        self.events = events or EventHub()
        self.outbox = outbox.WebhookOutbox(engine, self.events, clock=clock)

    def now(self) -> datetime:
        """The store's clock (the tests' can be moved)."""
        return self._clock()

    def secret(self, name: str) -> str:
        """A secret every process of the service shares (``jobs.secrets``)."""
        return service_secret(self._engine, name)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        """A read (or a write that nobody needs to hear about)."""
        with self._sessions.begin() as session:
            yield session

    @contextmanager
    def _transaction(self) -> Iterator[_Transaction]:
        """A write: its events go out inside the transaction and after the commit."""
        with self._sessions.begin() as session:
            transaction = _Transaction(session)
            yield transaction
            self.events.in_transaction(session, transaction.events)
        self.events.after_commit(transaction.events)

    def _finalized(self, tx: _Transaction, now: datetime, rows: Iterable[Any]) -> list[str]:
        """Settle the credits of jobs just moved to a final state (charged if completed,
        released otherwise) and record their webhook deliveries; their ids."""
        ids = []
        for job_id, owner, status, webhook_url, info, credits, reserved in rows:
            ids.append(job_id)
            tx.emit(job_payload(job_id))
            charged = credits if status == JobStatus.COMPLETED else 0
            quotas.settle(tx.session, job_id, owner, reserved or 0, max(0, charged or 0))
            if webhook_url:
                flavour = (info or {}).get("api", "aimlapi")
                queued = outbox.enqueue(
                    tx.session,
                    now,
                    job_id=job_id,
                    owner=owner,
                    url=webhook_url,
                    status=JobStatus(status),
                    flavour=flavour,
                )
                if queued is not None:
                    tx.emit(WEBHOOK_WORK)
        return ids

    # -- API side -----------------------------------------------------------------

    def create(self, job: NewJob, admission: Admission | None = None) -> JobRecord:
        """Insert a queued job, holding its price from the owner's balance.

        Over a cap or the balance it raises (``RateLimited``, ``ServiceUnavailable``,
        ``Forbidden``) and inserts nothing. With an ``idempotency_key`` that this owner
        already used, nothing is inserted and the earlier job is returned instead (its
        ``id`` differs from ``job.id``).
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
            revision=0,
            webhook_url=job.webhook_url,
            credits_reserved=job.credits,
        )
        try:
            with self._transaction() as tx:
                usage = quotas.lock_owner(tx.session, job.owner)
                quotas.admit(tx.session, job.owner, job.credits, admission or Admission(), usage)
                quotas.join_fairly(tx.session, job.owner, usage)
                usage.reserved += job.credits
                tx.session.add(row)
                tx.session.flush()
                record = JobRecord.from_row(row)
                tx.emit(NEW_WORK, job_payload(record.id))
        except IntegrityError:
            # Two concurrent creates with one key: the other one won.
            if job.idempotency_key is None:
                raise
            existing = self.find_by_idempotency_key(job.owner, job.idempotency_key)
            if existing is None:
                raise
            return existing
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

    def get_many(self, job_ids: Iterable[str]) -> dict[str, JobRecord]:
        """The jobs that exist among ``job_ids``, in one query (for watchers)."""
        wanted = list(job_ids)
        if not wanted:
            return {}
        with self._session() as session:
            rows = session.scalars(select(JobRow).where(JobRow.id.in_(wanted)))
            return {row.id: JobRecord.from_row(row) for row in rows}

    def list(
        self,
        owner: str,
        *,
        limit: int,
        after: str | None = None,
        statuses: Iterable[JobStatus] = (),
        models: Iterable[str] = (),
        oldest_first: bool = False,
    ) -> Page:
        """The owner's jobs, newest first (or oldest first), ``limit`` at a time;
        ``after`` is the ``next_cursor`` of the previous page."""
        query = select(JobRow).where(JobRow.owner == owner)
        if statuses := list(statuses):
            query = query.where(JobRow.status.in_([status.value for status in statuses]))
        if models := list(models):
            query = query.where(JobRow.model.in_(models))
        if after:
            created, job_id = decode_cursor(after)
            position = tuple_(JobRow.created_at, JobRow.id)
            query = query.where(
                position > (created, job_id) if oldest_first else position < (created, job_id)
            )
        order = (JobRow.created_at, JobRow.id)
        if not oldest_first:
            order = (JobRow.created_at.desc(), JobRow.id.desc())
        query = query.order_by(*order).limit(limit + 1)
        with self._session() as session:
            jobs = [JobRecord.from_row(row) for row in session.scalars(query)]
        has_more = len(jobs) > limit
        jobs = jobs[:limit]
        return Page(jobs, has_more, encode_cursor(jobs[-1]) if has_more and jobs else None)

    def count_by_status(self) -> dict[str, int]:
        with self._session() as session:
            rows = session.execute(select(JobRow.status, func.count()).group_by(JobRow.status))
            counts = {status.value: 0 for status in JobStatus}
            counts.update({status: count for status, count in rows})
            return counts

    def cancel(self, job_id: str, owner: str) -> JobRecord:
        """Cancel the owner's job: a queued job (or one whose worker is gone) ends now;
        a running one is asked to stop. ``NotFound``; ``Conflict`` when it is finished."""
        now = self._clock()
        mine = and_(JobRow.id == job_id, JobRow.owner == owner)
        not_running = or_(
            JobRow.status == JobStatus.QUEUED,
            and_(JobRow.status == JobStatus.GENERATING, JobRow.lease_expires_at < now),
        )
        asked = None
        with self._transaction() as tx:
            ended = tx.session.execute(
                update(JobRow)
                .where(mine, not_running)
                .values(**self._final_values(now, JobStatus.ERROR), **_cancelled())
                .returning(*_FINAL_FIELDS)
            ).all()
            if ended:
                self._finalized(tx, now, ended)
            else:
                asked = tx.session.execute(
                    update(JobRow)
                    .where(mine, JobRow.status == JobStatus.GENERATING)
                    .values(
                        cancel_requested_at=func.coalesce(JobRow.cancel_requested_at, now),
                        updated_at=now,
                        revision=JobRow.revision + 1,
                    )
                    .returning(JobRow.id)
                ).first()
                if asked is not None:
                    tx.emit(job_payload(job_id))
        job = self.get(job_id)
        if job is None or job.owner != owner:
            raise NotFound(f"Generation {job_id} not found")
        if not ended and not asked:
            raise Conflict(
                f"Generation {job_id} is already {job.status.value}; only queued or "
                "generating generations can be cancelled"
            )
        return job

    def delete(self, job_id: str, owner: str) -> JobRecord:
        """Remove the owner's job record (a running job's worker loses it at its next
        heartbeat); the caller removes its files. ``NotFound`` if there is none."""
        with self._transaction() as tx:
            row = tx.session.execute(
                delete(JobRow)
                .where(JobRow.id == job_id, JobRow.owner == owner)
                .returning(JobRow)
                .execution_options(synchronize_session=False)
            ).scalar_one_or_none()
            if row is None:
                raise NotFound(f"Generation {job_id} not found")
            record = JobRecord.from_row(row)
            quotas.settle(tx.session, job_id, owner, record.credits_reserved, 0)
            outbox.drop_pending(tx.session, [job_id])
            tx.emit(job_payload(job_id))
        return record

    # -- worker side --------------------------------------------------------------

    def claim(
        self,
        worker_id: str,
        *,
        lease_seconds: float,
        max_attempts: int,
        models: Iterable[str] = (),
        default_max_running: int | None = None,
        skip_models: Iterable[str] = (),
    ) -> JobRecord | None:
        """Take the next runnable job fairly, or ``None``.

        Fair: among owners with runnable jobs and room under their ``max_running``
        (the key's, else ``default_max_running``), the one with the lowest virtual time
        goes next, its oldest job first; each claim advances the owner's virtual time by
        ``1 / priority``. A key with a long backlog therefore takes turns with every
        other key instead of starving it. ``models`` (if given) are the only models this
        worker makes; ``skip_models`` are left queued this time (every engine of their
        route is at capacity). A job whose lease ran out is runnable again while it has attempts
        left and was not cancelled; ``sweep`` ends the others.
        """
        now = self._clock()
        claimable = or_(
            JobRow.status == JobStatus.QUEUED,
            and_(
                JobRow.status == JobStatus.GENERATING,
                JobRow.lease_expires_at < now,
                JobRow.attempts < max_attempts,
                JobRow.cancel_requested_at.is_(None),
            ),
        )
        conditions = [claimable]
        if models := list(models):
            conditions.append(JobRow.model.in_(models))
        if skipped := list(skip_models):
            conditions.append(JobRow.model.notin_(skipped))
        running = aliased(JobRow)
        running_now = (
            select(func.count())
            .select_from(running)
            .where(
                running.owner == JobRow.owner,
                running.status == JobStatus.GENERATING,
                running.lease_expires_at >= now,
            )
            .scalar_subquery()
        )
        cap = ApiKeyRow.max_running
        if default_max_running is not None:
            cap = func.coalesce(ApiKeyRow.max_running, literal(default_max_running))
        conditions.append(or_(cap.is_(None), running_now < cap))
        candidate = (
            select(JobRow.id)
            .outerjoin(KeyUsageRow, KeyUsageRow.owner == JobRow.owner)
            .outerjoin(ApiKeyRow, ApiKeyRow.id == JobRow.owner)
            .where(*conditions)
            .order_by(func.coalesce(KeyUsageRow.virtual_time, 0.0), JobRow.created_at)
            .limit(1)
        )
        if self._skip_locked:
            candidate = candidate.with_for_update(of=JobRow, skip_locked=True)
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
                revision=JobRow.revision + 1,
            )
            .returning(JobRow)
            .execution_options(synchronize_session=False)
        )
        with self._transaction() as tx:
            row = tx.session.execute(statement).scalars().first()
            record = JobRecord.from_row(row) if row else None
            if record is not None:
                weight = (
                    select(func.coalesce(ApiKeyRow.priority, 1))
                    .where(ApiKeyRow.id == record.owner)
                    .scalar_subquery()
                )
                tx.session.execute(
                    update(KeyUsageRow)
                    .where(KeyUsageRow.owner == record.owner)
                    .values(virtual_time=KeyUsageRow.virtual_time + 1.0 / func.coalesce(weight, 1))
                )
                tx.emit(job_payload(record.id))
        return record

    def sweep(self, max_attempts: int) -> int:
        """End in ``error`` every job whose worker stopped responding ``max_attempts``
        times, or was cancelled while its worker was gone; returns how many.
        Idempotent, so any number of workers may run it."""
        now = self._clock()
        abandoned = and_(JobRow.status == JobStatus.GENERATING, JobRow.lease_expires_at < now)
        crashed = (
            update(JobRow)
            .where(abandoned, JobRow.attempts >= max_attempts, JobRow.cancel_requested_at.is_(None))
            .values(
                **self._final_values(now, JobStatus.ERROR),
                error_name=CRASHED_NAME,
                error_message=(
                    f"the generation was interrupted {max_attempts} times (its worker stopped "
                    "responding each time) and was given up; submit it again, and if this "
                    "repeats, tell the operator"
                ),
            )
            .returning(*_FINAL_FIELDS)
        )
        cancelled = (
            update(JobRow)
            .where(abandoned, JobRow.cancel_requested_at.is_not(None))
            .values(**self._final_values(now, JobStatus.ERROR), **_cancelled())
            .returning(*_FINAL_FIELDS)
        )
        with self._transaction() as tx:
            ended = self._finalized(tx, now, tx.session.execute(crashed).all())
            ended += self._finalized(tx, now, tx.session.execute(cancelled).all())
        return len(ended)

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
    ) -> Heartbeat:
        """Extend the lease (and record progress); says whether the job is still ours
        and whether its user asked to cancel it."""
        now = self._clock()
        values: dict[str, Any] = {
            "lease_expires_at": now + timedelta(seconds=lease_seconds),
            "updated_at": now,
        }
        changed = progress is not None or stage is not None
        if progress is not None:
            values["progress"] = max(0.0, min(1.0, progress))
        if stage is not None:
            values["stage"] = stage
        if changed:
            values["revision"] = JobRow.revision + 1
        with self._transaction() as tx:
            row = tx.session.execute(
                update(JobRow)
                .where(self._owned(job_id, worker_id))
                .values(**values)
                .returning(JobRow.cancel_requested_at)
            ).first()
            if row is not None and changed:
                tx.emit(job_payload(job_id))
        if row is None:
            return Heartbeat(owned=False, cancel_requested=False)
        return Heartbeat(owned=True, cancel_requested=row[0] is not None)

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
        A cancel that was accepted while the job ran wins over a result that arrives
        after it: the job ends ``Cancelled`` (and ``False`` is returned), so a 200 on
        cancel always means the generation ends cancelled.
        """
        values: dict[str, Any] = {
            "video_key": video_key,
            "video_size": video_size,
            "progress": 1.0,
        }
        if credits is not None:
            values["credits"] = max(0, credits)
        return self._finish(job_id, worker_id, JobStatus.COMPLETED, values, info)

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
        values = {"error_name": name, "error_message": message}
        return self._finish(job_id, worker_id, JobStatus.ERROR, values, info)

    def _final_values(self, now: datetime, status: JobStatus) -> dict[str, Any]:
        return {
            "status": status,
            "stage": None,
            "worker_id": None,
            "lease_expires_at": None,
            "completed_at": now,
            "updated_at": now,
            "revision": JobRow.revision + 1,
        }

    def _finish(
        self,
        job_id: str,
        worker_id: str,
        status: JobStatus,
        values: dict[str, Any],
        info: dict[str, Any] | None,
    ) -> bool:
        """Move a job the worker still owns to a final state; ``False`` if it lost the job."""
        now = self._clock()
        values = {**values, **self._final_values(now, status)}
        with self._transaction() as tx:
            if info:
                row = tx.session.get(JobRow, job_id)
                if row is not None:
                    values["info"] = {**(row.info or {}), **info}
            owned = self._owned(job_id, worker_id)
            if status is JobStatus.COMPLETED:
                owned = and_(owned, JobRow.cancel_requested_at.is_(None))
            ended = tx.session.execute(
                update(JobRow).where(owned).values(**values).returning(*_FINAL_FIELDS)
            ).all()
            if not ended and status is JobStatus.COMPLETED:
                cancelled = tx.session.execute(
                    update(JobRow)
                    .where(self._owned(job_id, worker_id))
                    .values(**self._final_values(now, JobStatus.ERROR), **_cancelled())
                    .returning(*_FINAL_FIELDS)
                ).all()
                self._finalized(tx, now, cancelled)
            self._finalized(tx, now, ended)
        return bool(ended)

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
            "revision": JobRow.revision + 1,
        }
        with self._transaction() as tx:
            result = tx.session.execute(
                update(JobRow).where(self._owned(job_id, worker_id)).values(**values)
            )
            released = result.rowcount == 1
            if released:
                tx.emit(NEW_WORK, job_payload(job_id))
        return released

    # -- retention -------------------------------------------------------------------

    def try_lock(self, name: str, holder: str, seconds: float) -> bool:
        """Hold the named lease for ``seconds`` (renewing it if ``holder`` has it);
        ``False`` while somebody else holds it."""
        now = self._clock()
        with self._session() as session:
            session.execute(
                quotas.dialect_insert(session, LockRow.__table__)
                .values(name=name, holder=holder, expires_at=now - timedelta(seconds=1))
                .on_conflict_do_nothing(index_elements=["name"])
            )
            taken = session.execute(
                update(LockRow)
                .where(
                    LockRow.name == name,
                    or_(LockRow.holder == holder, LockRow.expires_at < now),
                )
                .values(holder=holder, expires_at=now + timedelta(seconds=seconds))
            )
            return taken.rowcount == 1

    def unlock(self, name: str, holder: str) -> bool:
        """End ``holder``'s lease ``name`` at once; ``False`` if it did not hold it."""
        with self._session() as session:
            ended = session.execute(
                update(LockRow)
                .where(LockRow.name == name, LockRow.holder == holder)
                .values(expires_at=self._clock() - timedelta(seconds=1))
            )
            return ended.rowcount == 1

    def held_locks(self, prefix: str) -> dict[str, str]:
        """Leases now held whose names start with ``prefix``: name -> holder."""
        now = self._clock()
        with self._session() as session:
            rows = session.execute(
                select(LockRow.name, LockRow.holder).where(
                    LockRow.name.startswith(prefix), LockRow.expires_at >= now
                )
            )
            return {name: holder for name, holder in rows}

    def lock_holder(self, name: str) -> str | None:
        """Who holds the named lease now (None when nobody does)."""
        with self._session() as session:
            return session.scalar(
                select(LockRow.holder).where(
                    LockRow.name == name, LockRow.expires_at >= self._clock()
                )
            )

    def expired_videos(self, completed_before: datetime, limit: int) -> list[JobRecord]:
        """Completed jobs whose videos are past retention and not yet deleted."""
        with self._session() as session:
            rows = session.scalars(
                select(JobRow)
                .where(
                    JobRow.status == JobStatus.COMPLETED,
                    JobRow.completed_at < completed_before,
                    JobRow.video_expired_at.is_(None),
                )
                .order_by(JobRow.completed_at)
                .limit(limit)
            )
            return [JobRecord.from_row(row) for row in rows]

    def mark_video_expired(self, job_ids: list[str]) -> None:
        """Record that these jobs' videos were deleted (their URLs now answer 410)."""
        if not job_ids:
            return
        now = self._clock()
        with self._transaction() as tx:
            tx.session.execute(
                update(JobRow)
                .where(JobRow.id.in_(job_ids))
                .values(video_expired_at=now, updated_at=now, revision=JobRow.revision + 1)
            )
            tx.emit(*(job_payload(job_id) for job_id in job_ids))

    def video_tokens_in_use(self, tokens: list[str]) -> set[str]:
        """Those of ``tokens`` whose files must stay: their job is queued, running, or
        completed and not past retention (the orphan sweep removes the rest)."""
        if not tokens:
            return set()
        with self._session() as session:
            rows = session.execute(
                select(JobRow.video_token, JobRow.status, JobRow.video_expired_at).where(
                    JobRow.video_token.in_(tokens)
                )
            ).all()
        return {
            token
            for token, status, expired in rows
            if JobStatus(status) is not JobStatus.ERROR and expired is None
        }

    def find_by_video_token(self, token: str) -> JobRecord | None:
        with self._session() as session:
            row = session.scalar(select(JobRow).where(JobRow.video_token == token).limit(1))
            return JobRecord.from_row(row) if row else None

    def expire_leases(self, is_dead: Callable[[str], bool]) -> int:
        """End the leases of running jobs whose worker ``is_dead`` says is gone.

        Used at start-up for workers on this same machine: a job whose process no longer
        exists can run again at once instead of after its lease runs out.
        """
        now = self._clock()
        with self._transaction() as tx:
            running = tx.session.execute(
                select(JobRow.id, JobRow.worker_id).where(
                    JobRow.status == JobStatus.GENERATING, JobRow.lease_expires_at >= now
                )
            ).all()
            dead = [job_id for job_id, worker in running if worker and is_dead(worker)]
            if dead:
                tx.session.execute(
                    update(JobRow)
                    .where(JobRow.id.in_(dead), JobRow.status == JobStatus.GENERATING)
                    .values(lease_expires_at=now - timedelta(seconds=1), updated_at=now)
                )
                tx.emit(NEW_WORK)
        return len(dead)


def _cancelled() -> dict[str, Any]:
    return {"error_name": CANCELLED_NAME, "error_message": CANCELLED_MESSAGE}
