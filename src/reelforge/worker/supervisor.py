"""Worker processes for ``reelforge serve``: engines never run inside the API process.

An engine may crash hard (a segfault in a native library, CUDA out of memory,
``os._exit``) or hang in a call nobody can interrupt. Either would take the API down if
it ran in the API's process. ``serve`` therefore runs its workers in a child process
(``python -c ...child_main()``) that it supervises:

* the child gets the parent's settings over its stdin, which then stays open: when the
  parent dies, however it dies, the child reads end-of-file and stops (handing its jobs
  back), so no orphan keeps working;
* when the child dies, the supervisor ends the leases of the jobs it held at once (they
  run again, or end in ``error`` once their attempts are used up, as the lease rules
  say) and starts a new child, backing off if children keep dying;
* a child that had to abandon a thread stuck in its engine exits with
  ``EXIT_RECYCLE`` and is restarted at once;
* on shutdown the child gets SIGTERM and drains like ``reelforge worker``; ``hurry``
  (a second Ctrl-C on ``serve``) sends SIGUSR1, and the child hands its jobs back at once
  (not a second SIGTERM: two signals close together may arrive as one).

Job events travel between the processes through the job store's transport, so pick-up
and long-poll latencies stay in milliseconds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from reelforge.jobs import JobStore
from reelforge.settings import Settings
from reelforge.worker.pool import EXIT_RECYCLE, HOSTNAME, worker_pid

log = logging.getLogger(__name__)

RESTART_FIRST_SECONDS = 0.5
RESTART_MAX_SECONDS = 30.0
HEALTHY_AFTER_SECONDS = 60.0
"""A child that lived this long resets the restart back-off."""
STOP_GRACE_SECONDS = 30.0
STOPPED_GRACE_SECONDS = 5.0
"""After a worker process exits cleanly, how long to wait for the service's own stop."""
DRAIN_NOTICE_SECONDS = 10.0
"""While a stop drains, how often it says it is still waiting."""
CHILD_COMMAND = "from reelforge.worker.supervisor import child_main; child_main()"


class WorkerSupervisor:
    """Keeps one worker process (running ``concurrency`` jobs at a time) alive."""

    def __init__(self, settings: Settings, store: JobStore, concurrency: int) -> None:
        self.settings = settings
        self._store = store
        self._concurrency = concurrency
        self._host = settings.worker_name or HOSTNAME
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._changed = threading.Condition()
        self._thread = threading.Thread(
            target=self._supervise, name="worker-supervisor", daemon=True
        )
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def start(self) -> None:
        self._spawn()
        self._thread.start()

    def _spawn(self) -> None:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-c", CHILD_COMMAND],
            stdin=subprocess.PIPE,
            start_new_session=False,
        )
        assert process.stdin is not None
        process.stdin.write(pickle.dumps((self.settings, self._concurrency)))
        process.stdin.flush()  # and keep it open: its end-of-file means "parent gone"
        with self._changed:
            self._process = process
            self._changed.notify_all()
        log.info("worker process started", extra={"pid": process.pid})

    def _supervise(self) -> None:
        delay = RESTART_FIRST_SECONDS
        while True:
            process = self._process
            assert process is not None
            started = time.monotonic()
            code = process.wait()
            # A clean exit is a requested stop: usually the whole service is stopping (a
            # service manager or a terminal signals every process of the group), so give
            # our own stop a moment to arrive before starting a new worker.
            if self._stopping.wait(STOPPED_GRACE_SECONDS if code == 0 else 0):
                return
            self._recover(process.pid)
            if code == EXIT_RECYCLE:
                log.warning("worker process asked to be recycled", extra={"pid": process.pid})
                delay = RESTART_FIRST_SECONDS
            else:
                how = f"signal {signal.Signals(-code).name}" if code < 0 else f"status {code}"
                log.error(
                    "worker process died (%s); restarting it", how, extra={"pid": process.pid}
                )
                if time.monotonic() - started > HEALTHY_AFTER_SECONDS:
                    delay = RESTART_FIRST_SECONDS
                if self._stopping.wait(delay):
                    return
                delay = min(delay * 2, RESTART_MAX_SECONDS)
            self.restarts += 1
            with contextlib.suppress(Exception):
                if process.stdin is not None:
                    process.stdin.close()
            self._spawn()

    def _recover(self, pid: int) -> None:
        """Free the dead child's jobs now instead of when their leases run out."""

        def dead(worker_id: str) -> bool:
            return worker_pid(worker_id, self._host) == pid

        try:
            freed = self._store.expire_leases(dead)
            self._store.outbox.expire_leases(dead)
            ended = self._store.sweep(self.settings.max_attempts)
        except Exception:
            log.exception("could not recover the jobs of a dead worker process")
            return
        if freed or ended:
            log.info(
                "recovered the jobs of a dead worker process",
                extra={"requeued": freed, "given_up": ended},
            )

    def stop(self, drain_seconds: float) -> None:
        """SIGTERM the child; it drains for ``drain_seconds``, then it is killed."""
        self._stopping.set()
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + drain_seconds + STOP_GRACE_SECONDS
            while process.poll() is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    log.error("worker process did not stop; killing it", extra={"pid": process.pid})
                    process.kill()
                    process.wait()
                    break
                try:
                    process.wait(min(left, DRAIN_NOTICE_SECONDS))
                except subprocess.TimeoutExpired:
                    # Not silence: say what the stop waits for, and how to cut it short.
                    log.info(
                        "still waiting for the running jobs to finish (up to %.0f s more); "
                        "a second Ctrl-C or SIGTERM hands them back now",
                        max(0.0, deadline - time.monotonic() - STOP_GRACE_SECONDS),
                    )
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()

    def hurry(self) -> None:
        """Have the child hand its running jobs back now instead of draining."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGUSR1)


def child_main() -> None:
    """Entry point of a supervised worker process (see the module docstring)."""
    settings, concurrency = pickle.load(sys.stdin.buffer)  # noqa: S301 - our own parent
    code = run_worker_process(settings, concurrency, supervised=True)
    logging.shutdown()
    # Not SystemExit: a thread abandoned inside an engine must not hold up the exit.
    os._exit(code)


def run_worker_process(
    settings: Settings, concurrency: int, *, supervised: bool = False, announce: Any = None
) -> int:
    """Run a worker pool until stopped; the process exit status.

    SIGTERM (and, unless ``supervised``, SIGINT) stops claiming and lets running jobs
    finish within ``drain_seconds`` before handing them back; a second signal hands back
    at once. Supervised, SIGINT is left to the parent (a terminal's Ctrl-C reaches the
    whole process group) and end-of-file on stdin means the parent is gone.
    """
    from reelforge.engines import EngineRouter
    from reelforge.logs import configure_logging
    from reelforge.runtime import open_database, open_storage
    from reelforge.worker.pool import WorkerPool

    configure_logging(settings.log_level, settings.log_format)
    engines = EngineRouter(settings)  # configuration mistakes stop us before anything else
    engines.start(settings.worker_models)  # and speed options that cannot run here
    storage = open_storage(settings)
    # A supervised child finds the schema migrated by its parent; never race it.
    database = open_database(settings, auto_migrate=False if supervised else None)
    pool = WorkerPool(
        settings, database.jobs, storage, engines, concurrency, keys=database.keys, recycle=True
    )
    signals = 0

    def on_signal(number: int, _frame: object) -> None:
        nonlocal signals
        signals += 1
        drain = settings.drain_seconds if signals == 1 and number != signal.SIGUSR1 else 0.0
        # Supervised, the signal comes from `serve`, which has said why (e.g. Ctrl-C).
        cause = (
            "stop asked by the serving process"
            if supervised
            else f"{signal.Signals(number).name}: stopping"
        )
        if drain:
            log.info(
                "%s; running jobs get %g s to finish before they are handed back", cause, drain
            )
        else:
            log.info("%s; handing running jobs back now", cause)
        pool.request_stop(drain)

    signal.signal(signal.SIGTERM, on_signal)
    if supervised:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGUSR1, on_signal)

        def watch_parent() -> None:
            sys.stdin.buffer.read()
            if not pool.stopping:
                log.warning("the serving process is gone; stopping this worker")
                pool.request_stop(settings.drain_seconds)

        threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()
    else:
        signal.signal(signal.SIGINT, on_signal)
    database.start_listening()
    pool.start()
    if announce is not None:
        announce(pool)
    try:
        while not pool.join(timeout=0.5):
            pass
    finally:
        engines.close()
        database.close()
    return EXIT_RECYCLE if pool.recycle_requested.is_set() else 0
