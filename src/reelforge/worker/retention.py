"""Retention: finished videos are deleted ``REELFORGE_RETENTION_HOURS`` after completion.

Every worker process looks every ``REELFORGE_RETENTION_SWEEP_SECONDS``; a named lease in
the database (``JobStore.try_lock``) makes sure one sweeps at a time. The lease is held
only while a sweep runs and given up at its end, so ``reelforge gc`` beside a running
service sweeps at once, and never holds up the service's next sweep. The job records
stay: their GET keeps saying when the video expired, and the video URL answers 410 Gone.
A video goes with its posters and the staged inputs it was made from (kept for remixes);
a job that failed or was cancelled loses its staged inputs at once.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from reelforge.jobs import JobStore
from reelforge.settings import Settings
from reelforge.storage import Storage
from reelforge.storage.layout import staged_keys, video_files

log = logging.getLogger(__name__)

LOCK_NAME = "retention"
BATCH = 100


def sweep_expired_videos(
    settings: Settings, store: JobStore, storage: Storage, holder: str
) -> int | None:
    """Delete the videos past retention; how many, or None when another process is
    sweeping now (it holds the lease)."""
    if settings.retention_hours <= 0:
        return 0
    lease = max(60.0, settings.retention_sweep_seconds)
    if not store.try_lock(LOCK_NAME, holder, lease):
        return None
    try:
        deleted = _sweep(settings, store, storage, holder, lease)
    finally:
        store.unlock(LOCK_NAME, holder)
    if deleted:
        log.info("deleted expired videos", extra={"count": deleted})
    return deleted


def _sweep(settings: Settings, store: JobStore, storage: Storage, holder: str, lease: float) -> int:
    deleted = 0
    cutoff = store.now() - timedelta(hours=settings.retention_hours)
    while batch := store.expired_videos(cutoff, BATCH):
        gone = []
        for job in batch:
            try:
                videos = video_files(job.video_key) if job.video_key else []
                for key in [*videos, *staged_keys(job.params)]:
                    storage.delete(key)
            except Exception:
                log.warning("could not delete an expired video", extra={"job_id": job.id})
                continue
            gone.append(job.id)
        store.mark_video_expired(gone)
        deleted += len(gone)
        if len(gone) < len(batch):
            break  # storage trouble: try the rest on the next sweep
        store.try_lock(LOCK_NAME, holder, lease)  # still ours while we work
    return deleted
