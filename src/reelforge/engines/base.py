"""The contract between the worker and every generation engine.

An engine turns a fully validated :class:`GenerationRequest` plus decoded inputs into a
:class:`Clip`. Engines never touch the job store or storage: the worker owns those. A
clip either yields raw frames (local engines; the worker encodes them) or points at an
already encoded MP4 (upstream engines that download a finished video).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    from PIL.Image import Image

FPS = 24
"""Output frame rate of every published model, frames per second."""

AUDIO_SAMPLE_RATE_HZ = 48_000


class Progress(Protocol):
    """Reports progress: a fraction in [0, 1] and a short stage ("loading", "denoising").

    It raises to stop the engine (shutdown, lost lease, timeout): engines must let its
    exceptions propagate. Plain functions of ``(fraction, stage)`` satisfy it.
    """

    def __call__(self, fraction: float, stage: str) -> None: ...


def save_engine_state(progress: Progress, state: Mapping[str, Any]) -> None:
    """Persist small JSON-able resume state for this job (e.g. an upstream task id).

    A later attempt of the same job (after a crash) receives it as
    ``GenerationRequest.engine_state``, so an upstream engine resumes polling instead of
    paying for a second generation. A no-op where the caller keeps no state.
    """
    saver = getattr(progress, "save_state", None)
    if saver is not None:
        saver(dict(state))


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
    """What this engine saved with ``save_engine_state`` during an earlier attempt."""

    @property
    def frame_count(self) -> int:
        return self.duration_seconds * self.fps


@dataclass(frozen=True)
class Inputs:
    """Decoded input images: RGB, EXIF orientation applied, not yet fitted to the frame."""

    image: Image | None = None
    tail_image: Image | None = None


@dataclass(frozen=True)
class Audio:
    """A soundtrack: float32 samples in [-1, 1], shaped (channels, samples)."""

    samples: np.ndarray
    sample_rate: int = AUDIO_SAMPLE_RATE_HZ


@dataclass
class Clip:
    """What an engine returns.

    ``frames`` yields exactly ``frame_count`` RGB uint8 arrays of shape (height, width, 3)
    and may be lazy, so a long clip never sits in memory at once. Alternatively ``file``
    names an encoded MP4 that the worker stores as is.
    """

    width: int
    height: int
    frame_count: int
    fps: int = FPS
    frames: Iterable[np.ndarray] | None = None
    audio: Audio | None = None
    file: Path | None = None
    extra: dict[str, object] = field(default_factory=dict)
    """Facts worth reporting to the user, e.g. ``{"prompt_used": ...}``. The key
    ``credits_used`` (a number) replaces the price table's charge (upstream engines)."""


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do; the router and ``/v2/models`` report it."""

    models: frozenset[str]
    text_to_video: bool = True
    image_to_video: bool = True
    audio: bool = False
    sizes: frozenset[tuple[int, int]] | None = None
    """Output sizes it makes natively (``None``: any; others are resampled)."""
    durations: frozenset[int] | None = None
    """Durations in seconds it supports (``None``: all the published ones)."""
    enhances_prompt: bool = False
    """True when the engine enhances prompts itself (upstreams): reelforge passes the
    ``enhance_prompt`` flag through instead of enhancing locally."""


@runtime_checkable
class Engine(Protocol):
    """A video generator. ``load`` is called once per worker, ``close`` on shutdown."""

    name: str

    def capabilities(self) -> Capabilities: ...

    def load(self) -> None: ...

    def close(self) -> None: ...

    def generate(self, request: GenerationRequest, inputs: Inputs, progress: Progress) -> Clip: ...
