"""Opening what every process needs: the job store (schema checked) and storage."""

from __future__ import annotations

from reelforge.jobs import JobStore
from reelforge.jobs.db import ensure_schema, make_engine
from reelforge.settings import Settings


def open_job_store(settings: Settings, *, auto_migrate: bool | None = None) -> JobStore:
    """The job store, refusing to run on an outdated schema unless migrating is allowed.

    Migrating is allowed by ``auto_migrate``, else ``settings.auto_migrate``, else only for
    SQLite: one SQLite file belongs to one machine, while a shared PostgreSQL schema is
    changed once, on purpose, with ``reelforge db upgrade``.
    """
    engine = make_engine(settings.resolved_database_url)
    if auto_migrate is None:
        auto_migrate = settings.auto_migrate
    if auto_migrate is None:
        auto_migrate = engine.dialect.name == "sqlite"
    ensure_schema(engine, auto_migrate=auto_migrate)
    return JobStore(engine)
