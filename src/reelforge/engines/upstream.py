"""What the upstream engines (``aimlapi``, ``google``) share.

Both hand a generation to a remote service, wait for it while keeping the worker informed,
and bring back an MP4 that nobody here encoded. The pieces:

* ``encode_image`` / ``image_data_uri``: inputs leave as freshly encoded JPEG bytes that
  reelforge decoded and vetted itself, never as the user's URL (which may point into the
  operator's network, or at a staged file only reelforge can read).
* ``Pacer`` and ``poll_until``: polling with a growing interval, bounded retries of
  transient failures, ``Retry-After`` honoured, an overall deadline, and a ``progress``
  call at least every ``PROGRESS_TICK_SECONDS`` even when nothing changes, because that
  call is how the worker cancels a job (shutdown, lost lease, job timeout).
* ``VideoFiles``, ``download_video`` and ``finished_clip``: the video lands in a temporary
  file the engine owns, through the SSRF-safe fetcher (so an upstream cannot make us
  fetch from the operator's network either), and is probed before anyone stores it.
"""

from __future__ import annotations

import base64
import contextlib
import io
import logging
import math
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from reelforge.engines.base import FPS, Clip, Progress
from reelforge.errors import GenerationFailed, ImageFetchError, ServiceUnavailable, UpstreamError
from reelforge.media.encode import probe_mp4
from reelforge.media.fetch import (
    VIDEO_FETCH_TIMEOUT_SECONDS,
    TransientFetchError,
    fetch_to_file,
    format_seconds,
)

if TYPE_CHECKING:
    from PIL.Image import Image

    from reelforge.media.netguard import FetchPolicy

logger = logging.getLogger(__name__)

R = TypeVar("R")

MAX_IMAGE_SIDE_PX = 2048
"""Longest side of an image sent upstream; outputs are at most 1920 px, more is waste."""
MAX_IMAGE_BYTES = 8 * 2**20
"""Largest encoded image sent upstream (the AI/ML API and Google both accept more)."""
JPEG_QUALITIES = (92, 85, 75, 60)
"""Tried in order until the image fits ``MAX_IMAGE_BYTES``."""

PROGRESS_TICK_SECONDS = 1.0
"""Longest silence towards the worker's ``progress`` while waiting."""
MAX_TRANSIENT_FAILURES = 5
"""Consecutive 429/5xx/connection failures tolerated before a job fails."""
TRANSIENT_BACKOFF_CAP_SECONDS = 60.0
POLL_GROWTH = 1.25
POLL_CAP_FACTOR = 3.0
"""Polls start at the configured interval and grow to at most this multiple of it."""
DOWNLOAD_ATTEMPTS = 3
"""Tries of a video download that failed on a dropped connection or a 5xx."""
DOWNLOAD_RETRY_SECONDS = 0.5
"""Pause before the second try, doubling before each further one."""

# The engine's share of the job's progress bar, in order.
PROGRESS_SUBMITTING = 0.0
PROGRESS_QUEUED = 0.05
PROGRESS_GENERATED = 0.85
"""The time-based estimate approaches this while the upstream generates, never passing it."""
PROGRESS_DOWNLOADED = 0.98
TYPICAL_DOWNLOAD_BYTES = 20 * 2**20
"""Scale of the download estimate when the upstream does not say how big the video is."""

AUTH_REJECTED_MESSAGE = (
    "the upstream video service rejected reelforge's credentials (the operator's key is "
    "wrong, expired or out of credits); contact the operator of this service"
)
"""What a user sees when the upstream refuses our key: nothing they can fix themselves."""


def auth_rejected(engine: str, status: int | str, detail: str | None) -> ServiceUnavailable:
    """The user-facing error for 401/403 upstream; the operator learns the details from logs."""
    logger.error(
        "upstream rejected the configured credentials",
        extra={"engine": engine, "status": status, "detail": (detail or "")[:300]},
    )
    return ServiceUnavailable(AUTH_REJECTED_MESSAGE)


# -- images -------------------------------------------------------------------------------


def encode_image(
    image: Image, *, max_side: int = MAX_IMAGE_SIDE_PX, max_bytes: int = MAX_IMAGE_BYTES
) -> tuple[bytes, str]:
    """``(bytes, mime type)`` of ``image`` as a JPEG within ``max_side`` and ``max_bytes``.

    Inputs arrive as decoded RGB (EXIF orientation and transparency already handled), so
    JPEG loses nothing that matters and is far smaller than PNG for photos.
    """
    from PIL import Image as PILImage

    picture = image if image.mode == "RGB" else image.convert("RGB")
    if max(picture.size) > max_side:
        picture = picture.copy()
        picture.thumbnail((max_side, max_side), PILImage.Resampling.LANCZOS)
    data = b""
    for quality in JPEG_QUALITIES:
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=quality, optimize=True)
        data = buffer.getvalue()
        if len(data) <= max_bytes:
            return data, "image/jpeg"
    raise GenerationFailed(
        f"the input image could not be made smaller than {max_bytes // 2**20} MiB for upstream"
    )


def image_data_uri(image: Image) -> str:
    """``data:image/jpeg;base64,...`` for a JSON field such as ``image_url``."""
    data, mime = encode_image(image)
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


# -- waiting --------------------------------------------------------------------------------


def generating_progress(elapsed_seconds: float, typical_seconds: float) -> float:
    """A rising estimate while the upstream works: ~55% of the way at ``typical_seconds``,
    approaching ``PROGRESS_GENERATED`` but never reaching it, so 100% means done."""
    share = 1.0 - math.exp(-max(elapsed_seconds, 0.0) / typical_seconds)
    return PROGRESS_QUEUED + (PROGRESS_GENERATED - PROGRESS_QUEUED) * share


class Transient(Exception):
    """A failure worth retrying (429, 5xx, dropped connection); ``retry_after`` in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class Pacer:
    """Sleeps between upstream calls while calling ``progress`` every tick.

    The current report is a fixed fraction or a function of the clock (the generating
    estimate), so the bar keeps rising through a long poll interval.
    """

    def __init__(
        self,
        progress: Progress,
        *,
        tick_seconds: float = PROGRESS_TICK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self._progress = progress
        self._tick = tick_seconds
        self.clock = clock
        self._sleep = sleep
        self._fraction: float | Callable[[], float] = 0.0
        self._stage = "starting"

    def report(self, fraction: float | Callable[[], float], stage: str) -> None:
        """Remember what to report and report it now (raises to cancel)."""
        self._fraction, self._stage = fraction, stage
        self.tick()

    def tick(self) -> None:
        fraction = self._fraction() if callable(self._fraction) else self._fraction
        self._progress(min(fraction, PROGRESS_DOWNLOADED), self._stage)

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds`` in ticks, reporting before each one."""
        until = self.clock() + max(seconds, 0.0)
        while True:
            self.tick()
            left = until - self.clock()
            if left <= 0:
                return
            self._sleep(min(left, self._tick))


class PollSchedule:
    """Intervals between polls: ``first``, growing by ``POLL_GROWTH`` up to a cap."""

    def __init__(self, first: float, cap_factor: float = POLL_CAP_FACTOR) -> None:
        self._next = first
        self._cap = first * cap_factor

    def next(self) -> float:
        interval = self._next
        self._next = min(self._next * POLL_GROWTH, self._cap)
        return interval


def follow_upstream(
    check: Callable[[], R | None],
    *,
    pacer: Pacer,
    upstream_id: str,
    interval_seconds: float,
    deadline: float,
    timeout_seconds: float,
    log_extra: dict[str, Any],
) -> R:
    """``poll_until`` for an upstream task: a timeout fails the job, naming the task."""

    def on_timeout() -> Exception:
        logger.warning("upstream generation timed out", extra=log_extra)
        return GenerationFailed(
            f"the upstream generation {upstream_id} did not finish within "
            f"{format_seconds(timeout_seconds)}"
        )

    return poll_until(
        check,
        pacer=pacer,
        interval_seconds=interval_seconds,
        deadline=deadline,
        on_timeout=on_timeout,
        what=f"following {upstream_id}",
    )


def poll_until(
    check: Callable[[], R | None],
    *,
    pacer: Pacer,
    interval_seconds: float,
    deadline: float,
    on_timeout: Callable[[], Exception],
    what: str,
    max_failures: int = MAX_TRANSIENT_FAILURES,
) -> R:
    """Call ``check`` until it returns a result, pausing between calls; ``deadline`` is
    on ``pacer.clock``.

    ``check`` returns ``None`` while pending and raises ``Transient`` for failures worth
    retrying: those are retried after the server's ``Retry-After`` or an exponential
    backoff, and more than ``max_failures`` in a row fail the job with an
    ``UpstreamError`` about ``what``. Every other exception propagates. ``check`` always
    runs at least once, so a resumed job whose deadline passed still sees a result that
    is already there.
    """
    schedule = PollSchedule(interval_seconds)
    failures = 0
    while True:
        try:
            result = check()
        except Transient as failure:
            failures += 1
            if failures > max_failures:
                raise UpstreamError(
                    f"the upstream video service kept failing while {what}: {failure.message}"
                ) from None
            logger.info(
                "upstream call failed; retrying",
                extra={"what": what, "failures": failures, "reason": failure.message},
            )
            backoff = min(interval_seconds * 2.0 ** (failures - 1), TRANSIENT_BACKOFF_CAP_SECONDS)
            delay = failure.retry_after if failure.retry_after is not None else backoff
        else:
            if result is not None:
                return result
            failures = 0
            delay = schedule.next()
        remaining = deadline - pacer.clock()
        if remaining <= 0:
            raise on_timeout()
        pacer.wait(min(delay, remaining))


# -- the finished video ------------------------------------------------------------------


class VideoFiles:
    """A temporary directory an engine owns for downloaded videos.

    The worker stores ``Clip.file`` and is expected to delete it afterwards; ``close``
    removes whatever is left (failed or abandoned jobs). Safe to share between threads.
    """

    def __init__(self, engine: str) -> None:
        self._prefix = f"reelforge-{engine}-"
        self._directory: Path | None = None
        self._lock = threading.Lock()

    def new_path(self, hint: str = "") -> Path:
        with self._lock:
            if self._directory is None or not self._directory.is_dir():
                self._directory = Path(tempfile.mkdtemp(prefix=self._prefix))
            directory = self._directory
        label = "".join(c if c.isalnum() or c in "-_" else "_" for c in hint)[:60]
        return directory / f"{label or 'video'}-{uuid.uuid4().hex}.mp4"

    def close(self) -> None:
        with self._lock:
            directory, self._directory = self._directory, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)


def download_video(
    url: str,
    path: Path,
    *,
    policy: FetchPolicy,
    max_bytes: int,
    pacer: Pacer,
    expected_bytes: int | None = None,
    timeout_seconds: float = VIDEO_FETCH_TIMEOUT_SECONDS,
    attempts: int = DOWNLOAD_ATTEMPTS,
) -> int:
    """Stream ``url`` into ``path`` under the image-fetch address rules; its size in bytes.

    No credentials are sent: the URL must work on its own, as CDN links do. Dropped
    connections and 5xx answers are retried (``attempts`` in all); anything else, or the
    last failure, raises ``UpstreamError``. ``path`` does not exist after a failure.
    """
    scale = expected_bytes if expected_bytes and expected_bytes > 0 else None

    def estimate(written: int) -> float:
        share = written / scale if scale else 1.0 - math.exp(-written / TYPICAL_DOWNLOAD_BYTES)
        return PROGRESS_GENERATED + (PROGRESS_DOWNLOADED - PROGRESS_GENERATED) * min(share, 1.0)

    def on_progress(written: int) -> None:
        pacer.report(estimate(written), "downloading")

    for attempt in range(1, attempts + 1):
        pacer.report(PROGRESS_GENERATED, "downloading")
        try:
            fetched = fetch_to_file(
                url,
                policy,
                path,
                max_bytes=max_bytes,
                timeout_seconds=timeout_seconds,
                on_progress=on_progress,
            )
        except TransientFetchError as failure:
            if attempt == attempts:
                raise _download_failed(failure) from None
            logger.info(
                "video download failed; retrying",
                extra={"attempt": attempt, "reason": failure.message},
            )
            pacer.wait(DOWNLOAD_RETRY_SECONDS * 2.0 ** (attempt - 1))
            continue
        except ImageFetchError as failure:
            raise _download_failed(failure) from None
        return fetched.size
    raise AssertionError("unreachable")  # pragma: no cover


def _download_failed(failure: ImageFetchError) -> UpstreamError:
    return UpstreamError(f"the finished video could not be downloaded from upstream: {failure}")


def finished_clip(path: Path, extra: dict[str, object]) -> Clip:
    """A ``Clip`` for the MP4 at ``path`` after checking it really is one.

    ``UpstreamError`` (and the file removed) when it is not an MP4 with a video stream.
    """
    try:
        with path.open("rb") as handle:
            header = handle.read(12)
        if header[4:8] != b"ftyp":
            raise GenerationFailed("it is not an MP4 file")
        facts = probe_mp4(path)
        if facts.width <= 0 or facts.height <= 0 or facts.frame_count <= 0:
            raise GenerationFailed("it has no frames")
    except (GenerationFailed, OSError) as problem:
        with contextlib.suppress(OSError):
            path.unlink()
        reason = problem.message if isinstance(problem, GenerationFailed) else str(problem)
        raise UpstreamError(
            f"the upstream returned a video reelforge cannot use: {reason}"
        ) from None
    return Clip(
        width=facts.width,
        height=facts.height,
        frame_count=facts.frame_count,
        fps=round(facts.fps) or FPS,
        file=path,
        extra={"has_audio": facts.has_audio, **extra},
    )
