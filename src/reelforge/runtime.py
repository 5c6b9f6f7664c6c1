"""Opening what every process needs, once: the database (jobs, keys, events) and storage.

``serve``, ``worker``, the CLI's operator commands and tests all come through here, so
configuration mistakes surface the same way everywhere: as a ``ConfigurationError``
before anything starts.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from reelforge.jobs import JobStore, KeyStore
from reelforge.jobs.db import ensure_schema, make_engine
from reelforge.jobs.events import EventHub, transport_for
from reelforge.jobs.keys import KeyLimits
from reelforge.settings import Settings
from reelforge.storage import Storage, open_storage


@dataclass
class Database:
    """The job database: its SQLAlchemy engine and the stores built on it."""

    engine: Engine
    jobs: JobStore
    keys: KeyStore

    def start_listening(self) -> None:
        """Hear job events from other processes (until ``close``)."""
        self.jobs.events.start()

    def stop_listening(self) -> None:
        self.jobs.events.stop()

    def close(self) -> None:
        self.stop_listening()
        self.engine.dispose()


def open_database(
    settings: Settings, *, auto_migrate: bool | None = None, lock_timeout: float | None = None
) -> Database:
    """The database, refusing to run on an outdated schema unless migrating is allowed.

    Migrating is allowed by ``auto_migrate``, else ``settings.auto_migrate``, else only for
    SQLite: one SQLite file belongs to one machine, while a shared PostgreSQL schema is
    changed once, on purpose, with ``reelforge db upgrade``. ``lock_timeout`` (seconds)
    bounds waits for a busy database; the API passes ``settings.db_timeout_seconds``,
    workers keep the longer default.
    """
    if lock_timeout is None:
        engine = make_engine(settings.resolved_database_url)
    else:
        engine = make_engine(
            settings.resolved_database_url,
            lock_timeout=lock_timeout,
            statement_timeout=lock_timeout,
        )
    if auto_migrate is None:
        auto_migrate = settings.auto_migrate
    if auto_migrate is None:
        auto_migrate = engine.dialect.name == "sqlite"
    ensure_schema(engine, auto_migrate=auto_migrate)
    jobs = JobStore(engine, events=EventHub(transport_for(engine)))
    defaults = KeyLimits(
        rpm=settings.default_rpm,
        read_rpm=settings.default_read_rpm,
        max_queued=settings.default_max_queued,
        max_running=settings.default_max_running,
    )
    return Database(engine=engine, jobs=jobs, keys=KeyStore(engine, settings.api_keys, defaults))


__all__ = ["Database", "Storage", "open_database", "open_storage"]
