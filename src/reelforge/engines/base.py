"""The contract between the worker and every generation engine.

An engine turns a fully validated :class:`GenerationRequest` plus decoded :class:`Inputs`
into a :class:`~reelforge.media.clip.Clip`, talking to the job it runs for only through
the :class:`JobContext` it is handed: progress (``report``), resume state
(``save_state``), cancellation (``cancelled``, ``raise_if_cancelled``, ``sleep``) and the
deadline. Engines never touch the job store or storage: the worker owns those.

A clip either yields raw frames (local engines; the worker encodes them) or points at an
already encoded MP4 (upstream engines that download a finished video).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from reelforge.errors import Interruption, JobInterrupted
from reelforge.media.clip import FPS, Clip

if TYPE_CHECKING:
    from pathlib import Path

    from PIL.Image import Image

INPUT_KINDS = ("text", "image", "last_frame", "reference_images", "video")
"""What a request starts from: its prompt alone (``text``) or these visual inputs;
engines declare which they take."""


@dataclass(frozen=True)
class GenerationRequest:
    """One generation with every default resolved; what the engine must produce."""

    model: str
    prompt: str
    duration_seconds: int
    width: int
    height: int
    seed: int
    negative_prompt: str | None = None
    enhance_prompt: bool = True
    generate_audio: bool = False
    fps: int = FPS
    aspect_ratio: str = "16:9"
    """The resolved published aspect ratio (``auto`` already decided from the image)."""
    resolution: str = "720P"
    original_prompt: str | None = None
    """The user's prompt when ``prompt`` is an enhanced version of it."""
    job_id: str = ""
    engine_state: Mapping[str, Any] = field(default_factory=dict)
    """What this engine saved with ``JobContext.save_state`` in an earlier attempt."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """The request's published fields as validated (for upstreams that forward them)."""

    @property
    def frame_count(self) -> int:
        return self.duration_seconds * self.fps


@dataclass(frozen=True)
class VideoInput:
    """A vetted input video on local disk (read it with PyAV), with its probed facts."""

    path: Path
    width: int
    height: int
    fps: float
    frame_count: int
    duration_seconds: float


@dataclass(frozen=True)
class Inputs:
    """Decoded inputs: images RGB with EXIF orientation applied, not yet fitted."""

    image: Image | None = None
    """The first frame (``image_url``)."""
    last_frame: Image | None = None
    """The last frame (``tail_image_url``, ``last_image_url``)."""
    references: tuple[Image, ...] = ()
    """Reference images (``image_urls``): subjects or styles that must appear."""
    video: VideoInput | None = None
    """A video to extend (``video_url``)."""

    @property
    def kinds(self) -> frozenset[str]:
        """The visual inputs present (``INPUT_KINDS``), or ``{"text"}`` when none is."""
        present = set()
        if self.image is not None:
            present.add("image")
        if self.last_frame is not None:
            present.add("last_frame")
        if self.references:
            present.add("reference_images")
        if self.video is not None:
            present.add("video")
        return frozenset(present or {"text"})


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do for one model. The router refuses, before a job runs, a
    request with inputs the engine serving its model cannot take."""

    inputs: frozenset[str] = frozenset({"text", "image", "last_frame"})
    """Input kinds it takes (``INPUT_KINDS``)."""
    enhances_prompt: bool = False
    """True when the engine enhances prompts itself (upstreams): reelforge passes the
    ``enhance_prompt`` flag through instead of enhancing locally."""


class _Stop:
    """Cancellation shared by a job's context and all its ``scaled`` views."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason: Interruption | None = None
        self.message: str | None = None
        self.lock = threading.Lock()


class JobContext:
    """A running job as its engine sees it (after procrastinate's job context).

    * ``report(fraction, stage)``: progress of the engine's share of the job, in [0, 1];
    * ``save_state(mapping)``: small JSON-able resume state (an upstream task id). A later
      attempt of the job (after a crash) receives it as ``GenerationRequest.engine_state``;
    * ``cancelled`` / ``raise_if_cancelled()``: whether the job must stop (cancelled by
      its user, past its deadline, worker shutting down, lease lost); an engine checks
      between steps and lets the ``JobInterrupted`` it raises propagate;
    * ``sleep(seconds)``: waits, waking at once on cancellation (then raises);
    * ``deadline``: the ``time.monotonic()`` by which the job must be done.

    The worker builds one per job with its own callbacks; a bare ``JobContext()`` (no
    deadline, progress dropped) suits tests and direct use of an engine.
    """

    def __init__(
        self,
        job_id: str = "",
        *,
        deadline: float = float("inf"),
        on_report: Callable[[float, str], None] | None = None,
        on_save_state: Callable[[Mapping[str, Any]], None] | None = None,
        _stop: _Stop | None = None,
        _range: tuple[float, float] = (0.0, 1.0),
    ) -> None:
        self.job_id = job_id
        self.deadline = deadline
        self._on_report = on_report
        self._on_save_state = on_save_state
        self._stop = _stop or _Stop()
        self._range = _range

    # -- for the engine ------------------------------------------------------------------

    def report(self, fraction: float, stage: str) -> None:
        """Record progress; never raises (``raise_if_cancelled`` is for that)."""
        if self._on_report is not None:
            start, end = self._range
            self._on_report(start + (end - start) * max(0.0, min(1.0, fraction)), stage)

    def save_state(self, state: Mapping[str, Any]) -> None:
        """Persist resume state now, then raise ``JobInterrupted`` if the job must stop
        (saved first: an upstream task created just before a shutdown is resumed, not
        created again)."""
        if self._on_save_state is not None:
            self._on_save_state(dict(state))
        self.raise_if_cancelled()

    @property
    def cancelled(self) -> bool:
        return self._stop.event.is_set()

    @property
    def reason(self) -> Interruption | None:
        """Why the job must stop, once ``cancelled``."""
        return self._stop.reason

    def raise_if_cancelled(self) -> None:
        """Raise ``JobInterrupted`` if the job must stop; past its deadline it must."""
        stop = self._stop
        if not stop.event.is_set() and time.monotonic() >= self.deadline:
            self.cancel(Interruption.TIMEOUT)
        if stop.event.is_set():
            assert stop.reason is not None
            raise JobInterrupted(stop.reason, stop.message)

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (less if the deadline comes first); raises on cancellation."""
        self._stop.event.wait(max(0.0, min(seconds, self.remaining)))
        self.raise_if_cancelled()

    @property
    def remaining(self) -> float:
        """Seconds left before the deadline (``inf`` without one)."""
        return self.deadline - time.monotonic()

    def scaled(self, start: float, end: float) -> JobContext:
        """A view whose ``report`` maps [0, 1] onto [start, end] of this one's range;
        cancellation, state and deadline are shared."""
        low, high = self._range
        return JobContext(
            self.job_id,
            deadline=self.deadline,
            on_report=self._on_report,
            on_save_state=self._on_save_state,
            _stop=self._stop,
            _range=(low + (high - low) * start, low + (high - low) * end),
        )

    def saving_with(self, extra: Mapping[str, Any]) -> JobContext:
        """A view whose ``save_state`` adds ``extra`` to every state it saves (a route
        records which of its engines holds the upstream task); the rest is shared."""
        inner = self._on_save_state

        def save(state: Mapping[str, Any]) -> None:
            if inner is not None:
                inner({**state, **extra})

        return JobContext(
            self.job_id,
            deadline=self.deadline,
            on_report=self._on_report,
            on_save_state=save,
            _stop=self._stop,
            _range=self._range,
        )

    # -- for the worker ------------------------------------------------------------------

    def cancel(self, reason: Interruption, message: str | None = None) -> None:
        """Ask the engine to stop; the first reason given wins."""
        stop = self._stop
        with stop.lock:
            if stop.reason is None:
                stop.reason, stop.message = reason, message
            stop.event.set()


@runtime_checkable
class Engine(Protocol):
    """A video generator. ``load`` is called once per worker process, ``close`` on
    shutdown; ``generate`` may be called from several threads at once."""

    name: str

    def capabilities(self, model: str) -> Capabilities: ...

    def load(self) -> None: ...

    def close(self) -> None: ...

    def generate(self, request: GenerationRequest, inputs: Inputs, job: JobContext) -> Clip: ...


def time_budget(engine: Engine, request: GenerationRequest) -> float | None:
    """Seconds the engine says one attempt of ``request`` may need, or ``None``.

    Optional for engines (``time_budget(request) -> float | None``): one whose work
    varies by orders of magnitude with the model (open weights: steps, frames, offload)
    sets the job's deadline with it; the others keep ``job_timeout_seconds``.
    """
    estimate = getattr(engine, "time_budget", None)
    return None if estimate is None else estimate(request)
