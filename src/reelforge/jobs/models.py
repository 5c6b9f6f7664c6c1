"""Tables of the job store and the status enum."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, DateTime, Float, Index, Integer, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class JobStatus(enum.StrEnum):
    """The published status names; a job moves queued → generating → completed | error.

    A generating job whose worker died goes back to being claimable (still reported as
    ``generating`` until it is claimed again, since work on it has begun).
    """

    QUEUED = "queued"
    GENERATING = "generating"
    COMPLETED = "completed"
    ERROR = "error"

    @property
    def is_final(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.ERROR)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSON}


class JobRow(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    model: Mapped[str] = mapped_column(String(100))
    owner: Mapped[str] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED)
    params: Mapped[dict[str, Any]]
    seed: Mapped[int] = mapped_column(BigInteger)
    credits: Mapped[int] = mapped_column(BigInteger)
    """Price quoted at submit time; charged only when the job completes."""
    video_token: Mapped[str] = mapped_column(String(64))
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    video_key: Mapped[str | None] = mapped_column(String(400))
    video_size: Mapped[int | None] = mapped_column(BigInteger)
    error_name: Mapped[str | None] = mapped_column(String(100))
    error_message: Mapped[str | None] = mapped_column(Text)
    info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Facts to report back (seed used, prompt used, output size)."""
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    """The client's ``Idempotency-Key``: a retried create returns this job again."""
    request_hash: Mapped[str | None] = mapped_column(String(64))
    """SHA-256 of the canonical request body, to refuse a key reused for another request."""
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Counts the changes a client can see (status, stage, progress): live streams use it
    as the event id, so a reconnecting client resumes where it left off."""
    cancel_requested_at: Mapped[datetime | None]
    """Set when the user cancels a running job; its worker stops it at the next heartbeat."""
    webhook_url: Mapped[str | None] = mapped_column(String(2048))
    """Where ``generation.completed`` / ``generation.failed`` are delivered."""
    credits_reserved: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """Credits held from the key's balance until the job ends (then charged or released)."""
    video_expired_at: Mapped[datetime | None]
    """When retention deleted the video (its URL answers 410 Gone from then on)."""

    __table_args__ = (
        Index("ix_jobs_claim", "status", "created_at"),
        Index("ux_jobs_idempotency", "owner", "idempotency_key", unique=True),
        Index("ix_jobs_owner_created", "owner", "created_at", "id"),
        Index("ix_jobs_owner_status", "owner", "status"),
        Index("ix_jobs_video_token", "video_token"),
        Index("ix_jobs_retention", "status", "completed_at"),
    )


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    """First characters of the key, so a user can tell keys apart in listings."""
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    webhook_url: Mapped[str | None] = mapped_column(String(2048))
    """Default webhook of the key's generations (a create's ``webhook_url`` wins)."""
    webhook_secret: Mapped[str | None] = mapped_column(String(100))
    """``whsec_...``: signs deliveries. Kept as is: it is a signing key, not a password."""
    webhook_secret_previous: Mapped[str | None] = mapped_column(String(100))
    webhook_secret_rotated_at: Mapped[datetime | None]
    """Deliveries carry the previous secret's signature too for 24 h after a rotation."""
    rpm: Mapped[int | None] = mapped_column(Integer)
    """Creates per minute (``None``: the settings' default)."""
    read_rpm: Mapped[int | None] = mapped_column(Integer)
    """Reads per minute (``None``: the settings' default)."""
    max_queued: Mapped[int | None] = mapped_column(Integer)
    max_running: Mapped[int | None] = mapped_column(Integer)
    priority: Mapped[int | None] = mapped_column(Integer)
    """Weight in fair scheduling (``None``: 1); a key of weight 2 gets twice the turns."""


class KeyUsageRow(Base):
    """Per owner (a key, or a fixed key's derived owner): credits and scheduling state.

    Creates lock their owner's row, so caps and balances hold under concurrent creates
    from any number of processes; every change to it is one conditional update.
    """

    __tablename__ = "key_usage"

    owner: Mapped[str] = mapped_column(String(100), primary_key=True)
    balance: Mapped[int | None] = mapped_column(BigInteger)
    """Credits left (``None``: unlimited). Never negative."""
    reserved: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """Credits held by unfinished jobs."""
    spent: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    virtual_time: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    """Fair scheduling: grows by ``1 / priority`` per claim; the lowest goes next."""
    jobs_created: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class LockRow(Base):
    """Named leases: housekeeping that one process at a time should do (retention)."""

    __tablename__ = "locks"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime]


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    """Every scheduled attempt failed."""
    DISABLED = "disabled"
    """The receiver answered 410 Gone (for this or an earlier delivery to its URL)."""
    DROPPED = "dropped"
    """Its generation was deleted before it could be delivered."""


class WebhookDeliveryRow(Base):
    """The webhook outbox: written in the transaction that finishes the job, so a
    finished job always has its delivery, and delivered by any worker (with a lease)."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    """``msg_...``: the ``webhook-id`` header, the same on every attempt."""
    job_id: Mapped[str] = mapped_column(String(200), index=True)
    owner: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(2048))
    event: Mapped[str] = mapped_column(String(40))
    flavour: Mapped[str] = mapped_column(String(20), default="aimlapi", server_default="aimlapi")
    """Which payload shape the receiver expects (the protocol its generation came in by)."""
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None]
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)


class DisabledWebhookRow(Base):
    """A receiver URL that answered 410 Gone: nothing more is sent there for its owner."""

    __tablename__ = "webhook_disabled"

    owner: Mapped[str] = mapped_column(String(100), primary_key=True)
    url: Mapped[str] = mapped_column(String(2048), primary_key=True)
    disabled_at: Mapped[datetime]


class ServiceSecretRow(Base):
    """Secrets every process of the service must share (the video URL signing key):
    made once, by whichever process needs one first, and read by all."""

    __tablename__ = "service_secrets"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
