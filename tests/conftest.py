"""Shared fixtures: components built with explicit settings in a temporary home."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from reelforge.jobs import JobStore, KeyStore, NewJob
from reelforge.jobs.db import make_engine, upgrade
from reelforge.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", api_keys=[], _env_file=None)


@pytest.fixture
def db_engine(settings: Settings) -> Engine:
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    return engine


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
