"""The orphan sweep on a real store (SQLite and PostgreSQL) and real local storage."""

from __future__ import annotations

import os
import time

import pytest

from reelforge.storage import LocalStorage
from reelforge.storage.layout import video_files, video_key
from reelforge.worker.orphans import sweep_orphans

pytestmark = pytest.mark.integration
HOUR = 3600.0


def stored(storage: LocalStorage, token: str, age_seconds: float) -> list[str]:
    """The three files of a video, written ``age_seconds`` ago."""
    keys = video_files(video_key(token))
    for key in keys:
        storage.put_bytes(key, b"x", "application/octet-stream")
        then = time.time() - age_seconds
        os.utime(storage.local_path(key), (then, then))
    return keys


def test_files_of_no_live_job_are_swept_and_the_rest_kept(
    settings, store, job_factory, tmp_path
) -> None:
    """A failed upload left ``thumbnail.jpg`` behind and retention never removed it."""
    storage = LocalStorage(tmp_path / "files")
    live = store.get(job_factory())
    failed = store.get(job_factory())
    store.cancel(failed.id, failed.owner)  # cancelled while queued: ends in error
    kept = stored(storage, live.video_token, 2 * HOUR)
    swept = [
        *stored(storage, failed.video_token, 2 * HOUR),
        *stored(storage, "token-of-a-deleted-job", 2 * HOUR),
    ]
    young = stored(storage, "being-stored-right-now", 60)  # may be a job storing now

    assert sweep_orphans(settings, store, storage, "sweeper", grace_seconds=HOUR) == len(swept)
    remaining = {key for key, _ in storage.list_keys("videos/")}
    assert remaining == {*kept, *young}
    assert not (storage.root / "videos" / "token-of-a-deleted-job").exists()
