"""The contract between the worker and every generation engine.

An engine turns a fully validated :class:`GenerationRequest` plus decoded inputs into a
:class:`Clip`. Engines never touch the job store or storage: the worker owns those. A
clip either yields raw frames (local engines; the worker encodes them) or points at an
already encoded MP4 (upstream engines that download a finished video).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    from PIL.Image import Image

FPS = 24
"""Output frame rate of every published model, frames per second."""

AUDIO_SAMPLE_RATE_HZ = 48_000

Progress = Callable[[float, str], None]
"""Called with a fraction in [0, 1] and a short stage name ("rendering", "encoding")."""


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
    """Facts worth reporting to the user, e.g. ``{"prompt_used": ...}``."""


@dataclass(frozen=True)
class Capabilities:
    models: frozenset[str]
    text_to_video: bool = True
    image_to_video: bool = True
    audio: bool = False


@runtime_checkable
class Engine(Protocol):
    """A video generator. ``load`` is called once per worker, ``close`` on shutdown."""

    name: str

    def capabilities(self) -> Capabilities: ...

    def load(self) -> None: ...

    def close(self) -> None: ...

    def generate(self, request: GenerationRequest, inputs: Inputs, progress: Progress) -> Clip: ...
