"""The one definition of what is retryable, shared by the SDK and the engines."""

from __future__ import annotations

import random

import pytest
import tenacity

from reelforge.retrying import (
    RETRYABLE_STATUSES,
    SAFE_CREATE_RETRY_STATUSES,
    Backoff,
    never_sent,
)

pytestmark = pytest.mark.unit


def test_safe_create_statuses_are_retryable_and_include_408() -> None:
    assert SAFE_CREATE_RETRY_STATUSES <= RETRYABLE_STATUSES
    assert 408 in SAFE_CREATE_RETRY_STATUSES and 500 not in SAFE_CREATE_RETRY_STATUSES


def test_connection_failures_before_sending_are_told_apart() -> None:
    import httpcore
    import httpx

    request = httpx.Request("GET", "http://x.test")
    assert never_sent(httpx.ConnectError("no", request=request))
    assert never_sent(httpx.ConnectTimeout("no", request=request))
    assert never_sent(httpcore.PoolTimeout("no"))
    assert not never_sent(httpx.ReadTimeout("no", request=request))
    assert not never_sent(httpx.RemoteProtocolError("no", request=request))


def test_jitter_spreads_waits_of_the_same_attempt_within_the_ceiling() -> None:
    backoff = Backoff(base=1.0, cap=10.0, random=random.Random(3))
    for attempt, ceiling in [(0, 1.0), (2, 4.0), (5, 10.0)]:
        waits = [backoff.delay(attempt) for _ in range(50)]
        assert all(0.0 <= wait <= ceiling for wait in waits)
        assert len(set(waits)) == len(waits)  # no two the same: jitter is applied
        assert min(waits) < ceiling * 0.2 and max(waits) > ceiling * 0.8  # full jitter


class Busy(Exception):
    def __init__(self, retry_after_seconds: float | None = None) -> None:
        super().__init__("busy")
        self.retry_after_seconds = retry_after_seconds


def run(failures: list[Exception], backoff: Backoff) -> list[float]:
    """The sleeps tenacity takes with ``backoff`` while ``failures`` are raised in turn."""
    slept: list[float] = []
    pending = list(failures)

    def call() -> str:
        if pending:
            raise pending.pop(0)
        return "done"

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(Busy),
        wait=backoff,
        sleep=slept.append,
        stop=tenacity.stop_after_attempt(10),
        reraise=True,
    )
    assert retrying(call) == "done"
    return slept


def test_as_a_tenacity_wait_retry_after_wins_else_backoff() -> None:
    backoff = Backoff(base=2.0, cap=5.0, random=random.Random(1))
    slept = run([Busy(7.0), Busy(), Busy(0.0), Busy(), Busy()], backoff)
    assert slept[0] == 7.0 and slept[2] == 0.0  # Retry-After, even above the cap
    assert 0.0 <= slept[1] <= 4.0  # the second attempt: 2 * 2**1
    assert 0.0 <= slept[3] <= 5.0 and 0.0 <= slept[4] <= 5.0  # capped
    again = run([Busy(), Busy()], Backoff(base=2.0, cap=5.0, random=random.Random(2)))
    assert again != slept[:2]


def test_poll_pauses_grow_to_a_cap_and_are_jittered() -> None:
    from reelforge.engines.upstream.progress import POLL_JITTER, PollSchedule

    nominal = [10.0, 12.5, 15.625, 19.53125, 24.4140625, 30.0, 30.0]
    runs = [PollSchedule(10.0, rng=random.Random(seed)) for seed in (1, 2)]
    pauses = [[schedule.next() for _ in nominal] for schedule in runs]
    for run_pauses in pauses:
        for pause, expected in zip(run_pauses, nominal, strict=True):
            assert expected * (1 - POLL_JITTER) <= pause <= expected * (1 + POLL_JITTER)
    assert all(a != b for a, b in zip(*pauses, strict=True))  # the same poll, different pauses


def test_a_user_cancel_cancels_upstream_too() -> None:
    """The job is cancelled during a long poll interval: the engine stops at once and
    asks its upstream to stop as well (where the upstream can)."""
    import threading
    import time

    from reelforge.engines.base import GenerationRequest, Inputs, JobContext
    from reelforge.engines.upstream.engine import Pending, UpstreamEngine, UpstreamOptions
    from reelforge.errors import Interruption, JobInterrupted
    from reelforge.media.netguard import FetchPolicy

    cancelled: list[str] = []

    class Forever(UpstreamEngine):
        name = "forever"
        state_key = "upstream_id"

        def prepare(self, request, inputs):
            return {}

        def submit(self, payload):
            return "up-7"

        def poll(self, upstream_id):
            return Pending()

        def fetch_result(self, result, path, progress):
            raise AssertionError("never finishes")

        def cancel_upstream(self, upstream_id):
            cancelled.append(upstream_id)

    options = UpstreamOptions(
        policy=FetchPolicy(), poll_seconds=30, timeout_seconds=600, max_video_bytes=2**20
    )
    engine = Forever(options)
    job = JobContext("j1")
    request = GenerationRequest(
        model="veo2", prompt="p", duration_seconds=5, width=1280, height=720, seed=1
    )
    threading.Timer(0.3, job.cancel, args=(Interruption.CANCELLED,)).start()
    began = time.monotonic()
    with pytest.raises(JobInterrupted):
        engine.generate(request, Inputs(), job)
    assert time.monotonic() - began < 5
    assert cancelled == ["up-7"]
    engine.close()
