"""Requests per minute per key, shared by every API process (the ``limits`` library).

Counters live in the API process's memory by default (one process: the embedded
setup), or in Redis (``REELFORGE_REDIS_URL``) so that several API replicas enforce one
limit together. Windows are moving (a burst at a window's edge cannot double the rate).

Every limited answer carries the IETF ``RateLimit-Limit``, ``RateLimit-Remaining`` and
``RateLimit-Reset`` (seconds) headers; a refused one is a 429 in the published shape with
``Retry-After``. If Redis cannot be reached, or does not answer within
``REELFORGE_REDIS_TIMEOUT_SECONDS``, the request is let through and the failure logged
(at most once a minute, ``logs.throttle``); for ``REELFORGE_REDIS_BREAKER_SECONDS`` after
that, requests skip Redis altogether (``Breaker``), then one probes it. A broken or hung
counter store must not take the API down or slow it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Literal

from reelforge.errors import RateLimited
from reelforge.logs import throttle
from reelforge.settings import Settings

log = logging.getLogger(__name__)

Kind = Literal["create", "read"]
WHAT = {"create": "create", "read": "read (GET, list, events)"}


class Breaker:
    """Fails open for ``seconds`` after a failure, then lets one call probe: a Redis
    that hangs (accepts, never answers) costs one socket timeout per ``seconds``, not
    one per request, and never ties up the API's thread pool."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._open_until = 0.0
        self._probing = False

    @property
    def is_open(self) -> bool:
        """True while calls must skip the counter store (a probe may be running)."""
        with self._lock:
            return self._probing or self._clock() < self._open_until

    def enter(self) -> bool:
        """``True`` if this call may use the store (closed, or this call is the probe)."""
        with self._lock:
            if self._probing:
                return False
            if self._open_until:
                if self._clock() < self._open_until:
                    return False
                self._probing = True
            return True

    def succeeded(self) -> None:
        with self._lock:
            self._open_until = 0.0
            self._probing = False

    def failed(self) -> None:
        with self._lock:
            self._open_until = self._clock() + self.seconds
            self._probing = False


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        from limits import storage, strategies

        self.shared = bool(settings.redis_url)
        if settings.redis_url:
            timeout = settings.redis_timeout_seconds
            self._storage = storage.storage_from_string(
                settings.redis_url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
            )
        else:
            self._storage = storage.storage_from_string("memory://")
        self._limiter = strategies.MovingWindowRateLimiter(self._storage)
        self.breaker = Breaker(settings.redis_breaker_seconds)

    @property
    def needs_thread(self) -> bool:
        """Whether ``check`` may wait on the network (else it is safe on the event loop)."""
        return self.shared and not self.breaker.is_open

    def check(self, owner: str, kind: Kind, per_minute: int | None) -> dict[str, str]:
        """Count one request; the ``RateLimit-*`` headers, or ``RateLimited`` (429)."""
        if per_minute is None:
            return {}
        if not self.breaker.enter():
            return {}  # the counter store failed moments ago: let the request through
        from limits import RateLimitItemPerMinute

        item = RateLimitItemPerMinute(per_minute)
        try:
            allowed = self._limiter.hit(item, kind, owner)
            reset_at, remaining = self._limiter.get_window_stats(item, kind, owner)
        except Exception:
            self.breaker.failed()
            throttle.log(
                log,
                logging.WARNING,
                "ratelimit-store",
                "rate-limit counters unreachable; letting requests through",
                exc_info=True,
            )
            return {}
        self.breaker.succeeded()
        reset = max(0, math.ceil(reset_at - time.time()))
        headers = {
            "RateLimit-Limit": str(per_minute),
            "RateLimit-Remaining": str(max(0, remaining)),
            "RateLimit-Reset": str(reset),
        }
        if not allowed:
            raise RateLimited(
                f"Too Many Requests: this key may {WHAT[kind]} at most {per_minute} times a "
                f"minute; try again in {max(1, reset)} s",
                retry_after_seconds=max(1, reset),
                headers=headers,
            )
        return headers


class FailedAuthBudget:
    """Failed authentications per client address and minute, in this process's memory.

    A client past the budget gets 429 before its key is looked up, so guessing keys
    costs the database nothing; keys that authenticate are never counted (or slowed)."""

    def __init__(self, per_minute: int | None) -> None:
        from limits import RateLimitItemPerMinute, storage, strategies

        self._item = RateLimitItemPerMinute(per_minute) if per_minute else None
        self._limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())

    def check(self, client: str) -> None:
        """``RateLimited`` if ``client`` failed too often within the last minute."""
        if self._item is None or self._limiter.test(self._item, "auth", client):
            return
        reset_at, _ = self._limiter.get_window_stats(self._item, "auth", client)
        wait = max(1, math.ceil(reset_at - time.time()))
        raise RateLimited(
            f"Too Many Requests: too many failed authentications from this address; try "
            f"again in {wait} s",
            retry_after_seconds=wait,
        )

    def failed(self, client: str) -> None:
        if self._item is not None:
            self._limiter.hit(self._item, "auth", client)
