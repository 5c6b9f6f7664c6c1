"""Crop a window at sub-pixel position and scale it, with swscale's speed.

A camera move resamples a window of a still picture every frame. Pillow places the
window exactly but takes 10-13 ms per 720p frame on one core, more than x264 spends
encoding it; swscale scales the same planes in under 1 ms a plane, but crops only whole
pixels, and a window rounded to whole pixels makes slow moves step (judder).

The way around: scale a whole-pixel crop to a size a few pixels larger than asked, then
crop the result at a whole output pixel. Among a thousand (extra size, output offset)
pairs one usually lands within a few hundredths of a pixel of the asked window on each
axis (0.03 px on average for source-to-output ratios from 1.05 to 1.7; rounding to whole
pixels leaves 0.25). Near a ratio that is a simple fraction p/q only q offsets exist:
the error reaches 0.2 px around 3/2 and 0.5 px at exactly 1, so callers keep the ratio
above 1. The source planes are padded by repeating their edge pixels, so a window
touching the border has room too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import av
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

EXTRA = 32
"""Most output pixels scaled beyond the asked size on each axis, to find an exact fit."""
GOOD_ENOUGH = 1 / 64
"""Placement error (source pixels) below which the smallest extra size is taken."""
FLAGS = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.BITEXACT
"""Area-weighted bilinear (like Pillow's, it widens when shrinking), and the same bytes
whatever SIMD the CPU has: frames stay reproducible across machines."""


@dataclass(frozen=True)
class Span:
    """One axis of a placement: crop ``length`` source pixels from ``start`` (padded
    coordinates), scale them to ``scaled`` pixels, keep ``size`` from ``offset``."""

    start: int
    length: int
    scaled: int
    offset: int
    error: float
    """Largest distance, in source pixels, between a kept pixel's centre and the asked one."""


def place(begin: float, extent: float, size: int, pad: int, limit: int) -> Span:
    """The best span for source window ``[begin, begin + extent)`` shown on ``size`` pixels.

    ``begin`` is in unpadded source pixels; ``limit`` is the padded source length.
    Output pixel ``d`` of a swscale scale of ``length`` to ``scaled`` pixels samples source
    position ``start + (d + 0.5) * length / scaled - 0.5``; the asked window samples
    ``begin + pad + (d + 0.5) * extent / size - 0.5``.
    """
    ratio = extent / size
    extra = np.arange(EXTRA + 1)
    scaled = size + extra  # (E,)
    length = np.maximum(1, np.rint(ratio * scaled)).astype(np.int64)
    actual = length / scaled
    offset = np.arange(EXTRA + 1)[:, None]  # (K, 1): output pixels dropped on the left
    wanted = begin + pad
    start = np.rint(wanted - offset * actual).astype(np.int64)  # (K, E)
    shift = start + offset * actual - wanted
    slope = actual - ratio
    error = np.maximum(np.abs(shift + 0.5 * slope), np.abs(shift + (size - 0.5) * slope))
    valid = (offset <= extra) & (start >= 0) & (start + length <= limit)
    error = np.where(valid, error, np.inf)
    good = np.nonzero((error <= GOOD_ENOUGH).any(axis=0))[0]
    if good.size:
        column = int(good[0])
        row = int(np.argmin(error[:, column]))
    else:
        row, column = (int(i) for i in np.unravel_index(np.argmin(error), error.shape))
    if not math.isfinite(error[row, column]):
        raise ValueError(f"window [{begin}, {begin + extent}) does not fit the padded source")
    return Span(
        start=int(start[row, column]),
        length=int(length[column]),
        scaled=int(scaled[column]),
        offset=row,
        error=float(error[row, column]),
    )


class PlaneResampler:
    """Windows of fixed uint8 planes, shaped (planes, height, width), at any position.

    ``max_ratio`` is the largest source-to-output ratio asked for; it sizes the padding.
    One instance per thread: it keeps a swscale context between calls.
    """

    def __init__(self, planes: np.ndarray, max_ratio: float) -> None:
        if planes.dtype != np.uint8 or planes.ndim != 3:
            raise ValueError("planes must be uint8, shaped (planes, height, width)")
        self.height, self.width = planes.shape[1:]
        self.pad = math.ceil(EXTRA * max(1.0, max_ratio)) + 2
        self.planes = np.pad(planes, ((0, 0), (self.pad, self.pad), (self.pad, self.pad)), "edge")
        self._scaler = VideoReformatter()

    def window(self, box: tuple[float, float, float, float], size: tuple[int, int]) -> np.ndarray:
        """Planes (planes, size[1], size[0]) showing ``box`` = (left, top, right, bottom)."""
        left, top, right, bottom = box
        width, height = size
        _, padded_h, padded_w = self.planes.shape
        x = place(left, right - left, width, self.pad, padded_w)
        y = place(top, bottom - top, height, self.pad, padded_h)
        out = np.empty((self.planes.shape[0], height, width), np.uint8)
        for plane, target in zip(self.planes, out, strict=True):
            crop = plane[y.start : y.start + y.length, x.start : x.start + x.length]
            frame = av.VideoFrame.from_numpy_buffer(crop, format="gray")
            scaled = self._scaler.reformat(
                frame, width=x.scaled, height=y.scaled, format="gray",
                interpolation=FLAGS, threads=1,
            ).to_ndarray()  # fmt: skip
            target[...] = scaled[y.offset : y.offset + height, x.offset : x.offset + width]
        return out
