"""Caps, credits and fair turns: what a create must respect and what a finished job
settles, as functions on the caller's transaction (the job store's).

Every create locks its owner's ``key_usage`` row first (``lock_owner``), so caps and the
balance hold under concurrent creates from any number of processes: on PostgreSQL the
row lock serialises them, on SQLite the write lock does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, case, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from reelforge.errors import Forbidden, RateLimited, ServiceUnavailable
from reelforge.jobs.models import JobRow, JobStatus, KeyUsageRow

JOIN_AHEAD = 1e-6
"""How far ahead of the current turn a key that was idle joins (less than any turn)."""
SATURATED_RETRY_SECONDS = 5.0
"""``Retry-After`` of a create refused because the whole service is saturated."""


@dataclass(frozen=True)
class Admission:
    """The limits a create must respect (``None``: no limit); checked atomically with the
    insert, under a lock on the owner's ``key_usage`` row."""

    max_queued: int | None = None
    """Generations the owner may have waiting."""
    max_running: int | None = None
    """Only ``0`` matters here (the key may run nothing); claims enforce the rest."""
    service_max_queued: int | None = None
    """Generations the whole service may have waiting."""


def dialect_insert(session: Session, table: Table) -> Any:
    """An INSERT that can ``on_conflict_do_nothing`` on this session's database."""
    if session.get_bind().dialect.name == "sqlite":
        return sqlite_insert(table)
    return postgres_insert(table)


def settle(session: Session, job_id: str, owner: str, reserved: int, charged: int) -> None:
    """Release what the job held and charge what it cost; the balance never goes
    below zero (an upstream may report more than the price held)."""
    if not reserved and not charged:
        return
    balance = KeyUsageRow.balance
    session.execute(
        update(KeyUsageRow)
        .where(KeyUsageRow.owner == owner)
        .values(
            reserved=case(
                (KeyUsageRow.reserved < reserved, 0), else_=KeyUsageRow.reserved - reserved
            ),
            spent=KeyUsageRow.spent + charged,
            balance=case(
                (balance.is_(None), None),
                (balance < charged, 0),
                else_=balance - charged,
            ),
        )
    )
    session.execute(update(JobRow).where(JobRow.id == job_id).values(credits_reserved=0))


def lock_owner(session: Session, owner: str) -> KeyUsageRow:
    """The owner's ``key_usage`` row, locked for this transaction (made if missing):
    concurrent creates of one owner take turns, from any process."""
    table = KeyUsageRow.__table__
    insert = dialect_insert(session, table)
    session.execute(
        insert.values(
            owner=owner, reserved=0, spent=0, virtual_time=0.0, jobs_created=0
        ).on_conflict_do_nothing(index_elements=["owner"])
    )
    session.execute(
        update(KeyUsageRow)
        .where(KeyUsageRow.owner == owner)
        .values(jobs_created=KeyUsageRow.jobs_created + 1)
    )
    usage = session.get(KeyUsageRow, owner, populate_existing=True)
    assert usage is not None
    return usage


def admit(
    session: Session, owner: str, price: int, admission: Admission, usage: KeyUsageRow
) -> None:
    """Refuse a create over a cap or the balance (inside the locked transaction)."""

    def waiting(*conditions: Any) -> int:
        query = (
            select(func.count())
            .select_from(JobRow)
            .where(JobRow.status == JobStatus.QUEUED, *conditions)
        )
        return session.scalar(query) or 0

    if admission.service_max_queued is not None:
        total = waiting()
        if total >= admission.service_max_queued:
            raise ServiceUnavailable(
                f"the service is saturated ({total} generations are waiting, its limit); "
                "try again in a few seconds",
                retry_after_seconds=SATURATED_RETRY_SECONDS,
            )
    if admission.max_running == 0:
        raise RateLimited(
            "Too Many Requests: this key may run no generations at all (its max_running "
            "is 0); ask the operator to raise it"
        )
    if admission.max_queued is not None:
        queued = waiting(JobRow.owner == owner)
        if queued >= admission.max_queued:
            raise RateLimited(
                f"Too Many Requests: this key already has {queued} generations queued, "
                f"its max_queued limit; wait until some start, or cancel some",
                retry_after_seconds=SATURATED_RETRY_SECONDS,
            )
    if usage.balance is not None and usage.balance - usage.reserved < price:
        available = max(0, usage.balance - usage.reserved)
        raise Forbidden(
            f"You've run out of credits. This generation costs {price} credits and "
            f"this key has {available} available"
            + (f" ({usage.reserved} are held by unfinished generations)" if usage.reserved else "")
            + "; ask the operator of this service to top up its balance."
        )


def join_fairly(session: Session, owner: str, usage: KeyUsageRow) -> None:
    """An owner with nothing waiting or running joins the round just ahead of the
    current turn: its job goes next, but an idle key does not get a burst of turns
    for the time it was away."""
    active = session.scalar(
        select(func.count())
        .select_from(JobRow)
        .where(
            JobRow.owner == owner,
            JobRow.status.in_([JobStatus.QUEUED, JobStatus.GENERATING]),
        )
    )
    if active:
        return
    current = session.scalar(
        select(func.min(KeyUsageRow.virtual_time)).where(
            KeyUsageRow.owner.in_(select(JobRow.owner).where(JobRow.status == JobStatus.QUEUED))
        )
    )
    if current is not None and current - JOIN_AHEAD > usage.virtual_time:
        usage.virtual_time = current - JOIN_AHEAD
