"""Image-to-video: camera motion over the input picture, optionally ending on a tail image.

Frame 0 is exactly ``fit_frame(image, size)``. The source is fitted once to a canvas a
little more than ``MAX_ZOOM`` times the frame, and each frame resamples a moving window of
that canvas, so the camera can push in, pan, tilt or orbit without ever showing a border
and without upscaling. A zoom out cannot reveal what is outside the picture, so it
shrinks the picture over a blurred, darkened copy of itself. With a tail image the second
part of the clip crossfades to it while both cameras settle; the last frame is exactly
``fit_frame(tail_image, size)``.

Windows are resampled by ``media.resample`` (swscale, placed within about a tenth of a
pixel) into planar frames, which the encoder takes without interleaving: Pillow's exact
resampling cost more per frame than x264's encoding (docs/performance.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from reelforge.engines.preview.scene import tokens
from reelforge.media.clip import planar_frame
from reelforge.media.fit import fit_cover, fit_frame
from reelforge.media.resample import PlaneResampler

MAX_ZOOM = 1.25
"""How much the camera can magnify the fitted picture: the tightest framing."""
CANVAS_SPARE = 1.05
"""The canvas is ``MAX_ZOOM * CANVAS_SPARE`` times the frame, so even the tightest framing
shrinks it a little: sub-pixel placement needs a source-to-frame ratio away from 1
(``media.resample``), and nothing is ever upscaled."""
LINEAR_SHARE = 0.3
"""Part of the easing that is linear, so the camera never stands still at either end."""
ZOOM_OUT_SCALE = 0.78
"""How small the picture gets over the backdrop at the end of a zoom out."""
TAIL_START = 0.45
"""Fraction of the clip after which the crossfade to the tail image begins."""

CAMERA_PHRASES: dict[str, tuple[str, ...]] = {
    "zoom_out": ("zoom out", "zooms out", "zooming out", "pull back", "pulls back",
                 "pulling back", "dolly out", "wide shot"),
    "zoom_in": ("zoom in", "zooms in", "zooming in", "push in", "pushes in", "dolly in",
                "closer", "close up"),
    "pan_left": ("pan left", "pans left", "panning left"),
    "pan_right": ("pan right", "pans right", "panning right"),
    "tilt_up": ("tilt up", "tilts up", "tilting up"),
    "tilt_down": ("tilt down", "tilts down", "tilting down"),
    "orbit": ("orbit", "orbits", "orbiting", "circle around", "circles around", "arc shot"),
}  # fmt: skip
"""Camera moves and the phrases that ask for them."""


def camera_for(prompt: str) -> str:
    """The camera move the prompt asks for; the earliest phrase wins, default push-in."""
    padded, _ = tokens(prompt)
    best: tuple[int, str] | None = None
    for move, phrases in CAMERA_PHRASES.items():
        for phrase in phrases:
            position = padded.find(f" {phrase} ")
            if position >= 0 and (best is None or position < best[0]):
                best = (position, move)
    return best[1] if best else "push_in"


def ease(t: float) -> float:
    """Smoothstep blended with linear: starts and ends gently, never at zero speed."""
    t = min(1.0, max(0.0, t))
    return (1 - LINEAR_SHARE) * t * t * (3 - 2 * t) + LINEAR_SHARE * t


@dataclass(frozen=True)
class Window:
    """A camera window in canvas pixels: centre and zoom (1 = the whole canvas)."""

    cx: float
    cy: float
    zoom: float


class _Camera:
    """Renders windows of one fitted picture, as (3, height, width) RGB planes."""

    def __init__(self, image: Image.Image, size: tuple[int, int]) -> None:
        self.size = size
        self.first = np.asarray(fit_frame(image, size))
        spare = MAX_ZOOM * CANVAS_SPARE
        canvas_size = (round(size[0] * spare), round(size[1] * spare))
        canvas = np.asarray(fit_frame(image, canvas_size))
        self.canvas = PlaneResampler(
            np.ascontiguousarray(canvas.transpose(2, 0, 1)), spare / ZOOM_OUT_SCALE
        )
        self.canvas_size = canvas_size

    def box(self, window: Window) -> tuple[float, float, float, float]:
        """The canvas area ``window`` shows, kept inside the canvas."""
        cw, ch = self.canvas_size
        w, h = cw / window.zoom, ch / window.zoom
        left = min(max(window.cx - w / 2, 0.0), cw - w)
        top = min(max(window.cy - h / 2, 0.0), ch - h)
        return (left, top, left + w, top + h)

    def render(self, window: Window) -> np.ndarray:
        return self.canvas.window(self.box(window), self.size)


class ImageToVideo:
    """Iterate to get ``frame_count`` RGB uint8 frames, rendered lazily."""

    def __init__(
        self,
        image: Image.Image,
        tail_image: Image.Image | None,
        size: tuple[int, int],
        frame_count: int,
        prompt: str,
        rng: np.random.Generator,
    ) -> None:
        self.size = size
        self.frame_count = frame_count
        self.move = camera_for(prompt)
        padded, _ = tokens(prompt)
        gentle = any(f" {w} " in padded for w in ("slow", "slowly", "gentle", "gently", "subtle"))
        strong = any(f" {w} " in padded for w in ("fast", "dramatic", "rapid", "quick", "quickly"))
        self.strength = 0.6 if gentle else (1.0 if strong else 0.85)
        self.head = _Camera(image.convert("RGB"), size)
        self.tail = _Camera(tail_image.convert("RGB"), size) if tail_image is not None else None
        self.drift = (float(rng.uniform(-1, 1)), float(rng.uniform(-1, 1)))
        self.backdrop: np.ndarray | None = None
        if self.move == "zoom_out":
            blurred = fit_cover(image.convert("RGB"), size).filter(
                ImageFilter.GaussianBlur(radius=max(4.0, 0.025 * max(size)))
            )
            darker = (np.asarray(blurred, dtype=np.float32) * 0.45).astype(np.uint8)
            self.backdrop = np.ascontiguousarray(darker.transpose(2, 0, 1))

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(self.frame_count):
            yield self.frame(i)

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i``; frames are independent of each other."""
        last = self.frame_count - 1
        if i == 0:
            return self.head.first
        if self.tail is not None and i == last:
            return self.tail.first
        t = i / max(1, last)
        head = self._head_planes(t)
        if self.tail is None or t <= TAIL_START:
            return planar_frame(head)
        mix = ease((t - TAIL_START) / (1 - TAIL_START))
        settle = 1 - mix
        tail_window = Window(
            self.tail.canvas_size[0] / 2,
            self.tail.canvas_size[1] / 2,
            1 + (MAX_ZOOM - 1) * 0.6 * self.strength * settle,
        )
        tail = self.tail.render(tail_window)
        # The planes stacked as one greyscale picture: one blend for all three.
        rows = (-1, self.size[0])
        blended = Image.blend(
            Image.fromarray(head.reshape(rows)), Image.fromarray(tail.reshape(rows)), mix
        )
        return planar_frame(np.asarray(blended).reshape(head.shape))

    def _head_planes(self, t: float) -> np.ndarray:
        e = ease(t)
        if self.move == "zoom_out":
            return self._zoom_out(e)
        return self.head.render(self.window(e))

    def window(self, e: float) -> Window:
        """The head camera's window at eased progress ``e`` (0 → whole canvas)."""
        cw, ch = self.head.canvas_size
        reach = (MAX_ZOOM - 1) * self.strength
        move = self.move
        if move == "zoom_in":
            zoom = 1 + reach * e
        elif move == "push_in":
            zoom = 1 + 0.55 * reach * e
        else:
            zoom = 1 + 0.75 * reach * e
        slack_x = (cw - cw / zoom) / 2
        slack_y = (ch - ch / zoom) / 2
        dx = dy = 0.0
        if move == "pan_left":
            dx = -slack_x
        elif move == "pan_right":
            dx = slack_x
        elif move == "tilt_up":
            dy = -slack_y
        elif move == "tilt_down":
            dy = slack_y
        elif move == "orbit":
            angle = math.pi * e
            dx = slack_x * math.sin(angle) * 0.95
            dy = slack_y * math.sin(2 * angle) * 0.6
        elif move == "push_in":
            dx, dy = slack_x * 0.5 * self.drift[0], slack_y * 0.5 * self.drift[1]
        return Window(cw / 2 + dx, ch / 2 + dy, zoom)

    def _zoom_out(self, e: float) -> np.ndarray:
        assert self.backdrop is not None
        width, height = self.size
        scale = 1 - (1 - ZOOM_OUT_SCALE) * self.strength * e
        margin_x = min(max(1, math.ceil(width * (1 - scale) / 2)), (width - 2) // 2)
        margin_y = min(max(1, math.ceil(height * (1 - scale) / 2)), (height - 2) // 2)
        inner = (width - 2 * margin_x, height - 2 * margin_y)
        cw, ch = self.head.canvas_size
        to_canvas_x, to_canvas_y = cw / (width * scale), ch / (height * scale)
        left = max(0.0, (margin_x - width * (1 - scale) / 2) * to_canvas_x)
        top = max(0.0, (margin_y - height * (1 - scale) / 2) * to_canvas_y)
        box = (left, top, cw - left, ch - top)
        frame = self.backdrop.copy()
        frame[:, margin_y : height - margin_y, margin_x : width - margin_x] = (
            self.head.canvas.window(box, inner)
        )
        return frame
