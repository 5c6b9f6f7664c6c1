"""Preview renderers for the inputs beyond one image: reference images, a last frame
without a first one, and a video to extend.

* ``ReferencesToVideo``: the prompt's animated scene with every reference image shown
  whole, on a framed card that floats gently; cards move by whole pixels and never
  scale, so each one is the fitted reference itself (tests find them exactly).
* ``EndingOn``: a text-to-video scene that crossfades into a last frame and ends
  exactly on it (the image's camera runs backwards to rest on ``fit_frame(image)``).
* ``ExtendVideo``: the input video, resampled to the output rate and fitted to the
  frame, then new seconds that continue from its last frame with a camera move (the
  image-to-video renderer started on that frame). Source frames are decoded lazily, so
  frames must be asked for in order (as the engine's prefetcher does).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image

from reelforge.engines.base import VideoInput
from reelforge.engines.preview.image import TAIL_START, ImageToVideo, ease
from reelforge.engines.preview.text import TextToVideo
from reelforge.media.fit import fit_frame
from reelforge.media.videos import output_frame_count, video_frames

CARD_SHARE = 0.42
"""Side of a reference card relative to the frame's short side."""
CARD_BORDER_PX = 3
FLOAT_SHARE = 0.025
"""How far a card floats up and down, relative to the frame's short side."""
SHADOW = 0.45
"""Brightness of a card's drop shadow relative to the scene behind it."""


@dataclass(frozen=True)
class Box:
    """A card's picture in frame pixels: top-left corner and size."""

    left: int
    top: int
    width: int
    height: int


class ReferencesToVideo:
    """The scene with one framed card per reference image."""

    def __init__(
        self,
        scene: TextToVideo,
        references: tuple[Image.Image, ...],
        size: tuple[int, int],
        frame_count: int,
    ) -> None:
        self.scene = scene
        self.size = size
        self.frame_count = frame_count
        width, height = size
        count = max(1, len(references))
        landscape = width >= height
        along, across = (width, height) if landscape else (height, width)
        side = int(min(CARD_SHARE * across, 0.86 * along / count - 2 * CARD_BORDER_PX)) // 2 * 2
        self.cards = [
            np.asarray(fit_frame(image.convert("RGB"), (side, side))) for image in references
        ]
        gap = (along - count * side) / (count + 1)
        self.rest: list[tuple[int, int]] = []
        for index in range(count):
            offset = round(gap + index * (side + gap))
            middle = (across - side) // 2
            self.rest.append((offset, middle) if landscape else (middle, offset))
        self.side = side
        self.amplitude = FLOAT_SHARE * min(size)

    def boxes(self, index: int) -> list[Box]:
        """Where each card's picture is in frame ``index``."""
        t = index / max(1, self.frame_count - 1)
        placed = []
        for number, (left, top) in enumerate(self.rest):
            phase = 2 * math.pi * (t + number / max(1, len(self.rest)))
            dy = round(self.amplitude * math.sin(phase))
            dx = round(0.5 * self.amplitude * math.cos(phase))
            placed.append(Box(left + dx, top + dy, self.side, self.side))
        return placed

    def frame(self, index: int) -> np.ndarray:
        frame = np.array(self.scene.frame(index))
        height, width = frame.shape[:2]
        for card, box in zip(self.cards, self.boxes(index), strict=True):
            border = CARD_BORDER_PX
            shadow = (
                slice(box.top + 2 * border, box.top + box.height + 3 * border),
                slice(box.left + 2 * border, box.left + box.width + 3 * border),
            )
            frame[shadow] = (frame[shadow] * SHADOW).astype(np.uint8)
            top, left = max(0, box.top - border), max(0, box.left - border)
            frame[
                top : min(height, box.top + box.height + border),
                left : min(width, box.left + box.width + border),
            ] = 245
            frame[box.top : box.top + box.height, box.left : box.left + box.width] = card
        return frame


class EndingOn:
    """``first`` (any renderer) crossfading into ``image``; the last frame is exactly it."""

    def __init__(
        self,
        first: TextToVideo,
        image: Image.Image,
        size: tuple[int, int],
        frame_count: int,
        prompt: str,
        rng: np.random.Generator,
    ) -> None:
        self.first = first
        self.frame_count = frame_count
        self.tail = ImageToVideo(image, None, size, frame_count, prompt, rng)

    def frame(self, index: int) -> np.ndarray:
        last = self.frame_count - 1
        t = index / max(1, last)
        if index == last:
            return self.tail.frame(0)
        head = np.asarray(self.first.frame(index))
        if t <= TAIL_START:
            return head
        mix = ease((t - TAIL_START) / (1 - TAIL_START))
        tail = self.tail.frame(last - index)  # the camera comes to rest on the image
        return np.asarray(Image.blend(Image.fromarray(head), Image.fromarray(tail), mix))


class ExtendVideo:
    """The input video, then ``new_frames`` that continue from its last frame."""

    def __init__(
        self,
        video: VideoInput,
        size: tuple[int, int],
        fps: int,
        new_frames: int,
        prompt: str,
        rng: np.random.Generator,
    ) -> None:
        self.size = size
        self.prompt = prompt
        self.rng = rng
        self.new_frames = new_frames
        self.input_frames = output_frame_count(video.duration_seconds, fps)
        self.frame_count = self.input_frames + new_frames
        self._source: Iterator[np.ndarray] = video_frames(video.path, size, self.input_frames, fps)
        self._last: np.ndarray | None = None
        self._continuation: ImageToVideo | None = None

    def frame(self, index: int) -> np.ndarray:
        if index < self.input_frames:
            self._last = next(self._source)
            return self._last
        if self._continuation is None:
            for frame in self._source:  # only when asked out of order: finish the input
                self._last = frame
            assert self._last is not None
            self._continuation = ImageToVideo(
                Image.fromarray(self._last),
                None,
                self.size,
                self.new_frames + 1,
                self.prompt,
                self.rng,
            )
        # Frame 0 of the continuation is the input's last frame; the new seconds follow it.
        return self._continuation.frame(index - self.input_frames + 1)

    def close(self) -> None:
        close = getattr(self._source, "close", None)
        if close is not None:
            close()
