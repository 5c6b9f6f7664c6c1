"""What a client is told when the database cannot answer: busy (locked) or unavailable."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from reelforge.jobs.db import unavailable
from support import free_port

pytestmark = pytest.mark.unit


def failure(url: str, statement: str = "SELECT 1", **options: object) -> OperationalError:
    engine = create_engine(url, **options)
    try:
        with pytest.raises(OperationalError) as raised, engine.connect() as connection:
            connection.execute(text(statement))
        return raised.value
    finally:
        engine.dispose()


def test_an_unreachable_database_is_unavailable_not_busy() -> None:
    """During a PostgreSQL outage the 503 said "busy"."""
    error = failure(
        f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x",
        connect_args={"connect_timeout": 2},
    )
    answer = unavailable(error)
    assert answer.message == "The database is unavailable; try again in a moment"
    assert answer.retry_after_seconds


def test_a_locked_database_is_busy(tmp_path) -> None:
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        error = failure(
            f"sqlite:///{path}", "INSERT INTO t VALUES (1)", connect_args={"timeout": 0}
        )
    finally:
        holder.close()
    assert unavailable(error).message == "The database is busy; try again in a moment"
