"""One claimed job while it runs: its job context, heartbeat and deadline.

The heartbeat thread is what keeps every promise about a running job, whatever its
engine does:

* it renews the lease (and carries progress to the store) every
  ``min(lease / 3, 1 s)``, so a long engine call never loses the job;
* it cancels the job's context when the job's time is up, when its user cancelled it
  (any change to the job wakes the heartbeat at once, so a cancel is heard within
  milliseconds), when the worker must stop (after the drain period) or when another
  worker took the job over (or it was deleted);
* when the engine ignores the cancellation and the job is still running
  ``job_timeout_grace_seconds`` after its deadline (a hung model load, a stuck native
  call), it ends the job in ``error`` itself, stops renewing, and tells the worker that
  this thread is lost for good (``on_abandoned``). No job is held forever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from reelforge.engines import JobContext
from reelforge.errors import Interruption, JobInterrupted
from reelforge.jobs import JobRecord

if TYPE_CHECKING:
    from reelforge.worker.loop import Worker

log = logging.getLogger(__name__)

HEARTBEAT_MAX_INTERVAL_SECONDS = 1.0
TIMEOUT_NAME = "Timeout"


def timeout_message(limit_seconds: float, source: str = "global") -> str:
    if source == "global":
        raise_what = "REELFORGE_JOB_TIMEOUT_SECONDS"
    else:
        raise_what = (
            f"the {source} engine's budget (a diffusers model's timeout_seconds) or "
            "REELFORGE_JOB_TIMEOUT_MAX_SECONDS"
        )
    return (
        f"the generation took longer than the {limit_seconds:g} s limit ({source} budget); "
        f"try a shorter clip, or ask the operator to raise {raise_what}"
    )


class RunningJob:
    """Context manager around one attempt of a job; ``context`` goes to the engine."""

    def __init__(
        self,
        worker: Worker,
        job: JobRecord,
        *,
        on_abandoned: Callable[[JobRecord], None] | None = None,
    ) -> None:
        settings = worker.settings
        self._worker = worker
        self.job = job
        self._on_abandoned = on_abandoned
        self._progress = 0.0
        self._stage = "starting"
        self._dirty = True
        self._done = threading.Event()
        self._wakeup = threading.Event()
        self._poked = threading.Event()
        self.abandoned = threading.Event()
        self._started = time.monotonic()
        self.limit_seconds = settings.job_timeout_seconds
        self.budget_source = "global"
        """Which budget sets the deadline: ``global`` or the engine's name."""
        self.deadline = self._started + self.limit_seconds
        self._give_up_at = self.deadline + settings.job_timeout_grace_seconds
        self.context = JobContext(
            job.id,
            deadline=self.deadline,
            on_report=self._record_progress,
            on_save_state=self._save_state,
        )
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{job.id}", daemon=True)

    def __enter__(self) -> RunningJob:
        # Any change to the job, from any process, pokes the heartbeat: a cancel or a
        # delete is noticed within milliseconds instead of at the next beat.
        self._unwatch = self._worker.store.events.watch(self.job.id, self._poke)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._unwatch()
        self._done.set()
        self._wakeup.set()
        self._thread.join()

    def set_budget(self, seconds: float, source: str) -> None:
        """Replace the global limit with an engine's budget (capped by the ceiling), from
        the attempt's start; call before the engine runs (``scaled`` views copy it)."""
        settings = self._worker.settings
        self.limit_seconds = min(seconds, settings.job_timeout_max_seconds)
        self.budget_source = source
        self.deadline = self._started + self.limit_seconds
        self._give_up_at = self.deadline + settings.job_timeout_grace_seconds
        self.context.deadline = self.deadline
        self._wakeup.set()

    def wake(self) -> None:
        """Check the limits now (a stop was requested)."""
        self._wakeup.set()

    def _poke(self) -> None:
        self._poked.set()
        self._wakeup.set()

    def _beat(self) -> None:
        settings = self._worker.settings
        interval = min(settings.lease_seconds / 3, HEARTBEAT_MAX_INTERVAL_SECONDS)
        next_beat = time.monotonic()
        while not self._done.is_set():
            self._check_limits()
            now = time.monotonic()
            if now >= self._give_up_at:
                self._give_up()
                return
            if self._poked.is_set():
                self._poked.clear()
                if not self._look():
                    return
            if now >= next_beat:
                if not self._renew():
                    return
                next_beat = now + interval
            self._wakeup.wait(max(0.0, next_beat - time.monotonic()))
            self._wakeup.clear()

    def _renew(self) -> bool:
        """Extend the lease and store progress; ``False`` once the job is not ours."""
        worker, settings = self._worker, self._worker.settings
        try:
            beat = worker.store.heartbeat(
                self.job.id,
                worker.worker_id,
                lease_seconds=settings.lease_seconds,
                progress=self._progress if self._dirty else None,
                stage=self._stage if self._dirty else None,
            )
        except Exception:
            log.warning("heartbeat failed", exc_info=True, extra={"job_id": self.job.id})
            return True
        self._dirty = False
        if not beat.owned:
            self.context.cancel(Interruption.LEASE_LOST)
            return False
        if beat.cancel_requested:
            self.context.cancel(Interruption.CANCELLED)
        return True

    def _look(self) -> bool:
        """Read (never write) the job after a change: cancelled, deleted, taken over?"""
        try:
            job = self._worker.store.get(self.job.id)
        except Exception:
            log.warning("could not read the job", exc_info=True, extra={"job_id": self.job.id})
            return True
        if job is None or job.worker_id != self._worker.worker_id:
            self.context.cancel(Interruption.LEASE_LOST)
            return False
        if job.cancel_requested_at is not None:
            self.context.cancel(Interruption.CANCELLED)
        return True

    def _check_limits(self) -> None:
        worker = self._worker
        now = time.monotonic()
        if worker.stop_event.is_set() and now >= worker.drain_until:
            self.context.cancel(Interruption.SHUTDOWN)
        if now >= self.deadline:
            message = timeout_message(self.limit_seconds, self.budget_source)
            self.context.cancel(Interruption.TIMEOUT, message)

    def _give_up(self) -> None:
        """The engine ignored its cancellation past the grace period."""
        worker = self._worker
        log.error(
            "engine did not stop after its deadline; ending the job and abandoning the thread",
            extra={"job_id": self.job.id},
        )
        worker.store.fail(
            self.job.id,
            worker.worker_id,
            name=TIMEOUT_NAME,
            message=timeout_message(self.limit_seconds, self.budget_source),
        )
        self.abandoned.set()
        if self._on_abandoned is not None:
            self._on_abandoned(self.job)

    def _record_progress(self, fraction: float, stage: str) -> None:
        fraction = max(self._progress, min(1.0, fraction))
        if fraction != self._progress or stage != self._stage:
            self._progress, self._stage, self._dirty = fraction, stage, True

    def _save_state(self, state: Mapping[str, Any]) -> None:
        worker = self._worker
        if not worker.store.save_engine_state(self.job.id, worker.worker_id, state):
            self.context.cancel(Interruption.LEASE_LOST)
            raise JobInterrupted(Interruption.LEASE_LOST)
