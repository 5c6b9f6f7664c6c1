"""What is worth retrying and how long to wait first: one definition for the SDK and engines.

The SDK (``reelforge.client``) imports this module, so it imports nothing from the server
and nothing outside the standard library. The engines drive ``tenacity`` with ``Backoff``
as its wait strategy; the SDK's sans-IO loops call ``Backoff.delay`` themselves.
"""

from __future__ import annotations

import random as _random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""Answers after which the same request may well succeed. 425 Too Early is left out: it
asks to repeat a request sent as TLS early data, which httpx and httpcore never send, so
from anything we talk to it would be a misuse we should not loop on. (google-genai retries
exactly this set too.)"""

SAFE_CREATE_RETRY_STATUSES = frozenset({408, 429})
"""Answers to a create that mean nothing was started, so repeating it cannot pay twice:
408 (the request never arrived whole) and 429 (turned away by rate limiting). Every other
failure of a create is ambiguous, 503 included: the AI/ML API documents it as "could not
complete your request", and a proxy answers 503 after the request reached the backend."""

NOT_SENT_ERRORS = frozenset({"ConnectError", "ConnectTimeout", "PoolTimeout"})
"""Transport errors (httpx, httpcore) raised before a request left: even a create is safe
to repeat. Matched by class name because the google-genai SDK may raise another library's."""

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 20.0


def never_sent(error: BaseException) -> bool:
    """Whether ``error`` is a connection failure that happened before anything was sent."""
    return any(kind.__name__ in NOT_SENT_ERRORS for kind in type(error).__mro__)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass
class Backoff:
    """Exponential backoff with full jitter, capped; the server's ``Retry-After`` wins.

    Full jitter (a uniform draw below the exponential ceiling) spreads out clients that
    failed together instead of having them return in lockstep. An instance is also a
    ``tenacity`` wait strategy: the failed attempt's ``retry_after_seconds``, when its
    exception has one, is the server's ``Retry-After``.
    """

    base: float = BACKOFF_BASE_SECONDS
    cap: float = BACKOFF_CAP_SECONDS
    random: _random.Random = field(default_factory=_random.Random)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds before retry ``attempt`` (0-based)."""
        if retry_after is not None:
            return retry_after
        return self.random.uniform(0.0, min(self.cap, self.base * 2.0**attempt))

    def __call__(self, retry_state: Any) -> float:
        """tenacity's wait protocol: after ``retry_state.attempt_number`` (1-based) failed."""
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None and outcome.failed else None
        retry_after = getattr(error, "retry_after_seconds", None)
        if not isinstance(retry_after, int | float):
            retry_after = None
        return self.delay(retry_state.attempt_number - 1, retry_after)
