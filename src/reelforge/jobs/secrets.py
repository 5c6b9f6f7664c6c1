"""Secrets the processes of one service share, kept in its database.

Several API replicas must agree on the key that signs video URLs (what one signs,
another verifies) and workers sign the URLs in webhooks too; keeping the key in the
database they already share means nobody has to distribute it. The first process that
needs a secret makes it; a race between two makes one of them win, and both read it.
"""

from __future__ import annotations

import secrets

from sqlalchemy import Engine, select
from sqlalchemy.orm import sessionmaker

from reelforge.jobs.models import ServiceSecretRow, utcnow
from reelforge.jobs.quotas import dialect_insert


def service_secret(engine: Engine, name: str) -> str:
    """The secret called ``name``, made (32 random bytes, URL-safe) if there is none."""
    sessions = sessionmaker(engine)
    with sessions.begin() as session:
        session.execute(
            dialect_insert(session, ServiceSecretRow.__table__)
            .values(name=name, value=secrets.token_urlsafe(32), created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["name"])
        )
        value = session.scalar(select(ServiceSecretRow.value).where(ServiceSecretRow.name == name))
    assert value is not None
    return value
