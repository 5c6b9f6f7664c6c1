"""Retention's lease: held only while a sweep runs, so a manual ``gc`` beside a running
service sweeps at once and never holds up the service's next sweep (SQLite and
PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from reelforge.settings import Settings
from reelforge.storage.layout import video_key
from reelforge.storage.local import LocalStorage
from reelforge.worker.retention import LOCK_NAME, sweep_expired_videos

pytestmark = pytest.mark.integration


def finished_video(store, job_factory, storage: LocalStorage) -> str:
    job_id = job_factory()
    claimed = store.claim("w1", lease_seconds=30, max_attempts=3)
    assert claimed is not None and claimed.id == job_id
    key = video_key(claimed.video_token)
    size = storage.put_bytes(key, b"\0" * 64, "video/mp4")
    assert store.complete(job_id, "w1", video_key=key, video_size=size)
    return key


def test_the_lease_is_given_up_after_each_sweep(store, job_factory, clock, tmp_path) -> None:
    settings = Settings(
        home=tmp_path / "home", retention_hours=1, retention_sweep_seconds=300, _env_file=None
    )
    storage = LocalStorage(tmp_path / "files")
    first = finished_video(store, job_factory, storage)
    clock.advance(2 * 3600)
    # The service's sweep runs, then a manual gc right after it finds work of its own.
    assert sweep_expired_videos(settings, store, storage, "service") == 1
    assert store.lock_holder(LOCK_NAME) is None
    second = finished_video(store, job_factory, storage)
    clock.advance(2 * 3600)
    assert sweep_expired_videos(settings, store, storage, "cli-gc") == 1
    assert storage.size(first) is None and storage.size(second) is None
    # ... and the manual gc did not delay the service's next sweep either.
    finished_video(store, job_factory, storage)
    clock.advance(2 * 3600)
    assert sweep_expired_videos(settings, store, storage, "service") == 1


def test_a_sweep_while_another_runs_says_so(store, job_factory, clock, tmp_path) -> None:
    settings = Settings(home=tmp_path / "home", retention_hours=1, _env_file=None)
    storage = LocalStorage(tmp_path / "files")
    key = finished_video(store, job_factory, storage)
    clock.advance(2 * 3600)
    assert store.try_lock(LOCK_NAME, "worker-7@host", 60)  # a sweep in progress elsewhere
    assert sweep_expired_videos(settings, store, storage, "cli-gc") is None
    assert store.lock_holder(LOCK_NAME) == "worker-7@host"
    assert storage.size(key) is not None
    store.unlock(LOCK_NAME, "cli-gc")  # not the holder: changes nothing
    assert store.lock_holder(LOCK_NAME) == "worker-7@host"
    store.unlock(LOCK_NAME, "worker-7@host")
    assert sweep_expired_videos(settings, store, storage, "cli-gc") == 1


def test_gc_says_when_another_process_is_sweeping(tmp_path) -> None:
    from reelforge.runtime import open_database

    home = tmp_path / "home"
    database = open_database(Settings(home=home, _env_file=None))
    assert database.jobs.try_lock(LOCK_NAME, "worker-3@host", 600)
    done = subprocess.run(
        [sys.executable, "-m", "reelforge", "gc"],
        env={**os.environ, "REELFORGE_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "another process (worker-3@host) is deleting" in done.stdout
    database.close()
