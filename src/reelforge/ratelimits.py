"""Requests per minute per key, shared by every API process (the ``limits`` library).

Counters live in the API process's memory by default (one process: the embedded
setup), or in Redis (``REELFORGE_REDIS_URL``) so that several API replicas enforce one
limit together. Windows are moving (a burst at a window's edge cannot double the rate).

Every limited answer carries the IETF ``RateLimit-Limit``, ``RateLimit-Remaining`` and
``RateLimit-Reset`` (seconds) headers; a refused one is a 429 in the published shape with
``Retry-After``. If Redis cannot be reached the request is let through and the failure
logged (at most once a minute, ``logs.throttle``): a broken counter store must not take
the API down.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Literal

from reelforge.errors import RateLimited
from reelforge.logs import throttle
from reelforge.settings import Settings

log = logging.getLogger(__name__)

Kind = Literal["create", "read"]
WHAT = {"create": "create", "read": "read (GET, list, events)"}


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        from limits import storage, strategies

        self.shared = bool(settings.redis_url)
        uri = settings.redis_url or "memory://"
        self._storage = storage.storage_from_string(uri)
        self._limiter = strategies.MovingWindowRateLimiter(self._storage)

    def check(self, owner: str, kind: Kind, per_minute: int | None) -> dict[str, str]:
        """Count one request; the ``RateLimit-*`` headers, or ``RateLimited`` (429)."""
        if per_minute is None:
            return {}
        from limits import RateLimitItemPerMinute

        item = RateLimitItemPerMinute(per_minute)
        try:
            allowed = self._limiter.hit(item, kind, owner)
            reset_at, remaining = self._limiter.get_window_stats(item, kind, owner)
        except Exception:
            throttle.log(
                log,
                logging.WARNING,
                "ratelimit-store",
                "rate-limit counters unreachable; letting requests through",
                exc_info=True,
            )
            return {}
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
