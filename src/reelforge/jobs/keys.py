"""API keys, stored hashed, with their limits, credits and webhook secrets.

Keys are 256-bit random tokens, so a plain SHA-256 digest is enough to make a stolen
database useless (there is nothing to brute-force) while keeping each request's lookup
cheap. The key itself is shown exactly once, at creation.

A key's limits (``KeyLimits``) are its own where set, else the service's defaults; its
credit balance lives in ``key_usage`` with what its jobs hold and have spent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from reelforge.errors import InvalidRequest, NotFound
from reelforge.jobs.models import ApiKeyRow, JobRow, JobStatus, KeyUsageRow, utcnow

KEY_PREFIX = "rf_"
PREFIX_CHARS_SHOWN = 10
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
ROTATION_OVERLAP = timedelta(hours=24)
"""After a rotation, deliveries are signed with the previous secret too for this long."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


LIMIT_FIELDS = ("rpm", "read_rpm", "max_queued", "max_running", "priority")
UNSET = object()
"""``update``'s "leave as it is"; ``None`` means "use the service default"."""


@dataclass(frozen=True)
class KeyLimits:
    """What a key may do; ``None`` means unlimited."""

    rpm: int | None = None
    """Creates per minute."""
    read_rpm: int | None = None
    """Reads per minute."""
    max_queued: int | None = None
    """Generations waiting at once."""
    max_running: int | None = None
    """Generations running at once (the scheduler holds back the rest)."""
    priority: int = 1
    """Weight in fair scheduling."""

    def merged(self, row: Any) -> KeyLimits:
        """The key's own limits where it has them, these elsewhere."""
        own = {name: getattr(row, name) for name in LIMIT_FIELDS}
        return KeyLimits(
            **{
                name: own[name] if own[name] is not None else getattr(self, name)
                for name in LIMIT_FIELDS
            }
        )


@dataclass(frozen=True)
class Usage:
    """A key's credits and generations now."""

    balance: int | None
    """Credits left (``None``: unlimited)."""
    reserved: int
    """Held by unfinished generations."""
    spent: int
    queued: int
    running: int
    completed: int
    failed: int

    @property
    def available(self) -> int | None:
        return None if self.balance is None else max(0, self.balance - self.reserved)


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    webhook_url: str | None = None
    limits: KeyLimits = KeyLimits()
    """Effective limits (the key's own, else the service's defaults)."""
    own_limits: dict[str, int | None] | None = None
    """What is set on the key itself."""

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Principal:
    """Who is calling: the owner recorded on the jobs they create."""

    owner: str
    key_id: str | None = None
    """The key's id for keys made with ``reelforge keys create`` (not fixed keys)."""
    webhook_url: str | None = None
    """The key's default webhook."""
    limits: KeyLimits = KeyLimits()

    @property
    def can_sign_webhooks(self) -> bool:
        return self.key_id is not None


_AUTHENTICATE = select(
    ApiKeyRow.id,
    ApiKeyRow.revoked_at,
    ApiKeyRow.webhook_url,
    *(getattr(ApiKeyRow, name) for name in LIMIT_FIELDS),
).where(ApiKeyRow.hash == bindparam("digest"))


class KeyStore:
    def __init__(
        self, engine: Engine, static_keys: Iterable[str] = (), defaults: KeyLimits = KeyLimits()
    ) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # Keys from REELFORGE_API_KEYS: owner derived from the hash, never the key.
        self._static = {hash_key(key): f"env:{hash_key(key)[:12]}" for key in static_keys if key}
        self.defaults = defaults

    def create(
        self, name: str = "default", *, credits: int | None = None, **limits: int | None
    ) -> tuple[ApiKey, str]:
        """Make a key (with its own limits and a credit balance, if given); returns its
        record and the secret, which is not stored."""
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKeyRow(
            id="key_" + secrets.token_hex(6),
            name=name,
            prefix=secret[:PREFIX_CHARS_SHOWN],
            hash=hash_key(secret),
            created_at=utcnow(),
        )
        with self._sessions.begin() as session:
            session.add(row)
            _set_limits(row, limits)
            if credits is not None:
                _set_balance(session, row.id, credits)
            session.flush()
            return self._record(row), secret

    def list(self) -> list[ApiKey]:
        with self._sessions.begin() as session:
            rows = session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at))
            return [self._record(row) for row in rows]

    def usage(self, owner: str) -> Usage:
        """Credits and generations of ``owner`` now."""
        with self._sessions.begin() as session:
            money = session.get(KeyUsageRow, owner)
            counts = dict(
                session.execute(
                    select(JobRow.status, func.count())
                    .where(JobRow.owner == owner)
                    .group_by(JobRow.status)
                ).all()
            )
        return Usage(
            balance=money.balance if money else None,
            reserved=money.reserved if money else 0,
            spent=money.spent if money else 0,
            queued=counts.get(JobStatus.QUEUED, 0),
            running=counts.get(JobStatus.GENERATING, 0),
            completed=counts.get(JobStatus.COMPLETED, 0),
            failed=counts.get(JobStatus.ERROR, 0),
        )

    def revoke(self, key_id: str) -> ApiKey:
        with self._sessions.begin() as session:
            row = session.get(ApiKeyRow, key_id)
            if row is None:
                raise NotFound(f"no API key with id {key_id}")
            if row.revoked_at is None:
                session.execute(
                    update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(revoked_at=utcnow())
                )
                session.refresh(row)
            return self._record(row)

    def has_any(self) -> bool:
        if self._static:
            return True
        with self._sessions.begin() as session:
            return session.scalar(select(ApiKeyRow.id).limit(1)) is not None

    def authenticate_fixed(self, key: str) -> Principal | None:
        """A fixed key (``REELFORGE_API_KEYS``): memory only, so callers on an event
        loop need no thread for it."""
        digest = hash_key(key)
        for static_digest, owner in self._static.items():
            if hmac.compare_digest(static_digest, digest):
                return Principal(owner=owner, limits=self.defaults)
        return None

    def authenticate(self, key: str) -> Principal | None:
        fixed = self.authenticate_fixed(key)
        if fixed is not None:
            return fixed
        # Every request of a database key runs this: one indexed read of the columns a
        # principal needs, without an ORM session (a third of the cost). Never cached,
        # so a revoked key is refused from the next request on, in every process.
        with self._engine.connect() as connection:
            row = connection.execute(_AUTHENTICATE, {"digest": hash_key(key)}).first()
        if row is None or row.revoked_at is not None:
            return None
        return Principal(
            owner=row.id,
            key_id=row.id,
            webhook_url=row.webhook_url,
            limits=self.defaults.merged(row),
        )

    def _row(self, session: Session, key_id: str) -> ApiKeyRow:
        row = session.get(ApiKeyRow, key_id)
        if row is None:
            raise NotFound(f"no API key with id {key_id}")
        return row

    def update(
        self,
        key_id: str,
        *,
        webhook_url: str | None = None,
        credits: object = UNSET,
        **limits: object,
    ) -> ApiKey:
        """Change a key's settings: ``webhook_url=""`` removes its default webhook; a
        limit given as ``None`` falls back to the service's default; ``credits`` sets the
        balance (``None``: unlimited)."""
        with self._sessions.begin() as session:
            row = self._row(session, key_id)
            if webhook_url is not None:
                row.webhook_url = webhook_url or None
            _set_limits(row, {name: value for name, value in limits.items() if value is not UNSET})
            if credits is not UNSET:
                _set_balance(session, key_id, credits)  # type: ignore[arg-type]
            session.flush()
            return self._record(row)

    def _record(self, row: ApiKeyRow) -> ApiKey:
        return ApiKey(
            id=row.id,
            name=row.name,
            prefix=row.prefix,
            created_at=row.created_at,
            revoked_at=row.revoked_at,
            webhook_url=row.webhook_url,
            limits=self.defaults.merged(row),
            own_limits={name: getattr(row, name) for name in LIMIT_FIELDS},
        )

    def webhook_secret(self, key_id: str, *, rotate: bool = False) -> str:
        """The key's signing secret (made on first use); ``rotate`` replaces it, and the
        old one keeps signing alongside for ``ROTATION_OVERLAP``."""
        with self._sessions.begin() as session:
            row = self._row(session, key_id)
            if row.webhook_secret is None or rotate:
                if row.webhook_secret is not None:
                    row.webhook_secret_previous = row.webhook_secret
                    row.webhook_secret_rotated_at = utcnow()
                row.webhook_secret = _new_webhook_secret()
            return row.webhook_secret

    def signing_secrets(self, owner: str) -> list[str]:
        """Secrets a delivery to ``owner`` is signed with: the current one (made if
        missing), then the previous one while a rotation is recent."""
        if owner.startswith("env:"):
            return []
        with self._sessions.begin() as session:
            row = session.get(ApiKeyRow, owner)
            if row is None:
                return []
            if row.webhook_secret is None:
                row.webhook_secret = _new_webhook_secret()
            secrets_ = [row.webhook_secret]
            rotated = row.webhook_secret_rotated_at
            if row.webhook_secret_previous and rotated and utcnow() - rotated < ROTATION_OVERLAP:
                secrets_.append(row.webhook_secret_previous)
            return secrets_


def _new_webhook_secret() -> str:
    """Standard Webhooks' format: ``whsec_`` and base64 of 32 random bytes."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _set_limits(row: ApiKeyRow, limits: dict[str, object]) -> None:
    for name, value in limits.items():
        if name not in LIMIT_FIELDS:
            raise TypeError(f"unknown limit {name}")
        if value is not None and (
            not isinstance(value, int) or value < (0 if name.startswith("max_") else 1)
        ):
            raise InvalidRequest(
                f"{name} must be a whole number of at least "
                f"{0 if name.startswith('max_') else 1}, or unset"
            )
        setattr(row, name, value)


def _set_balance(session: Session, owner: str, credits: int | None) -> None:
    """Set the key's credit balance (``None``: unlimited); what its running jobs hold
    stays reserved."""
    if credits is not None and credits < 0:
        raise InvalidRequest("credits must be 0 or more, or unlimited")
    usage = session.get(KeyUsageRow, owner)
    if usage is None:
        session.add(
            KeyUsageRow(
                owner=owner, balance=credits, reserved=0, spent=0, virtual_time=0.0, jobs_created=0
            )
        )
    else:
        usage.balance = credits
