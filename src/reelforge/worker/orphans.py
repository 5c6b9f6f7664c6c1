"""The orphan sweep: stored video files that belong to no job are removed.

A job that fails while storage is down cannot delete what it stored (a ``thumbnail.jpg``
before the upload of the video failed), nor can a delete of a job; retention only looks
at jobs. So every ``REELFORGE_ORPHAN_SWEEP_SECONDS`` one worker at a time (a named lease,
like retention) lists ``videos/`` and deletes the files of tokens whose job is gone,
failed or past retention. Files younger than ``ORPHAN_GRACE_SECONDS`` are left alone:
they may belong to a job being stored right now.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict

from reelforge.jobs import JobStore
from reelforge.settings import Settings
from reelforge.storage import Storage
from reelforge.storage.layout import VIDEOS_AREA

log = logging.getLogger(__name__)

LOCK_NAME = "orphans"
BATCH = 500
"""Tokens looked up in one query."""
ORPHAN_GRACE_SECONDS = 3600.0


def sweep_orphans(
    settings: Settings,
    store: JobStore,
    storage: Storage,
    holder: str,
    *,
    grace_seconds: float = ORPHAN_GRACE_SECONDS,
) -> int:
    """Delete stored video files of no live job (if this process gets the lease);
    how many files."""
    lease = max(60.0, settings.orphan_sweep_seconds)
    if not store.try_lock(LOCK_NAME, holder, lease):
        return 0
    cutoff = time.time() - grace_seconds
    by_token: dict[str, list[str]] = defaultdict(list)
    for key, modified in storage.list_keys(VIDEOS_AREA):
        parts = key.split("/")
        if len(parts) == 3 and modified < cutoff:
            by_token[parts[1]].append(key)
    tokens = list(by_token)
    deleted = 0
    for start in range(0, len(tokens), BATCH):
        batch = tokens[start : start + BATCH]
        kept = store.video_tokens_in_use(batch)
        for token in batch:
            if token in kept:
                continue
            for key in by_token[token]:
                try:
                    storage.delete(key)
                    deleted += 1
                except Exception:
                    log.warning("could not delete an orphaned file; next sweep tries again")
    if deleted:
        log.info("deleted orphaned video files", extra={"count": deleted})
    return deleted
