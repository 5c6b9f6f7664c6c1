"""Shared fixtures: components built with explicit settings in a temporary home."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from reelforge.jobs import JobStore, KeyStore, NewJob
from reelforge.jobs.db import make_engine, upgrade
from reelforge.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", api_keys=[], _env_file=None)


POSTGRES_ADMIN_URL = os.environ.get(
    "REELFORGE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
"""A PostgreSQL server the tests may create databases on (the machine runs one)."""


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty database for one test; its SQLAlchemy URL. Dropped afterwards."""
    import psycopg

    admin = make_url(POSTGRES_ADMIN_URL)
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"reelforge_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as error:
        pytest.fail(
            f"PostgreSQL is needed at {POSTGRES_ADMIN_URL} (set REELFORGE_TEST_POSTGRES_URL): "
            f"{error}"
        )
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_engine(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = make_engine(settings.resolved_database_url)
        upgrade(engine)
        yield engine
        engine.dispose()
        return
    with fresh_postgres_database() as url:
        engine = make_engine(url)
        upgrade(engine)
        yield engine
        engine.dispose()


class FakeClock:
    """A settable clock so lease expiry is tested without sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(db_engine: Engine, clock: FakeClock) -> JobStore:
    return JobStore(db_engine, clock=clock)


@pytest.fixture
def keys(db_engine: Engine) -> KeyStore:
    return KeyStore(db_engine, ["static-key"])


@pytest.fixture
def job_factory(store: JobStore, clock: FakeClock) -> Callable[..., str]:
    def make(model: str = "veo2", owner: str = "owner-a", **params: object) -> str:
        job_id = f"{uuid.uuid4()}:{model}"
        store.create(
            NewJob(
                id=job_id,
                model=model,
                owner=owner,
                params={"model": model, "prompt": "a fox", **params},
                seed=7,
                credits=100,
                video_token=uuid.uuid4().hex,
            )
        )
        clock.advance(0.001)  # distinct creation times keep the claim order defined
        return job_id

    return make


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Say so when the container build or the fault suite was left out (pyproject addopts),
    never silently."""
    if "not container" in (config.getoption("markexpr") or ""):
        terminalreporter.write_line(
            "not run here: the container build (marker `container`, minutes); .ci/run runs it "
            "as its own step: pytest -m container -n 0 -s tests/deploy/test_image_build.py"
        )
    if "not faults" in (config.getoption("markexpr") or ""):
        terminalreporter.write_line(
            "not run here: the fault-injection suite (marker `faults`, minutes); .ci/run runs "
            "it as its own step: pytest -m faults tests/faults"
        )
