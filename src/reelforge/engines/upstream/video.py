"""The finished video: a temporary file the engine owns, filled through the SSRF-safe
fetcher (so an upstream cannot make us fetch from the operator's network either) or from
bytes the upstream sent inline, and probed before anyone stores it."""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
import tempfile
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tenacity

from reelforge.engines.upstream.progress import (
    PROGRESS_DOWNLOADED,
    PROGRESS_GENERATED,
    Progress,
)
from reelforge.errors import EngineError, FetchError, UpstreamError
from reelforge.media.clip import FPS, Clip
from reelforge.media.encode import probe_mp4
from reelforge.media.fetch import VIDEO_FETCH_TIMEOUT_SECONDS, fetch_to_file, format_size
from reelforge.retrying import Backoff

if TYPE_CHECKING:
    from reelforge.media.netguard import FetchPolicy

logger = logging.getLogger(__name__)

DOWNLOAD_ATTEMPTS = 3
"""Tries of a video download that failed on a dropped connection, 408, 429 or 5xx."""
DOWNLOAD_BACKOFF = Backoff(base=0.5, cap=10.0)
"""Pauses between tries: ``Retry-After`` if the CDN sent one, else jittered backoff."""
TYPICAL_DOWNLOAD_BYTES = 20 * 2**20
"""Scale of the download estimate when the upstream does not say how big the video is."""


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
    progress: Progress,
    expected_bytes: int | None = None,
    timeout_seconds: float = VIDEO_FETCH_TIMEOUT_SECONDS,
    attempts: int = DOWNLOAD_ATTEMPTS,
    backoff: Backoff = DOWNLOAD_BACKOFF,
) -> int:
    """Stream ``url`` into ``path`` under the image-fetch address rules; its size in bytes.

    No credentials are sent: the URL must work on its own, as CDN links do. Transient
    failures (``FetchError.transient``) are retried, ``attempts`` in all; anything else,
    or the last failure, raises ``UpstreamError``. ``path`` does not exist after a failure.
    """
    scale = expected_bytes if expected_bytes and expected_bytes > 0 else None

    def estimate(written: int) -> float:
        share = written / scale if scale else 1.0 - math.exp(-written / TYPICAL_DOWNLOAD_BYTES)
        return PROGRESS_GENERATED + (PROGRESS_DOWNLOADED - PROGRESS_GENERATED) * min(share, 1.0)

    def fetch() -> int:
        progress.set(PROGRESS_GENERATED, "downloading")
        fetched = fetch_to_file(
            url,
            policy,
            path,
            max_bytes=max_bytes,
            timeout_seconds=timeout_seconds,
            on_progress=lambda written: progress.set(estimate(written), "downloading"),
        )
        return fetched.size

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(lambda e: isinstance(e, FetchError) and e.transient),
        stop=tenacity.stop_after_attempt(attempts),
        wait=backoff,
        sleep=progress.wait,
        before_sleep=_log_retry,
        reraise=True,
    )
    try:
        return retrying(fetch)
    except FetchError as failure:
        raise _download_failed(failure.message) from None


def _log_retry(state: tenacity.RetryCallState) -> None:
    failure: Any = state.outcome.exception() if state.outcome is not None else None
    logger.info(
        "video download failed; retrying",
        extra={"attempt": state.attempt_number, "reason": getattr(failure, "message", "")},
    )


def write_video(data: bytes, path: Path, *, max_bytes: int) -> None:
    """Write a video the upstream sent inline, under the same size limit as downloads."""
    if len(data) > max_bytes:
        raise _download_failed(f"video is larger than {format_size(max_bytes)}")
    path.write_bytes(data)


def _download_failed(reason: str) -> UpstreamError:
    return UpstreamError(f"the finished video could not be downloaded from upstream: {reason}")


def finished_clip(path: Path, facts: dict[str, object]) -> Clip:
    """A ``Clip`` for the MP4 at ``path`` after checking it really is one.

    ``UpstreamError`` (and the file removed) when it is not an MP4 with a video stream.
    """
    try:
        with path.open("rb") as handle:
            header = handle.read(12)
        if header[4:8] != b"ftyp":
            raise EngineError("it is not an MP4 file")
        probed = probe_mp4(path)
        if probed.width <= 0 or probed.height <= 0 or probed.frame_count <= 0:
            raise EngineError("it has no frames")
    except (EngineError, OSError) as problem:
        with contextlib.suppress(OSError):
            path.unlink()
        reason = problem.message if isinstance(problem, EngineError) else str(problem)
        raise UpstreamError(
            f"the upstream returned a video reelforge cannot use: {reason}"
        ) from None
    return Clip(
        width=probed.width,
        height=probed.height,
        frame_count=probed.frame_count,
        fps=round(probed.fps) or FPS,
        file=path,
        facts={"has_audio": probed.has_audio, **facts},
    )
