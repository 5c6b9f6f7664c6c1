"""The circuit breaker in front of the shared rate-limit counters."""

from __future__ import annotations

import pytest

from reelforge.ratelimits import Breaker

pytestmark = pytest.mark.unit


def test_breaker_fails_open_for_its_period_then_lets_one_call_probe() -> None:
    now = [0.0]
    breaker = Breaker(5.0, clock=lambda: now[0])
    assert breaker.enter() and not breaker.is_open
    breaker.failed()
    assert breaker.is_open
    now[0] = 4.9
    assert not breaker.enter(), "skips the store while open"
    now[0] = 5.0
    assert breaker.enter(), "the first call after the period probes"
    assert not breaker.enter(), "only one probe at a time; the others still skip"
    breaker.failed()  # the probe failed: open again for a whole period
    now[0] = 9.9
    assert not breaker.enter()
    now[0] = 10.0
    assert breaker.enter()
    breaker.succeeded()
    assert breaker.enter() and breaker.enter() and not breaker.is_open
