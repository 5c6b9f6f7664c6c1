"""Long-polling: ``GET ...&wait=S`` answers as soon as the generation's status changes.

Changes made by workers in this process wake the request at once (the store calls back);
changes made by other processes are caught by re-reading the job every
``FALLBACK_POLL_SECONDS``. The request holds no thread while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from fastapi.concurrency import run_in_threadpool

from reelforge.jobs import JobRecord, JobStore

MAX_WAIT_SECONDS = 30.0
FALLBACK_POLL_SECONDS = 0.5


async def wait_for_change(store: JobStore, job: JobRecord, seconds: float) -> JobRecord:
    """``job`` as it is once its status differs from now, or after ``seconds``."""
    if job.status.is_final or seconds <= 0:
        return job
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()
    unwatch = store.watch(job.id, lambda: loop.call_soon_threadsafe(changed.set))
    deadline = time.monotonic() + min(seconds, MAX_WAIT_SECONDS)
    try:
        current = job
        while (remaining := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, FALLBACK_POLL_SECONDS))
            changed.clear()
            current = await run_in_threadpool(store.get, job.id) or current
            if current.status != job.status:
                break
        return current
    finally:
        unwatch()
