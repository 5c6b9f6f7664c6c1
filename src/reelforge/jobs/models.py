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

    __table_args__ = (
        Index("ix_jobs_claim", "status", "created_at"),
        Index("ux_jobs_idempotency", "owner", "idempotency_key", unique=True),
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
