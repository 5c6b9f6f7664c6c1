"""API keys, stored hashed.

Keys are 256-bit random tokens, so a plain SHA-256 digest is enough to make a stolen
database useless (there is nothing to brute-force) while keeping each request's lookup
cheap. The key itself is shown exactly once, at creation.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import sessionmaker

from reelforge.errors import NotFound
from reelforge.jobs.models import ApiKeyRow, utcnow

KEY_PREFIX = "rf_"
PREFIX_CHARS_SHOWN = 10


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Principal:
    """Who is calling: the owner recorded on the jobs they create."""

    owner: str


class KeyStore:
    def __init__(self, engine: Engine, static_keys: Iterable[str] = ()) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # Keys from REELFORGE_API_KEYS: owner derived from the hash, never the key.
        self._static = {hash_key(key): f"env:{hash_key(key)[:12]}" for key in static_keys if key}

    def create(self, name: str = "default") -> tuple[ApiKey, str]:
        """Make a key; returns its record and the secret, which is not stored."""
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
        return _record(row), secret

    def list(self) -> list[ApiKey]:
        with self._sessions.begin() as session:
            rows = session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at))
            return [_record(row) for row in rows]

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
            return _record(row)

    def has_any(self) -> bool:
        if self._static:
            return True
        with self._sessions.begin() as session:
            return session.scalar(select(ApiKeyRow.id).limit(1)) is not None

    def authenticate(self, key: str) -> Principal | None:
        digest = hash_key(key)
        for static_digest, owner in self._static.items():
            if hmac.compare_digest(static_digest, digest):
                return Principal(owner=owner)
        with self._sessions.begin() as session:
            row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.hash == digest))
            if row is None or row.revoked_at is not None:
                return None
            return Principal(owner=row.id)


def _record(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )
