"""The webhook outbox: deliveries recorded with the change that causes them.

``enqueue`` runs inside the transaction that finishes a job, so a finished job with a
webhook always has its delivery, whatever happens to the process next. ``WebhookOutbox``
hands due deliveries to dispatchers (any worker process) under a lease, like jobs: a
dispatcher that dies mid-delivery loses its lease and another one sends the message
again, with the same ``webhook-id``, so receivers can tell a repeat. Delivery is at
least once; a message is never lost.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, delete, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from reelforge.jobs.events import WEBHOOK_WORK, EventHub
from reelforge.jobs.models import (
    DeliveryStatus,
    DisabledWebhookRow,
    JobStatus,
    WebhookDeliveryRow,
    utcnow,
)

FINAL_EVENTS = {JobStatus.COMPLETED: "generation.completed", JobStatus.ERROR: "generation.failed"}
MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class Delivery:
    id: str
    job_id: str
    owner: str
    url: str
    event: str
    flavour: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def from_row(cls, row: WebhookDeliveryRow) -> Delivery:
        return cls(
            id=row.id,
            job_id=row.job_id,
            owner=row.owner,
            url=row.url,
            event=row.event,
            flavour=row.flavour,
            status=DeliveryStatus(row.status),
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            last_status=row.last_status,
            last_error=row.last_error,
            created_at=row.created_at,
            delivered_at=row.delivered_at,
        )


def enqueue(
    session: Session,
    now: datetime,
    *,
    job_id: str,
    owner: str,
    url: str,
    status: JobStatus,
    flavour: str = "aimlapi",
) -> str | None:
    """Record the delivery for a job that just reached ``status``; its id, or ``None``
    when the owner's receiver at ``url`` answered 410 Gone before."""
    disabled = session.get(DisabledWebhookRow, (owner, url))
    if disabled is not None:
        return None
    message_id = "msg_" + secrets.token_urlsafe(18)
    session.add(
        WebhookDeliveryRow(
            id=message_id,
            job_id=job_id,
            owner=owner,
            url=url,
            event=FINAL_EVENTS[status],
            flavour=flavour,
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    return message_id


def drop_pending(session: Session, job_ids: list[str]) -> None:
    """Deliveries of deleted jobs will never be sent."""
    if job_ids:
        session.execute(
            update(WebhookDeliveryRow)
            .where(
                WebhookDeliveryRow.job_id.in_(job_ids),
                WebhookDeliveryRow.status == DeliveryStatus.PENDING,
            )
            .values(status=DeliveryStatus.DROPPED, lease_owner=None, lease_expires_at=None)
        )


class WebhookOutbox:
    """Claiming and settling deliveries; the HTTP side is ``worker.webhooks``."""

    def __init__(
        self, engine: Engine, events: EventHub, *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._skip_locked = engine.dialect.name == "postgresql"
        self._events = events
        self._clock = clock

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def claim_due(
        self,
        dispatcher: str,
        *,
        limit: int,
        lease_seconds: float,
        skip_urls: Collection[str] = (),
        skip_owners: Collection[str] = (),
    ) -> list[Delivery]:
        """Up to ``limit`` deliveries due now, leased to ``dispatcher``, none to a URL in
        ``skip_urls`` or of an owner in ``skip_owners`` (those the dispatcher is already
        sending as much to as it may)."""
        now = self._clock()
        due = and_(
            WebhookDeliveryRow.status == DeliveryStatus.PENDING,
            WebhookDeliveryRow.next_attempt_at <= now,
            or_(
                WebhookDeliveryRow.lease_expires_at.is_(None),
                WebhookDeliveryRow.lease_expires_at < now,
            ),
        )
        if skip_urls:
            due = and_(due, WebhookDeliveryRow.url.not_in(list(skip_urls)))
        if skip_owners:
            due = and_(due, WebhookDeliveryRow.owner.not_in(list(skip_owners)))
        candidates = (
            select(WebhookDeliveryRow.id)
            .where(due)
            .order_by(WebhookDeliveryRow.next_attempt_at)
            .limit(limit)
        )
        if self._skip_locked:
            candidates = candidates.with_for_update(skip_locked=True)
        statement = (
            update(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.id.in_(candidates.scalar_subquery()), due)
            .values(
                lease_owner=dispatcher,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
            )
            .returning(WebhookDeliveryRow)
            .execution_options(synchronize_session=False)
        )
        with self._session() as session:
            return [Delivery.from_row(row) for row in session.execute(statement).scalars()]

    def _settle(self, delivery_id: str, dispatcher: str, **values: object) -> bool:
        statement = (
            update(WebhookDeliveryRow)
            .where(
                WebhookDeliveryRow.id == delivery_id,
                WebhookDeliveryRow.lease_owner == dispatcher,
                WebhookDeliveryRow.status == DeliveryStatus.PENDING,
            )
            .values(
                attempts=WebhookDeliveryRow.attempts + 1,
                lease_owner=None,
                lease_expires_at=None,
                **values,
            )
        )
        with self._session() as session:
            return session.execute(statement).rowcount == 1

    def release(self, delivery_id: str, dispatcher: str) -> None:
        """Hand a leased delivery back unsent (no attempt counted): due again at once."""
        with self._session() as session:
            session.execute(
                update(WebhookDeliveryRow)
                .where(
                    WebhookDeliveryRow.id == delivery_id,
                    WebhookDeliveryRow.lease_owner == dispatcher,
                    WebhookDeliveryRow.status == DeliveryStatus.PENDING,
                )
                .values(lease_owner=None, lease_expires_at=None)
            )

    def wake(self) -> None:
        """Wake this process's dispatcher (a sender came free)."""
        self._events.wake(WEBHOOK_WORK)

    def delivered(self, delivery_id: str, dispatcher: str, status: int) -> bool:
        return self._settle(
            delivery_id,
            dispatcher,
            status=DeliveryStatus.DELIVERED,
            last_status=status,
            last_error=None,
            delivered_at=self._clock(),
        )

    def retry_at(
        self, delivery_id: str, dispatcher: str, when: datetime, status: int | None, error: str
    ) -> bool:
        return self._settle(
            delivery_id,
            dispatcher,
            next_attempt_at=when,
            last_status=status,
            last_error=error[:MAX_ERROR_CHARS],
        )

    def give_up(self, delivery_id: str, dispatcher: str, status: int | None, error: str) -> bool:
        return self._settle(
            delivery_id,
            dispatcher,
            status=DeliveryStatus.FAILED,
            last_status=status,
            last_error=error[:MAX_ERROR_CHARS],
        )

    def drop(self, delivery_id: str, dispatcher: str, reason: str) -> bool:
        return self._settle(
            delivery_id, dispatcher, status=DeliveryStatus.DROPPED, last_error=reason
        )

    def disable(self, delivery: Delivery, dispatcher: str, status: int) -> bool:
        """The receiver answered 410 Gone: this and every pending delivery of the owner
        to that URL stop, and nothing more is queued for it."""
        now = self._clock()
        with self._session() as session:
            if session.get(DisabledWebhookRow, (delivery.owner, delivery.url)) is None:
                session.add(
                    DisabledWebhookRow(owner=delivery.owner, url=delivery.url, disabled_at=now)
                )
            result = session.execute(
                update(WebhookDeliveryRow)
                .where(
                    WebhookDeliveryRow.owner == delivery.owner,
                    WebhookDeliveryRow.url == delivery.url,
                    WebhookDeliveryRow.status == DeliveryStatus.PENDING,
                    or_(
                        WebhookDeliveryRow.id != delivery.id,
                        WebhookDeliveryRow.lease_owner == dispatcher,
                    ),
                )
                .values(
                    status=DeliveryStatus.DISABLED,
                    last_status=status,
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )
            return result.rowcount > 0

    def enable(self, owner: str, url: str) -> None:
        """Deliver to ``url`` again (its owner set it as a webhook anew)."""
        with self._session() as session:
            session.execute(
                delete(DisabledWebhookRow).where(
                    DisabledWebhookRow.owner == owner, DisabledWebhookRow.url == url
                )
            )

    def expire_leases(self, is_dead: Callable[[str], bool]) -> int:
        """End the delivery leases of dispatchers ``is_dead`` says are gone, so their
        deliveries go out again now rather than when the lease runs out."""
        now = self._clock()
        with self._session() as session:
            leased = session.execute(
                select(WebhookDeliveryRow.id, WebhookDeliveryRow.lease_owner).where(
                    WebhookDeliveryRow.status == DeliveryStatus.PENDING,
                    WebhookDeliveryRow.lease_expires_at >= now,
                )
            ).all()
            dead = [delivery for delivery, owner in leased if owner and is_dead(owner)]
            if dead:
                session.execute(
                    update(WebhookDeliveryRow)
                    .where(WebhookDeliveryRow.id.in_(dead))
                    .values(lease_owner=None, lease_expires_at=None)
                )
        if dead:
            self._events.wake_all()
        return len(dead)

    def for_job(self, job_id: str) -> list[Delivery]:
        with self._session() as session:
            rows = session.scalars(
                select(WebhookDeliveryRow)
                .where(WebhookDeliveryRow.job_id == job_id)
                .order_by(WebhookDeliveryRow.created_at)
            )
            return [Delivery.from_row(row) for row in rows]

    def wait_for_work(self, timeout: float) -> None:
        self._events.wait_for(WEBHOOK_WORK, timeout)
