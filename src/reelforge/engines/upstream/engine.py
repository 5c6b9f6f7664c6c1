"""``UpstreamEngine``: a generation handed to a remote service, followed to its end, once.

A subclass says how to talk to its service through four hooks (``prepare``, ``submit``,
``poll``, ``fetch_result``); everything a worker needs around them lives here:

* **No double charges.** A saved upstream id (``request.engine_state``) is resumed, with
  the time already spent counted against the deadline. Otherwise the create is sent and
  retried only on ``Transient`` failures, which ``submit`` raises only when the answer
  proves nothing was started (``reelforge.retrying.SAFE_CREATE_RETRY_STATUSES``, or a
  connection that failed before sending). The id is saved the moment it is known.
* **Patient, cancellable following.** Polls start at ``poll_seconds`` and grow, jittered;
  ``Transient`` failures are retried with ``Retry-After`` or jittered backoff, at most
  ``MAX_TRANSIENT_FAILURES`` in a row; past ``timeout_seconds`` the job fails naming the
  upstream id. Every wait reports progress each second and wakes at once on cancellation.
* **A checked result.** The video lands in a temporary file (``VideoFiles``), is probed
  (``finished_clip``), and carries the upstream's credits when it reports them.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import httpx
import tenacity

from reelforge.engines.base import Capabilities, GenerationRequest, Inputs, JobContext
from reelforge.engines.upstream.progress import (
    PROGRESS_DOWNLOADED,
    PROGRESS_GENERATED,
    PROGRESS_QUEUED,
    PROGRESS_SUBMITTING,
    PollSchedule,
    Progress,
    generating_share,
    rising_estimate,
)
from reelforge.engines.upstream.video import VideoFiles, download_video, finished_clip
from reelforge.errors import (
    EngineError,
    Interruption,
    JobInterrupted,
    ReelforgeError,
    ServiceUnavailable,
    UpstreamError,
    unbilled,
)
from reelforge.media.clip import Clip
from reelforge.media.fetch import VIDEO_FETCH_TIMEOUT_SECONDS, format_seconds
from reelforge.media.netguard import FetchPolicy
from reelforge.retrying import Backoff

if TYPE_CHECKING:
    from reelforge.settings import Settings

logger = logging.getLogger(__name__)

P = TypeVar("P")
R = TypeVar("R")
T = TypeVar("T")

MAX_TRANSIENT_FAILURES = 5
"""Consecutive 408/429/5xx/connection failures tolerated before a job fails."""
TRANSIENT_BACKOFF_CAP_SECONDS = 60.0
"""Longest jittered pause after a transient failure (a ``Retry-After`` may be longer)."""

AUTH_REJECTED_MESSAGE = (
    "the upstream video service rejected reelforge's credentials (the operator's key is "
    "wrong, expired or out of credits); contact the operator of this service"
)
"""What a user sees when the upstream refuses our key: nothing they can fix themselves."""


class Transient(Exception):
    """A failure worth retrying (408, 429, 5xx, dropped connection).

    ``retry_after_seconds`` is the server's ``Retry-After``; ``Backoff`` honours it.
    """

    def __init__(self, message: str, retry_after_seconds: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_seconds = retry_after_seconds


@dataclass(frozen=True)
class Pending:
    """The upstream is still at work: ``queued`` or ``generating``."""

    stage: str = "generating"
    estimate: float | None = None
    """The upstream's own share done in [0, 1], when it says; else the bar follows the
    clock (``generating_progress``)."""


@dataclass(frozen=True)
class Done(Generic[R]):
    """The upstream finished; ``result`` is what ``fetch_result`` turns into a file."""

    result: R


def auth_rejected(engine: str, status: int | str, detail: str | None) -> ServiceUnavailable:
    """The user-facing error for 401/403 upstream; the operator learns the details from logs."""
    logger.error(
        "upstream rejected the configured credentials",
        extra={"engine": engine, "status": status, "detail": (detail or "")[:300]},
    )
    return ServiceUnavailable(AUTH_REJECTED_MESSAGE)


def maybe_started(service: str, what: str) -> UpstreamError:
    """A create failed ambiguously: say why it was not repeated."""
    return UpstreamError(
        f"{service} failed while starting the generation ({what}); it was not retried "
        "because it may have started anyway and would be charged twice. Try again"
    )


@dataclass(frozen=True)
class UpstreamOptions:
    """How an upstream engine waits and what it accepts back. The defaults are
    ``Settings``'s alone: engines get these from ``from_settings`` (tests spell them out)."""

    policy: FetchPolicy
    """The address rules a video download obeys."""
    poll_seconds: float
    """The first pause between polls, and the scale of the backoff after failures."""
    timeout_seconds: float
    """How long a generation may take upstream, from its create."""
    max_video_bytes: int
    download_timeout_seconds: float = VIDEO_FETCH_TIMEOUT_SECONDS

    def __post_init__(self) -> None:
        if min(self.poll_seconds, self.timeout_seconds, self.max_video_bytes) <= 0:
            raise ValueError("poll_seconds, timeout_seconds and max_video_bytes must be positive")

    @classmethod
    def from_settings(cls, settings: Settings, engine: str) -> UpstreamOptions:
        """The options of ``engine`` from its ``<engine>_poll_seconds`` and
        ``<engine>_timeout_seconds`` settings, and the shared ones."""
        return cls(
            policy=FetchPolicy.from_settings(settings),
            poll_seconds=getattr(settings, f"{engine}_poll_seconds"),
            timeout_seconds=getattr(settings, f"{engine}_timeout_seconds"),
            max_video_bytes=settings.max_video_bytes,
        )

    @classmethod
    def for_instance(cls, settings: Settings, instance: str) -> UpstreamOptions:
        """The options of the configured engine ``instance`` (``settings.engines``): its
        own poll and timeout, and the shared ones."""
        config = settings.engines[instance]
        return cls(
            policy=FetchPolicy.from_settings(settings),
            poll_seconds=config.poll_seconds,
            timeout_seconds=config.timeout_seconds,
            max_video_bytes=settings.max_video_bytes,
        )


class UpstreamEngine(ABC, Generic[P, R]):
    """An engine whose videos are made by a remote service; one instance serves every
    worker thread (hooks must be thread-safe).

    Subclasses set ``name``, ``service`` (how messages name the upstream),
    ``typical_seconds`` (scales the progress estimate) and implement the hooks. Tests may
    replace ``clock`` and ``random`` to run without real waits or with fixed jitter.
    """

    name: ClassVar[str]
    service: ClassVar[str] = "the upstream video service"
    state_key: ClassVar[str] = "upstream_id"
    """Where the upstream id is kept in the job's engine state (kept stable across
    releases: a job saved by an older worker must resume)."""
    typical_seconds: ClassVar[float] = 60.0

    def __init__(self, options: UpstreamOptions) -> None:
        self.options = options
        self.clock: Callable[[], float] = time.monotonic
        self.random = random.Random()
        self._files = VideoFiles(self.name)

    # -- the Engine protocol -------------------------------------------------------------

    def capabilities(self, model: str) -> Capabilities:
        return Capabilities(enhances_prompt=True)

    def load(self) -> None:
        """Nothing to load; credentials are checked by the first request."""

    def close(self) -> None:
        self._files.close()

    def generate(self, request: GenerationRequest, inputs: Inputs, job: JobContext) -> Clip:
        """Create (or resume) the upstream generation, follow it, fetch and check the video."""
        progress = Progress(job, clock=self.clock)
        upstream_id, deadline = self._start(request, inputs, job, progress)
        log = {"job_id": request.job_id, "upstream_id": upstream_id, "engine": self.name}
        try:
            result = self._follow(upstream_id, deadline, progress, log)
        except JobInterrupted as stop:
            if stop.reason is Interruption.CANCELLED:
                self._cancel_quietly(upstream_id, log)
            raise
        path = self._files.new_path(request.job_id or upstream_id)
        try:
            progress.set(PROGRESS_GENERATED, "downloading")
            credits = self.fetch_result(result, path, progress)
            progress.set(PROGRESS_DOWNLOADED, "checking video")
        except BaseException:  # cancelled or failed: leave no file behind
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
            raise
        clip = finished_clip(path, {"upstream_id": upstream_id})
        if credits is not None:
            clip.credits_used = round(credits)
        logger.info("upstream video received", extra={**log, "bytes": path.stat().st_size})
        return clip

    def _cancel_quietly(self, upstream_id: str, log: dict[str, Any]) -> None:
        """The user cancelled: stop paying upstream too, where the upstream can."""
        try:
            self.cancel_upstream(upstream_id)
        except Exception:
            logger.warning("could not cancel the upstream generation", exc_info=True, extra=log)
        else:
            logger.info("upstream generation cancelled", extra=log)

    # -- hooks ---------------------------------------------------------------------------

    @abstractmethod
    def prepare(self, request: GenerationRequest, inputs: Inputs) -> P:
        """What ``submit`` sends (built once, however often the create is tried)."""

    @abstractmethod
    def submit(self, payload: P) -> str:
        """Start the generation; its upstream id. Raises ``Transient`` only when the
        answer proves nothing was started, a domain error (``maybe_started``...) otherwise."""

    @abstractmethod
    def poll(self, upstream_id: str) -> Pending | Done[R]:
        """One look at the generation. Raises ``Transient`` for failures worth retrying,
        ``UpstreamError`` when it failed."""

    @abstractmethod
    def fetch_result(self, result: R, path: Path, progress: Progress) -> float | None:
        """Write the finished video to ``path``; the credits it cost, if the upstream says."""

    def saved_state(self, request: GenerationRequest, upstream_id: str) -> dict[str, Any]:
        """What to save with the job once the upstream id is known (``submitted_at`` is
        added); a later attempt finds it in ``request.engine_state``."""
        return {self.state_key: upstream_id}

    def cancel_upstream(self, upstream_id: str) -> None:
        """Ask the upstream to stop working on ``upstream_id``; by default there is no way."""

    # -- for the hooks -------------------------------------------------------------------

    def download(
        self, url: str, path: Path, progress: Progress, *, expected_bytes: int | None = None
    ) -> int:
        """``download_video`` under this engine's address rules and limits."""
        return download_video(
            url,
            path,
            policy=self.options.policy,
            max_bytes=self.options.max_video_bytes,
            progress=progress,
            expected_bytes=expected_bytes,
            timeout_seconds=self.options.download_timeout_seconds,
        )

    # -- the steps -----------------------------------------------------------------------

    def _start(
        self, request: GenerationRequest, inputs: Inputs, job: JobContext, progress: Progress
    ) -> tuple[str, float]:
        """The upstream id (resumed or newly created) and the deadline on ``clock``."""
        state = request.engine_state
        saved = state.get(self.state_key)
        if isinstance(saved, str) and saved:
            submitted_at = state.get("submitted_at")
            spent = time.time() - submitted_at if isinstance(submitted_at, int | float) else 0.0
            logger.info(
                "resuming upstream generation",
                extra={"job_id": request.job_id, "upstream_id": saved, "engine": self.name},
            )
            progress.set(PROGRESS_QUEUED, "resuming")
            return saved, self.clock() + max(self.options.timeout_seconds - max(spent, 0.0), 0.0)
        progress.set(PROGRESS_SUBMITTING, "submitting")
        payload = self.prepare(request, inputs)
        deadline = self.clock() + self.options.timeout_seconds

        def on_timeout() -> Exception:
            return UpstreamError(f"{self.service} did not accept the generation in time")

        try:
            upstream_id = self._retrying(
                lambda: self.submit(payload),
                progress=progress,
                deadline=deadline,
                on_timeout=on_timeout,
                what="starting the generation",
                nothing_started=True,
            )
        except ServiceUnavailable as refused:  # our key rejected: nothing was started
            unbilled(refused)
            raise
        try:
            job.save_state({**self.saved_state(request, upstream_id), "submitted_at": time.time()})
        except JobInterrupted as stop:  # cancelled while the create was answered
            if stop.reason is Interruption.CANCELLED:
                log = {"job_id": request.job_id, "upstream_id": upstream_id, "engine": self.name}
                self._cancel_quietly(upstream_id, log)
            raise
        logger.info(
            "upstream generation created",
            extra={"job_id": request.job_id, "upstream_id": upstream_id, "engine": self.name},
        )
        return upstream_id, deadline

    def _follow(self, upstream_id: str, deadline: float, progress: Progress, log: dict) -> R:
        """Poll until ``Done``; always polls once, so a resumed job whose deadline passed
        still finds a result that is already there."""

        def on_timeout() -> Exception:
            logger.warning("upstream generation timed out", extra=log)
            return EngineError(
                f"the upstream generation {upstream_id} did not finish within "
                f"{format_seconds(self.options.timeout_seconds)}"
            )

        schedule = PollSchedule(self.options.poll_seconds, rng=self.random)
        stage: str | None = None
        generating_since: float | None = None
        while True:
            state = self._retrying(
                lambda: self.poll(upstream_id),
                progress=progress,
                deadline=deadline,
                on_timeout=on_timeout,
                what=f"following {upstream_id}",
            )
            if isinstance(state, Done):
                return state.result
            if state.stage != stage:
                logger.info("upstream status", extra={**log, "stage": state.stage})
                stage = state.stage
            if state.stage.startswith("queued"):  # "queued: 3 ahead" where it says
                progress.set(PROGRESS_QUEUED, state.stage)
            elif state.estimate is not None:
                progress.set(generating_share(state.estimate), state.stage)
            else:
                if generating_since is None:
                    generating_since = self.clock()
                estimate = rising_estimate(self.clock, generating_since, self.typical_seconds)
                progress.set(estimate, state.stage)
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise on_timeout()
            progress.wait(min(schedule.next(), remaining))

    def _retrying(
        self,
        call: Callable[[], T],
        *,
        progress: Progress,
        deadline: float,
        on_timeout: Callable[[], Exception],
        what: str,
        nothing_started: bool = False,
    ) -> T:
        """``call()``, its ``Transient`` failures retried until it succeeds, fails
        otherwise, fails ``MAX_TRANSIENT_FAILURES + 1`` times in a row, or the deadline
        passes (then ``on_timeout()``). With ``nothing_started`` (a create) the error for
        retries that ran out is marked ``unbilled``: a route may try its next engine."""
        backoff = Backoff(
            base=self.options.poll_seconds, cap=TRANSIENT_BACKOFF_CAP_SECONDS, random=self.random
        )
        clock = self.clock

        def log(state: tenacity.RetryCallState) -> None:
            failure = state.outcome.exception() if state.outcome is not None else None
            logger.info(
                "upstream call failed; retrying",
                extra={
                    "what": what,
                    "failures": state.attempt_number,
                    "reason": getattr(failure, "message", ""),
                },
            )

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(Transient),
            stop=tenacity.stop_any(
                tenacity.stop_after_attempt(MAX_TRANSIENT_FAILURES + 1),
                lambda state: clock() >= deadline,
            ),
            wait=lambda state: min(backoff(state), max(deadline - clock(), 0.0)),
            sleep=progress.wait,
            before_sleep=log,
            reraise=True,
        )
        try:
            return retrying(call)
        except Transient as failure:
            # Every try failed in a way that proves nothing started (``submit``'s rule).
            error = on_timeout() if clock() >= deadline else None
            if error is None:
                error = UpstreamError(
                    f"the upstream video service kept failing while {what}: {failure.message}"
                )
            if nothing_started and isinstance(error, ReelforgeError):
                unbilled(error)
            raise error from None


def service_root(url: str, version: str) -> str | None:
    """The root of a service from a base URL, with a trailing ``version`` path (``/v1``,
    ``/v2``) tolerated; ``None`` unless it is an http(s) URL with a host, so each engine
    refuses a bad address in its own words."""
    root = url.strip().rstrip("/").removesuffix(version)
    try:
        parsed = httpx.URL(root)
    except httpx.InvalidURL:
        return None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return None
    return root
