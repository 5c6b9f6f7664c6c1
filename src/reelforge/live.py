"""Reading and waiting for jobs, shared by every client of one API process.

Finished jobs are read far more often than anything else (clients poll a completed job
again and again, and every download page does) and barely change: only a delete or the
retention sweep touches them again. ``FinishedJobs`` keeps them in memory, so such a GET
costs neither a database read nor a thread: an entry is dropped the moment a job event
for it arrives (from this process or, through the store's transport, any other), and is
read again every ``FALLBACK_SECONDS`` in case an event is lost (answered meanwhile, so
never more than twice that old).

Long-polls (``GET ...&wait=S``) and live event streams both wait for a job to change.
Thousands of them must cost neither a thread nor a database read each, so one
``JobWatcher`` per process keeps, for every job somebody waits on, the latest record and
the waiters' events:

* a job event (from the store's ``EventHub``, whichever process made the change) makes
  one re-read of that job, however many clients wait on it;
* as a safety net for lost events, all watched jobs are re-read together, in one query,
  every ``FALLBACK_SECONDS``.

Waiters are woken when the job's ``revision`` grows; each decides whether the change
matters to it (a long-poll only cares about the status, a stream about status, stage and
progress).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import anyio

from reelforge.jobs import JobRecord, JobStore
from reelforge.logs import throttle

log = logging.getLogger(__name__)

FALLBACK_SECONDS = 2.0
FINISHED_JOBS_CACHED = 10_000
"""Finished jobs kept in memory per API process (a few KiB each)."""


class FinishedJobs:
    """Completed and failed jobs by id, as read from the store (see the module text).

    An entry older than ``ttl`` is still served while one background read refreshes it
    (never older than twice ``ttl``): under load, a read that every request waits for
    would stall them all behind a thread that competes for the GIL with the event loop.
    """

    def __init__(
        self,
        store: JobStore,
        max_entries: int = FINISHED_JOBS_CACHED,
        ttl: float = FALLBACK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._max = max_entries
        self._ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, JobRecord]] = OrderedDict()
        self._lock = threading.Lock()
        self._epoch = 0
        self._reading: dict[str, asyncio.Future[JobRecord | None]] = {}
        store.events.watch_all(self.forget)

    def forget(self, job_id: str) -> None:
        """The job changed (any thread): drop it, and refuse reads that began before."""
        with self._lock:
            self._epoch += 1
            self._entries.pop(job_id, None)

    async def get(self, job_id: str) -> JobRecord | None:
        """The job, from memory when it is finished and known, else from the store; the
        requests that miss together share one read."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(job_id)
        if entry is not None:
            read_at, job = entry
            if now - read_at < self._ttl:
                return job
            if now - read_at < 2 * self._ttl:
                self._read_once(job_id)  # refresh behind the answer
                return job
        return await asyncio.shield(self._read_once(job_id))

    def _read_once(self, job_id: str) -> asyncio.Future[JobRecord | None]:
        reading = self._reading.get(job_id)
        if reading is None or reading.get_loop() is not asyncio.get_running_loop():
            reading = asyncio.ensure_future(self._read(job_id))
            self._reading[job_id] = reading
            reading.add_done_callback(lambda done: self._finished_reading(job_id, done))
        return reading

    def _finished_reading(self, job_id: str, done: asyncio.Future[JobRecord | None]) -> None:
        if self._reading.get(job_id) is done:
            del self._reading[job_id]
        if done.cancelled():
            return
        # Retrieved here, so a refresh nobody awaited does not warn "never retrieved"; its
        # failure would go unseen otherwise (an awaited read's failure reaches its request).
        error = done.exception()
        if error is not None:
            throttle.log(
                log,
                logging.WARNING,
                "finished job read",
                f"reading finished job {job_id} failed: {type(error).__name__}",
            )

    async def _read(self, job_id: str) -> JobRecord | None:
        with self._lock:
            epoch = self._epoch
        job = await anyio.to_thread.run_sync(self._store.get, job_id)
        with self._lock:
            if job is None or not job.status.is_final:
                self._entries.pop(job_id, None)
            elif epoch == self._epoch:  # else a change announced meanwhile may be newer
                self._entries[job_id] = (self._clock(), job)
                self._entries.move_to_end(job_id)
                while len(self._entries) > self._max:
                    self._entries.popitem(last=False)
        return job


@dataclass
class _Watched:
    record: JobRecord | None
    gone: bool = False
    waiters: set[asyncio.Event] = field(default_factory=set)
    unwatch: Callable[[], None] | None = None
    refreshing: bool = False
    again: bool = False


class Subscription:
    """One waiter's view of a job: ``next`` returns it once it changed."""

    def __init__(self, watcher: JobWatcher, job_id: str, seen: int) -> None:
        self._watcher = watcher
        self.job_id = job_id
        self.seen = seen
        self.event = asyncio.Event()

    async def next(self, timeout: float) -> JobRecord | None:
        """The job once its revision passes what this waiter saw, or ``None`` after
        ``timeout`` seconds; raises ``LookupError`` if the job was deleted."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self.event.clear()  # before looking, so a change right after is not missed
            current = self._watcher.latest(self.job_id)
            if current is None:
                raise LookupError(self.job_id)
            if current.revision > self.seen:
                self.seen = current.revision
                return current
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.event.wait(), remaining)


class JobWatcher:
    """Bound to the event loop it is first used on (the API's)."""

    def __init__(self, store: JobStore) -> None:
        self._store = store
        self._jobs: dict[str, _Watched] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fallback: asyncio.Task[None] | None = None

    @property
    def watched(self) -> int:
        return len(self._jobs)

    def latest(self, job_id: str) -> JobRecord | None:
        watched = self._jobs.get(job_id)
        if watched is None or watched.gone:
            return None
        return watched.record

    @contextlib.asynccontextmanager
    async def subscribe(self, job: JobRecord) -> AsyncIterator[Subscription]:
        """Wait on ``job`` (as the caller last saw it) until the block ends."""
        self._bind()
        watched = self._jobs.get(job.id)
        if watched is None:
            watched = _Watched(record=job)
            self._jobs[job.id] = watched
            loop = self._loop
            assert loop is not None
            watched.unwatch = self._store.events.watch(
                job.id, lambda: loop.call_soon_threadsafe(self._changed, job.id)
            )
            # The caller read ``job`` before the watch existed: a change in between
            # sent its event to nobody, so look once now rather than at the next
            # fallback round.
            self._changed(job.id)
        elif watched.record is None or watched.record.revision < job.revision:
            watched.record = job
        subscription = Subscription(self, job.id, job.revision)
        watched.waiters.add(subscription.event)
        try:
            yield subscription
        finally:
            watched.waiters.discard(subscription.event)
            if not watched.waiters and self._jobs.get(job.id) is watched:
                del self._jobs[job.id]
                if watched.unwatch is not None:
                    watched.unwatch()

    def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._fallback = loop.create_task(self._poll_all())

    def _changed(self, job_id: str) -> None:
        watched = self._jobs.get(job_id)
        if watched is None:
            return
        if watched.refreshing:
            watched.again = True
            return
        watched.refreshing = True
        asyncio.get_running_loop().create_task(self._refresh(job_id, watched))

    async def _refresh(self, job_id: str, watched: _Watched) -> None:
        try:
            while True:
                watched.again = False
                try:
                    record = await anyio.to_thread.run_sync(self._store.get, job_id)
                except Exception:
                    log.warning("re-reading a watched job failed", exc_info=True)
                    return
                self._update(watched, record)
                if not watched.again:
                    return
        finally:
            watched.refreshing = False

    def _update(self, watched: _Watched, record: JobRecord | None) -> None:
        if record is None:
            watched.gone = True
        elif watched.record is None or record.revision > watched.record.revision:
            watched.record = record
        else:
            return
        for event in list(watched.waiters):
            event.set()

    async def _poll_all(self) -> None:
        while True:
            await asyncio.sleep(FALLBACK_SECONDS)
            if not self._jobs:
                continue
            ids = list(self._jobs)
            try:
                found = await anyio.to_thread.run_sync(self._store.get_many, ids)
            except Exception:
                log.warning("re-reading watched jobs failed", exc_info=True)
                continue
            for job_id in ids:
                watched = self._jobs.get(job_id)
                if watched is not None:
                    self._update(watched, found.get(job_id))
