"""A pool of worker threads in one process, and the housekeeping they share.

``reelforge worker`` runs one pool; ``reelforge serve`` runs one in each supervised
worker process (see ``supervisor``). The pool also:

* re-queues at start the jobs of dead worker processes of this machine (same
  ``REELFORGE_WORKER_NAME``), instead of waiting for their leases to run out;
* sweeps, on a timer, jobs whose attempts are used up (``JobStore.sweep``) and videos
  past retention (``retention``);
* delivers webhooks (``webhooks.WebhookDispatcher``, one thread) when given the keys;
* reacts to a thread lost to an engine that ignored its deadline: a native call cannot
  be interrupted, so the process must be recycled (``recycle_requested``; the process
  that owns the pool exits with ``EXIT_RECYCLE`` once the other jobs are drained and
  is started again by its supervisor), or, where nobody would restart it
  (``recycle=False``), a replacement thread takes the lost one's place.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time

from reelforge.engines import EngineRouter
from reelforge.errors import Interruption
from reelforge.jobs import JobRecord, JobStore, KeyStore
from reelforge.logs import throttle
from reelforge.settings import Settings
from reelforge.storage import Storage
from reelforge.worker.loop import Worker
from reelforge.worker.orphans import sweep_orphans
from reelforge.worker.retention import sweep_expired_videos
from reelforge.worker.webhooks import WebhookDispatcher

log = logging.getLogger(__name__)

HOSTNAME = socket.gethostname()
INSTANCE = secrets.token_hex(4)
"""Distinguishes this process from an earlier one that had the same PID (containers)."""
EXIT_RECYCLE = 75
"""Exit status of a worker process that must be started again (EX_TEMPFAIL)."""
SWEEP_MIN_SECONDS = 1.0


def make_worker_id(index: int, host: str = HOSTNAME, pid: int | None = None) -> str:
    """``host:pid:instance:index``; ``host`` must not contain ``:``."""
    return f"{host}:{pid or os.getpid()}:{INSTANCE}:{index}"


def worker_pid(worker_id: str, host: str = HOSTNAME) -> int | None:
    """The process id in a worker id of this machine, else ``None``."""
    parts = worker_id.split(":")
    if len(parts) != 4 or parts[0] != host or not parts[1].isdigit():
        return None
    return int(parts[1])


def is_dead_local_worker(worker_id: str, host: str = HOSTNAME) -> bool:
    """Whether ``worker_id`` names a worker process on this machine that no longer runs."""
    pid = worker_pid(worker_id, host)
    if pid is None:
        return False
    if pid == os.getpid():
        return worker_id.split(":")[2] != INSTANCE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class WorkerPool:
    """``count`` worker threads in this process."""

    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        storage: Storage,
        engines: EngineRouter,
        count: int,
        *,
        keys: KeyStore | None = None,
        recycle: bool = True,
    ) -> None:
        self.settings = settings
        self.stop_event = threading.Event()
        self.recycle_requested = threading.Event()
        self._recycle = recycle
        self._store = store
        self._storage = storage
        self._engines = engines
        self._host = settings.worker_name or HOSTNAME
        self._next_index = 0
        self._count = count
        self._slots: list[tuple[Worker, threading.Thread]] = []
        self._lock = threading.Lock()
        self._dispatcher = (
            WebhookDispatcher(
                settings,
                store,
                keys,
                storage,
                dispatcher_id=make_worker_id(-1, self._host),
                stop_event=self.stop_event,
            )
            if keys is not None
            else None
        )

    def _new_worker(self) -> Worker:
        index, self._next_index = self._next_index, self._next_index + 1
        return Worker(
            self.settings,
            self._store,
            self._storage,
            self._engines,
            worker_id=make_worker_id(index, self._host),
            stop_event=self.stop_event,
            on_abandoned=self._abandoned,
        )

    def start(self) -> None:
        def dead(worker_id: str) -> bool:
            return is_dead_local_worker(worker_id, self._host)

        recovered = self._store.expire_leases(dead)
        if recovered:
            log.info("re-queued jobs of stopped local workers", extra={"count": recovered})
        if self._store.outbox.expire_leases(dead):
            log.info("re-queued webhooks of stopped local workers")
        for _ in range(self._count):
            self._start_worker()
        threading.Thread(target=self._housekeep, name="worker-housekeeping", daemon=True).start()
        if self._dispatcher is not None:
            threading.Thread(target=self._dispatcher.run, name="webhooks", daemon=True).start()

    def _start_worker(self) -> None:
        worker = self._new_worker()
        thread = threading.Thread(target=worker.run, name=worker.worker_id, daemon=True)
        with self._lock:
            self._slots.append((worker, thread))
        thread.start()

    @property
    def workers(self) -> list[Worker]:
        with self._lock:
            return [worker for worker, _ in self._slots]

    def _housekeep(self) -> None:
        interval = max(SWEEP_MIN_SECONDS, self.settings.lease_seconds / 2)
        holder = make_worker_id(-2, self._host)
        next_retention = next_orphans = time.monotonic()
        while not self.stop_event.wait(interval):
            try:
                ended = self._store.sweep(self.settings.max_attempts)
                if ended:
                    log.warning("ended jobs whose workers kept dying", extra={"count": ended})
                if time.monotonic() >= next_retention:
                    next_retention = time.monotonic() + self.settings.retention_sweep_seconds
                    sweep_expired_videos(self.settings, self._store, self._storage, holder)
                if time.monotonic() >= next_orphans:
                    next_orphans = time.monotonic() + self.settings.orphan_sweep_seconds
                    sweep_orphans(self.settings, self._store, self._storage, holder)
            except Exception as error:
                throttle.log(
                    log,
                    logging.WARNING,
                    "housekeeping failed",
                    "housekeeping failed; trying again later",
                    exc_info=error,
                )

    def _abandoned(self, job: JobRecord) -> None:
        """A worker thread is stuck in an engine for good (see the module docstring)."""
        if self._recycle:
            log.error(
                "a worker thread is stuck in its engine; recycling this worker process",
                extra={"job_id": job.id},
            )
            self.recycle_requested.set()
            self.request_stop(self.settings.drain_seconds)
            return
        log.error(
            "a worker thread is stuck in its engine; starting a replacement thread",
            extra={"job_id": job.id},
        )
        with self._lock:
            self._slots = [
                slot
                for slot in self._slots
                if slot[0].current is None or slot[0].current.job.id != job.id
            ]
        self._start_worker()

    def request_stop(self, drain_seconds: float = 0.0) -> None:
        """Stop claiming; running jobs may finish within ``drain_seconds``, else go back.

        Calling it again with a shorter drain (a second Ctrl-C) shortens the wait.
        """
        until = time.monotonic() + drain_seconds
        stopping = self.stopping
        for worker in self.workers:
            worker.drain_until = min(worker.drain_until, until) if stopping else until
            running = worker.current
            if running is not None:
                if drain_seconds <= 0:
                    running.context.cancel(Interruption.SHUTDOWN)
                running.wake()
        self.stop_event.set()
        self._store.events.wake_all()

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker threads; ``True`` when all have ended (a thread stuck in
        an engine for good never ends: it is not waited for)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            slots = list(self._slots)
        alive = []
        for worker, thread in slots:
            running = worker.current
            if running is not None and running.abandoned.is_set():
                continue
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(remaining)
            if thread.is_alive():
                alive.append(thread)
        return not alive

    def stop(self, drain_seconds: float = 0.0, grace_seconds: float = 30.0) -> None:
        self.request_stop(drain_seconds)
        self.join(drain_seconds + grace_seconds)
        self._engines.close()
