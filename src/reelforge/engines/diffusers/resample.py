"""From the model's native clip to the published one: 24 fps, the exact frame size.

**Time.** Output frame ``i`` shows the instant ``i / 24`` s. When the native clip covers
the requested duration (the usual case) the native clip plays in real time: the source
position is ``i / 24 * native_fps``. When it is shorter (a duration past the family's
``max_frames``) it is stretched evenly over the whole output: slow motion rather than a
frozen tail. A position between two native frames is rendered by *blending* them
linearly. We chose blending over nearest-frame mapping because Wan's 16 fps maps onto
24 fps as 1.5 output frames per source frame: nearest-frame repeats every other frame
and makes every camera pan judder in a 2-1-2-1 rhythm, while blending keeps motion
even at the price of a faint double image on very fast movement. Positions that land
on a native frame (LTX and Wan2.2 TI2V at 24 fps) copy it untouched.

**Space.** Each frame is scaled to *cover* the output size, centred, and the overflow
is cropped (no distortion, no bars); scaling and cropping are one bicubic resize of a
source box, done frame by frame as the encoder pulls frames, so only the native uint8
clip (about 330 MB for 121 frames at 1280x704) sits in memory, never a resized copy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from PIL import Image

BLEND_EPSILON = 1e-3
"""Positions this close to a native frame copy it instead of blending."""
PROGRESS_STEP = 0.01
"""Smallest progress advance reported, as a fraction of the output frames."""

Box = tuple[float, float, float, float]


def source_positions(native_count: int, native_fps: float, count: int, fps: float) -> np.ndarray:
    """For each of ``count`` output frames, its position in the native clip (frames)."""
    if native_count < 1 or count < 1:
        raise ValueError("both clips need at least one frame")
    index = np.arange(count, dtype=np.float64)
    last = native_count - 1
    real_time = index * (native_fps / fps)
    if count == 1 or real_time[-1] <= last:
        return real_time
    return index * (last / (count - 1))


def cover_box(source: tuple[int, int], target: tuple[int, int]) -> Box:
    """The centred region of ``source`` with ``target``'s aspect ratio, in source pixels."""
    source_width, source_height = source
    target_width, target_height = target
    scale = max(target_width / source_width, target_height / source_height)
    width, height = target_width / scale, target_height / scale
    left, top = (source_width - width) / 2, (source_height - height) / 2
    return left, top, left + width, top + height


def frame_at(video: np.ndarray, position: float) -> np.ndarray:
    """The native frame at ``position``, blended from its neighbours when between two."""
    last = video.shape[0] - 1
    base = min(int(np.floor(position)), last)
    weight = position - base
    if weight < BLEND_EPSILON or base >= last:
        return video[base]
    if weight > 1 - BLEND_EPSILON:
        return video[base + 1]
    mixed = video[base].astype(np.float32) * (1.0 - weight)
    mixed += video[base + 1].astype(np.float32) * weight
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def resize_cover(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``frame`` (H, W, 3) scaled to cover ``size`` (width, height) and centre-cropped."""
    height, width = frame.shape[:2]
    if (width, height) == size:
        return np.ascontiguousarray(frame)
    box = cover_box((width, height), size)
    image = Image.fromarray(frame).resize(size, Image.Resampling.BICUBIC, box=box)
    return np.asarray(image)


def output_frames(
    video: np.ndarray,
    native_fps: float,
    count: int,
    fps: float,
    size: tuple[int, int],
    report: Callable[[float], None],
) -> Iterator[np.ndarray]:
    """Yield ``count`` frames of ``size`` from ``video`` (N, H, W, 3) uint8, lazily.

    ``report(fraction)`` is called as frames go out (at least every ``PROGRESS_STEP`` and
    at the last frame); whatever it raises propagates to the consumer.
    """
    positions = source_positions(video.shape[0], native_fps, count, fps)
    reported = 0.0
    for index, position in enumerate(positions):
        frame = resize_cover(frame_at(video, float(position)), size)
        done = (index + 1) / count
        if done - reported >= PROGRESS_STEP or index + 1 == count:
            reported = done
            report(done)
        yield frame
