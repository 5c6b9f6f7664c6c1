"""Database engines and schema migrations.

The schema is owned by Alembic migrations shipped inside the package. A fresh SQLite
database (the single-user default) is migrated automatically; other databases must be
migrated explicitly with ``reelforge db upgrade`` so that several replicas never race to
change a shared schema.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from reelforge.errors import (
    DISK_FULL_RETRY_SECONDS,
    ConfigurationError,
    InsufficientStorage,
    ServiceUnavailable,
)

log = logging.getLogger(__name__)

WORKER_LOCK_TIMEOUT_SECONDS = 30.0
"""How long a worker waits for a locked database: it has no client waiting on it."""


SQLITE_POOL_SIZE = 40


def make_engine(
    url: str,
    *,
    lock_timeout: float = WORKER_LOCK_TIMEOUT_SECONDS,
    statement_timeout: float | None = None,
) -> Engine:
    """An engine for ``url``; ``ConfigurationError`` when the URL or its driver is wrong.

    ``lock_timeout`` bounds how long a statement waits for a lock (SQLite's busy timeout,
    PostgreSQL's ``lock_timeout``) and for a pooled connection; ``statement_timeout``
    (PostgreSQL) bounds any statement. The API passes a few seconds for both, so a
    request never hangs on a busy database. SQL parameters (video tokens, key hashes)
    never appear in errors or logs.
    """
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite":
            options = f"-c lock_timeout={round(lock_timeout * 1000)}"
            if statement_timeout is not None:
                options += f" -c statement_timeout={round(statement_timeout * 1000)}"
            return create_engine(
                url,
                pool_pre_ping=True,
                pool_size=10,
                max_overflow=20,
                pool_timeout=lock_timeout,
                hide_parameters=True,
                connect_args={
                    "connect_timeout": max(1, round(lock_timeout)),
                    "options": options,
                },
            )
    except (ArgumentError, ImportError) as error:
        # The URL is not echoed: it may carry a password.
        reason = str(error) if isinstance(error, ImportError) else "it does not parse"
        raise ConfigurationError(
            f"REELFORGE_DATABASE_URL cannot be used ({reason}); expected e.g. "
            "sqlite:////path/reelforge.db or postgresql+psycopg://user@host/db "
            "(pip install -e '.[postgres]' in the clone)"
        ) from None
    if parsed.database and parsed.database != ":memory:":
        folder = Path(parsed.database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigurationError(
                f"cannot create {folder} for the SQLite file of REELFORGE_DATABASE_URL: "
                f"{error.strerror}"
            ) from None
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": lock_timeout},
        hide_parameters=True,
        # As many connections as the API's thread pool has threads (40): beyond the
        # default 5 + 10, each request would open and set up a connection of its own.
        pool_size=SQLITE_POOL_SIZE,
        max_overflow=SQLITE_POOL_SIZE,
        pool_timeout=lock_timeout,
    )
    busy_millis = round(lock_timeout * 1000)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets the API read while a worker writes; NORMAL is durable across process
        # crashes (only an OS crash can lose the last transactions).
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_millis}")
        cursor.close()

    return engine


DATABASE_RETRY_SECONDS = 2
UNREACHABLE_MARKERS = (
    "connect",  # connection refused, could not connect, connection ... failed
    "server closed",
    "terminating connection",
    "the database system is",  # starting up, shutting down, in recovery
    "unable to open database",
)
"""Driver messages of a database that cannot be reached (rather than one that is busy)."""


def unavailable(error: Exception) -> ServiceUnavailable:
    """The one mapping of a database that cannot answer now (locked, timed out, down,
    full) to the error a client sees: 503 with Retry-After, or 507 when the disk is
    full. Nothing of the SQL or its parameters is carried."""
    reason = str(getattr(error, "orig", None) or type(error).__name__).splitlines()[0][:200]
    if "disk is full" in reason or "No space left" in reason:
        return InsufficientStorage(
            "The server is out of disk space; try again later",
            retry_after_seconds=DISK_FULL_RETRY_SECONDS,
        )
    if getattr(error, "connection_invalidated", False) or any(
        marker in reason.lower() for marker in UNREACHABLE_MARKERS
    ):
        return ServiceUnavailable(
            "The database is unavailable; try again in a moment",
            retry_after_seconds=DATABASE_RETRY_SECONDS,
        )
    return ServiceUnavailable(
        "The database is busy; try again in a moment",
        retry_after_seconds=DATABASE_RETRY_SECONDS,
    )


def _alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", "reelforge.jobs:migrations")
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


@contextmanager
def reaching(engine: Engine) -> Iterator[None]:
    """Turn a failure to connect at start-up into one line: the setting, the server and
    the server's own words (instead of a driver traceback). Never the password."""
    try:
        yield
    except DBAPIError as error:
        if error.statement is not None:  # a statement failed, not the connection
            raise
        url = engine.url
        if url.get_backend_name() == "sqlite":
            where = f"the SQLite file {url.database}"
        else:
            where = f"the {url.get_backend_name()} server at {url.host or 'localhost'}"
            where += f":{url.port}" if url.port else ""
            where += f" (database {url.database}, user {url.username})" if url.database else ""
        said = " ".join(str(error.orig or error).split())[:300]
        raise ConfigurationError(
            f"cannot connect to {where}, set by REELFORGE_DATABASE_URL: {said}"
        ) from None


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with reaching(engine), engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = _alembic_config(engine)
    with reaching(engine), engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def ensure_schema(engine: Engine, *, auto_migrate: bool) -> None:
    """Make sure the schema is current, migrating only when allowed."""
    current, head = current_revision(engine), head_revision(engine)
    if current == head:
        return
    if auto_migrate:
        log.info("migrating database schema", extra={"from": current, "to": head})
        upgrade(engine)
        return
    raise ConfigurationError(
        f"the database schema is at revision {current or 'none'} but this reelforge needs "
        f"{head}; run `reelforge db upgrade` first"
    )
