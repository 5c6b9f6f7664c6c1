"""What an engine hands the worker: a clip of frames (and sound), or a finished file.

These types live in ``media`` because both sides use them: engines build clips, the
encoder consumes them. Keeping them here (rather than in ``engines``) keeps the package
graph one-way: engines depend on media, never the reverse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

FPS = 24
"""Output frame rate of every published model, frames per second."""

AUDIO_SAMPLE_RATE_HZ = 48_000

ReportProgress = Callable[[float, str], None]
"""Receives ``(fraction in [0, 1], stage)``; what media functions report through."""


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
    names an encoded MP4 that the worker stores as is (and then deletes).
    """

    width: int
    height: int
    frame_count: int
    fps: int = FPS
    frames: Iterable[np.ndarray] | None = None
    audio: Audio | None = None
    file: Path | None = None
    credits_used: int | None = None
    """What the generation cost upstream, when an upstream engine knows it; replaces the
    price table's charge. ``None``: charge the published price."""
    facts: dict[str, object] = field(default_factory=dict)
    """Facts worth reporting with the job (e.g. ``{"upstream_id": ...}``); JSON-able."""


def planar_frame(planes: np.ndarray) -> np.ndarray:
    """An (height, width, 3) frame over contiguous (3, height, width) uint8 planes.

    Renderers that compute planes (numpy is fastest along long rows) return this view
    instead of interleaving; the encoder reads the planes directly."""
    return planes.transpose(1, 2, 0)


def planes_of(array: np.ndarray) -> np.ndarray | None:
    """The (3, height, width) planes behind a ``planar_frame`` view, else ``None``."""
    import numpy as np

    base = array.base
    if (
        isinstance(base, np.ndarray)
        and base.dtype == np.uint8
        and base.ndim == 3
        and base.shape == (3, *array.shape[:2])
        and base.flags.c_contiguous
        and array.strides == (base.strides[1], base.strides[2], base.strides[0])
    ):
        return base
    return None
