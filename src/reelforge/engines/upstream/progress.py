"""The job's progress bar while an upstream works, and the pauses between polls."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable

from reelforge.engines.base import JobContext

PROGRESS_TICK_SECONDS = 1.0
"""Longest silence towards ``JobContext.report`` while waiting: the bar keeps rising
through a long poll interval or ``Retry-After``."""
PAST_DEADLINE_PAUSE_SECONDS = 0.05
"""``JobContext.sleep`` returns at once once the job's deadline has passed (the worker's
cancellation follows within a heartbeat); waits pause this long so they do not spin."""

POLL_GROWTH = 1.25
POLL_CAP_FACTOR = 3.0
"""Polls start at the configured interval and grow to at most this multiple of it."""
POLL_JITTER = 0.2
"""Each pause between polls is drawn within this share either side of the schedule, so
jobs that started together do not poll in lockstep."""

# The engine's share of the job's progress bar, in order.
PROGRESS_SUBMITTING = 0.0
PROGRESS_QUEUED = 0.05
PROGRESS_GENERATED = 0.85
"""The time-based estimate approaches this while the upstream generates, never passing it."""
PROGRESS_DOWNLOADED = 0.98

Fraction = float | Callable[[], float]
"""A fixed fraction of the bar, or one that moves with the clock (the generating estimate)."""


def generating_progress(elapsed_seconds: float, typical_seconds: float) -> float:
    """A rising estimate while the upstream works: ~55% of the way at ``typical_seconds``,
    approaching ``PROGRESS_GENERATED`` but never reaching it, so 100% means done."""
    share = 1.0 - math.exp(-max(elapsed_seconds, 0.0) / typical_seconds)
    return generating_share(share)


def rising_estimate(
    clock: Callable[[], float], since: float, typical_seconds: float
) -> Callable[[], float]:
    """``generating_progress`` since ``since`` on ``clock``, read whenever it is reported."""
    return lambda: generating_progress(clock() - since, typical_seconds)


def generating_share(share: float) -> float:
    """The bar for an upstream that says how far it is (``share`` in [0, 1])."""
    share = max(0.0, min(share, 1.0))
    return PROGRESS_QUEUED + (PROGRESS_GENERATED - PROGRESS_QUEUED) * share


class Progress:
    """What the job's bar shows while the engine waits, and the waiting itself.

    ``JobContext.report`` records one value; while the engine waits this one keeps
    reporting at least every ``PROGRESS_TICK_SECONDS`` (re-reading a value that may move
    with the clock), and sleeps through ``JobContext.sleep``, which wakes at once and
    raises ``JobInterrupted`` when the job is cancelled. ``wait`` is what tenacity sleeps
    with, so retries are cancellable and keep the bar alive too.
    """

    def __init__(
        self,
        job: JobContext,
        *,
        clock: Callable[[], float] = time.monotonic,
        tick_seconds: float = PROGRESS_TICK_SECONDS,
    ) -> None:
        self.job = job
        self.clock = clock
        self._tick = tick_seconds
        self._fraction: Fraction = PROGRESS_SUBMITTING
        self.stage = "starting"

    def set(self, fraction: Fraction, stage: str) -> None:
        """Report ``fraction`` at ``stage`` now and while waiting; raises if cancelled."""
        self._fraction, self.stage = fraction, stage
        self.report()
        self.job.raise_if_cancelled()

    def report(self) -> None:
        fraction = self._fraction() if callable(self._fraction) else self._fraction
        self.job.report(min(fraction, PROGRESS_DOWNLOADED), self.stage)

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, reporting before each tick; raises ``JobInterrupted`` at once
        when the job is cancelled."""
        until = self.clock() + max(seconds, 0.0)
        while True:
            self.report()
            left = until - self.clock()
            if left <= 0:
                return
            step = min(left, self._tick)
            self.job.sleep(step)
            if self.job.remaining <= 0:
                time.sleep(min(step, PAST_DEADLINE_PAUSE_SECONDS))


class PollSchedule:
    """Pauses between polls: ``first``, growing by ``POLL_GROWTH`` up to a cap, jittered."""

    def __init__(
        self,
        first: float,
        *,
        cap_factor: float = POLL_CAP_FACTOR,
        rng: random.Random | None = None,
    ) -> None:
        self._next = first
        self._cap = first * cap_factor
        self._random = rng or random.Random()

    def next(self) -> float:
        interval = self._next
        self._next = min(self._next * POLL_GROWTH, self._cap)
        return interval * self._random.uniform(1.0 - POLL_JITTER, 1.0 + POLL_JITTER)
