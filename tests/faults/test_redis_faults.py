"""Fault injection: the rate-limit counters' Redis refused and hung.

A throw-away ``redis-server`` behind a loopback ``FaultProxy`` (never the machine's
shared Redis). The API must stay fast and let requests through (fail open, as
documented) whatever Redis does, and count again once it is back."""

from __future__ import annotations

import secrets
import time

import httpx
import pytest

from fakes.proxy import FaultProxy
from support import LiveServer, wait_until
from throwaway import ThrowawayRedis

pytestmark = pytest.mark.faults

RPM = 5
BREAKER_SECONDS = 2.0


@pytest.fixture(scope="module")
def redis():
    server = ThrowawayRedis().start()
    proxy = FaultProxy(server.address).start()
    yield proxy
    proxy.stop()
    server.stop()


@pytest.fixture(scope="module")
def api(redis, tmp_path_factory):
    live = LiveServer(
        home=tmp_path_factory.mktemp("redis-faults"),
        keys=tuple(f"test-{secrets.token_hex(8)}" for _ in range(2)),
        env={
            "REELFORGE_WORKERS": "0",
            "REELFORGE_REDIS_URL": f"redis://{redis.address}/0",
            "REELFORGE_DEFAULT_READ_RPM": str(RPM),
            "REELFORGE_REDIS_TIMEOUT_SECONDS": "0.5",
            "REELFORGE_REDIS_BREAKER_SECONDS": str(BREAKER_SECONDS),
        },
    ).start()
    yield live
    live.stop()


def timed_reads(api: LiveServer, key: str, count: int) -> tuple[list[int], list[float]]:
    statuses, seconds = [], []
    for _ in range(count):
        started = time.monotonic()
        answer = httpx.get(f"{api.url}/v2/video/generations", headers=api.headers(key), timeout=30)
        seconds.append(time.monotonic() - started)
        statuses.append(answer.status_code)
    return statuses, seconds


@pytest.mark.parametrize("mode", ["hang", "down"])
def test_a_hung_or_refusing_redis_fails_open_fast_then_counts_again(api, redis, mode) -> None:
    """A hung Redis made every rate-limited request take ~5 s and tied up the thread
    pool; the fail-open path covered only a refused connection."""
    key = api.keys[0] if mode == "hang" else api.keys[1]
    redis.set(mode)
    try:
        statuses, seconds = timed_reads(api, key, 3 * RPM)
        assert statuses == [200] * (3 * RPM), "fails open: nobody is refused"
        # Bounds with room for a loaded CI machine; a hung Redis used to cost 5 s each.
        assert max(seconds) < 3, f"slowest {max(seconds):.2f} s"
        assert sum(seconds) < 6, f"{sum(seconds):.2f} s for {len(seconds)} requests"
    finally:
        redis.set("forward")
    # After the breaker's period one request probes, finds Redis well, and counting resumes.
    wait_until(lambda: timed_reads(api, key, 1)[0] == [429], timeout=BREAKER_SECONDS + 20)
