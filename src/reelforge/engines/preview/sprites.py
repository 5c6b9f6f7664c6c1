"""Subject silhouettes and soft light sources for the text-to-video scenes.

Silhouettes are drawn with Pillow polygons on a small greyscale mask each frame (so
wings flap and legs swing), supersampled for smooth edges; the scene composites the mask
in the subject colour. Coordinates inside a sprite are fractions of its side, facing
right; the caller mirrors the mask for subjects moving left.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

Point = tuple[float, float]
SUPERSAMPLE = 2
"""Drawing scale for small sprites; edges come out antialiased after the reduction."""
SUPERSAMPLE_LIMIT_PX = 200
"""Above this side length the sprite is drawn at 1x: edges are already smooth enough."""


def subject_mask(kind: str, side: int, phase: float) -> np.ndarray:
    """Alpha in 0..1, shape (side, side), of ``kind`` at animation ``phase`` (radians)."""
    side = max(4, side)
    factor = SUPERSAMPLE if side <= SUPERSAMPLE_LIMIT_PX else 1
    canvas = side * factor
    image = Image.new("L", (canvas, canvas), 0)
    draw = ImageDraw.Draw(image)
    _DRAWERS.get(kind, _orb)(_Pen(draw, canvas), phase)
    if factor > 1:
        image = image.reduce(factor)
    return np.asarray(image, dtype=np.float32) * (1.0 / 255.0)


class _Pen:
    """ImageDraw in unit coordinates."""

    def __init__(self, draw: ImageDraw.ImageDraw, size: int) -> None:
        self.draw = draw
        self.size = size

    def _xy(self, points: list[Point]) -> list[tuple[float, float]]:
        return [(x * self.size, y * self.size) for x, y in points]

    def poly(self, points: list[Point]) -> None:
        self.draw.polygon(self._xy(points), fill=255)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, fill: int = 255) -> None:
        s = self.size
        self.draw.ellipse(((cx - rx) * s, (cy - ry) * s, (cx + rx) * s, (cy + ry) * s), fill=fill)

    def line(self, points: list[Point], width: float) -> None:
        self.draw.line(
            self._xy(points), fill=255, width=max(1, round(width * self.size)), joint="curve"
        )
        radius = width / 2
        for x, y in (points[0], points[-1]):
            self.ellipse(x, y, radius, radius)


def _winged(pen: _Pen, phase: float, dragon: bool) -> None:
    flap = math.sin(phase)
    body_rx, body_ry = (0.2, 0.065) if dragon else (0.13, 0.06)
    pen.ellipse(0.5, 0.55, body_rx, body_ry)
    if dragon:
        pen.line([(0.64, 0.52), (0.74, 0.44), (0.8, 0.42)], 0.05)
        pen.poly([(0.78, 0.38), (0.92, 0.42), (0.78, 0.46)])
        pen.poly([(0.78, 0.39), (0.74, 0.33), (0.8, 0.38)])
        sway = 0.03 * math.sin(phase * 0.5)
        pen.line([(0.34, 0.56), (0.2, 0.6 + sway), (0.07, 0.55 - sway)], 0.035)
        pen.poly([(0.03, 0.5), (0.1, 0.55 - sway), (0.04, 0.6)])
    else:
        pen.ellipse(0.65, 0.5, 0.05, 0.045)
        pen.poly([(0.69, 0.48), (0.76, 0.51), (0.69, 0.53)])
        pen.poly([(0.38, 0.53), (0.22, 0.5 + 0.03 * flap), (0.25, 0.6), (0.4, 0.58)])
    _wing(pen, flap, 0.44 if dragon else 0.36, scalloped=dragon)
    _wing(pen, math.sin(phase - 0.5) * 0.7, 0.3 if dragon else 0.25, scalloped=dragon, dx=0.05)


def _wing(pen: _Pen, flap: float, length: float, scalloped: bool, dx: float = 0.0) -> None:
    """A wing seen from the side: its span projects vertically, so it shrinks mid-stroke."""
    sy = 0.52
    lift = length * flap
    tip = (0.34 + dx, sy - lift)
    points: list[Point] = [(0.6 + dx, sy), (0.55 + dx, sy - 0.55 * lift - 0.03), tip]
    if scalloped:
        points += [
            (0.4 + dx, sy - 0.62 * lift),
            (0.38 + dx, sy - 0.5 * lift),
            (0.44 + dx, sy - 0.34 * lift),
            (0.42 + dx, sy - 0.18 * lift),
        ]
    else:
        points += [(0.38 + dx, sy - 0.55 * lift), (0.42 + dx, sy - 0.2 * lift)]
    points.append((0.44 + dx, sy + 0.01))
    pen.poly(points)


def _quadruped(pen: _Pen, phase: float) -> None:
    pen.ellipse(0.48, 0.52, 0.22, 0.1)
    pen.line([(0.66, 0.5), (0.74, 0.38)], 0.09)
    pen.ellipse(0.77, 0.35, 0.07, 0.055)
    pen.poly([(0.82, 0.34), (0.9, 0.37), (0.82, 0.4)])
    pen.poly([(0.73, 0.3), (0.75, 0.22), (0.78, 0.3)])
    for hip_x, offset in ((0.33, 0.0), (0.38, math.pi), (0.6, math.pi), (0.65, 0.0)):
        swing = 0.07 * math.sin(phase + offset)
        pen.line([(hip_x, 0.56), (hip_x + swing * 0.5, 0.7), (hip_x + swing, 0.84)], 0.045)
    wag = 0.04 * math.sin(phase * 0.7)
    pen.line([(0.27, 0.48), (0.17, 0.42 + wag), (0.12, 0.36 + wag)], 0.035)


def _humanoid(pen: _Pen, phase: float) -> None:
    pen.ellipse(0.5, 0.16, 0.065, 0.075)
    pen.line([(0.5, 0.26), (0.5, 0.54)], 0.11)
    swing = math.sin(phase)
    for sign in (1.0, -1.0):
        hand = (0.5 + 0.12 * swing * sign, 0.48)
        pen.line([(0.5, 0.3), (0.5 + 0.06 * swing * sign, 0.4), hand], 0.05)
        knee = (0.5 + 0.08 * swing * sign, 0.7)
        pen.line([(0.5, 0.55), knee, (0.5 + 0.14 * swing * sign, 0.88)], 0.06)


def _fish(pen: _Pen, phase: float) -> None:
    pen.ellipse(0.52, 0.5, 0.26, 0.11)
    wag = 0.08 * math.sin(phase)
    pen.poly([(0.3, 0.5), (0.1, 0.36 + wag), (0.14, 0.5 + wag), (0.1, 0.64 + wag)])
    pen.poly([(0.45, 0.41), (0.55, 0.3), (0.6, 0.41)])
    pen.ellipse(0.68, 0.47, 0.015, 0.015, fill=0)


def _boat(pen: _Pen, phase: float) -> None:
    pen.poly([(0.12, 0.66), (0.88, 0.66), (0.76, 0.8), (0.24, 0.8)])
    pen.line([(0.52, 0.14), (0.52, 0.67)], 0.02)
    billow = 0.02 * math.sin(phase * 0.5)
    pen.poly([(0.53, 0.16), (0.53, 0.62), (0.82 + billow, 0.62)])
    pen.poly([(0.5, 0.2), (0.5, 0.62), (0.28 - billow, 0.62)])


def _vehicle(pen: _Pen, phase: float) -> None:
    pen.draw.rounded_rectangle(
        (0.08 * pen.size, 0.48 * pen.size, 0.92 * pen.size, 0.7 * pen.size),
        radius=0.06 * pen.size,
        fill=255,
    )
    pen.poly([(0.28, 0.49), (0.36, 0.34), (0.64, 0.34), (0.74, 0.49)])
    bounce = 0.006 * math.sin(phase * 2)
    for x in (0.27, 0.73):
        pen.ellipse(x, 0.72 + bounce, 0.09, 0.09)
        pen.ellipse(x, 0.72 + bounce, 0.035, 0.035, fill=0)


def _orb(pen: _Pen, phase: float) -> None:
    radius = 0.27 + 0.015 * math.sin(phase)
    pen.ellipse(0.5, 0.5, radius, radius)
    pen.ellipse(0.5, 0.5, 0.46, 0.07)
    pen.ellipse(0.5, 0.5, radius * 0.55, radius * 0.55, fill=140)


_DRAWERS: dict[str, Callable[[_Pen, float], None]] = {
    "dragon": lambda pen, phase: _winged(pen, phase, dragon=True),
    "winged": lambda pen, phase: _winged(pen, phase, dragon=False),
    "quadruped": _quadruped,
    "humanoid": _humanoid,
    "fish": _fish,
    "boat": _boat,
    "vehicle": _vehicle,
    "orb": _orb,
}


def disc(
    shape: tuple[int, int], cx: float, cy: float, radius: float, halo: float, reach: float
) -> tuple[np.ndarray, np.ndarray]:
    """Antialiased disc alpha and a soft halo, sampled at subpixel centre (cx, cy).

    Both arrays cover ``shape`` (a region whose origin the caller has subtracted from
    cx, cy). The halo falls off as an inverse square beyond the rim, scaled by ``halo``,
    and is tapered to exactly zero at ``reach`` so the region's edges never show.
    """
    ys = np.arange(shape[0], dtype=np.float32)[:, None] - np.float32(cy)
    xs = np.arange(shape[1], dtype=np.float32)[None, :] - np.float32(cx)
    dist2 = ys * ys + xs * xs
    dist = np.sqrt(dist2)
    alpha = np.clip(np.float32(radius + 0.5) - dist, 0.0, 1.0)
    taper = np.clip(1.0 - dist * np.float32(1.0 / reach), 0.0, 1.0)
    glow = np.float32(halo * radius * radius) / (dist2 + np.float32(radius * radius))
    glow *= taper * taper
    return alpha, glow


SUBJECT_SIDE = {
    "winged": 0.36,
    "dragon": 0.46,
    "quadruped": 0.3,
    "humanoid": 0.34,
    "fish": 0.3,
    "boat": 0.34,
    "vehicle": 0.32,
    "orb": 0.24,
}
"""Sprite side as a fraction of the frame's short side."""
GLOWING_WORDS = frozenset(
    {"phoenix", "spirit", "ghost", "orb", "ufo", "comet", "meteor", "fairy", "angel", "spaceship"}
)
DRAGON_WORDS = frozenset({"dragon", "dragons", "phoenix", "griffin"})


class Subject:
    """The prompt's subject: where it is, how big, and its pose at any moment."""

    def __init__(
        self,
        kind: str,
        word: str | None,
        motion: str,
        speed: float,
        size: tuple[int, int],
        horizon: int,
        water: bool,
        rng: np.random.Generator,
    ) -> None:
        self.kind = "dragon" if kind == "winged" and word in DRAGON_WORDS else kind
        self.glowing = word in GLOWING_WORDS or self.kind == "orb"
        self.motion, self.speed = motion, speed
        self.size, self.horizon, self.water = size, horizon, water
        if motion in ("left", "right"):
            self.heading = -1 if motion == "left" else 1
        else:
            self.heading = int(rng.choice([-1, 1]))
        self.anchor = (float(rng.uniform(0.35, 0.65)), float(rng.uniform(0.25, 0.4)))
        self.flap_hz = float(rng.uniform(1.6, 2.6)) * (0.6 if self.kind == "dragon" else 1.0)

    def state(self, seconds: float, progress: float) -> tuple[float, float, float, float]:
        """Centre x, centre y (px), scale and animation phase (radians)."""
        w, h = self.size
        motion, speed, kind = self.motion, self.speed, self.kind
        ax, ay = self.anchor
        x, y, scale = ax * w, ay * h, 1.0
        ground = kind in ("quadruped", "humanoid", "vehicle")
        if ground:
            y = (0.86 if not self.water else 0.8) * h - 0.38 * SUBJECT_SIDE[kind] * min(w, h)
        if kind == "boat":
            y = self.horizon + 0.35 * (h - self.horizon) + 0.01 * h * math.sin(seconds * 2.0)
        if motion in ("left", "right", "walk", "fly"):
            x = w / 2 + self.heading * 0.5 * min(1.5, speed) * w * (progress - 0.5)
        elif motion == "approach":
            scale = 0.45 + 1.9 * progress**1.6
            x = w * (0.5 + (ax - 0.5) * (1 - progress))
            y = h * (ay + (0.5 - ay) * progress)
        elif motion == "recede":
            scale = 1.8 - 1.45 * progress**0.8
        elif motion == "fall":
            y = h * (0.08 + 0.8 * progress**1.5)
        elif motion == "rise":
            y = h * (0.8 - 0.7 * progress**1.3)
        elif motion == "circle":
            angle = 2 * math.pi * progress * speed + ax * 6
            x, y = w * (0.5 + 0.28 * math.cos(angle)), h * (0.38 + 0.14 * math.sin(angle))
        else:
            x += 0.04 * w * math.sin(seconds * 0.9 * speed)
        if not ground and kind != "boat":
            y += 0.025 * h * math.sin(seconds * 2.2 + ax * 5)
        return x, y, scale, seconds * 2 * math.pi * self.flap_hz * speed

    def draw(
        self,
        frame: np.ndarray,
        seconds: float,
        progress: float,
        color: np.ndarray,
        glow: np.ndarray,
    ) -> None:
        """Composite onto a planar float frame; colours are (3,) arrays in 0..255."""
        width, height = self.size
        cx, cy, scale, phase = self.state(seconds, progress)
        side = max(8, round(SUBJECT_SIDE[self.kind] * min(width, height) * scale))
        mask = subject_mask(self.kind, side, phase)
        if self.heading < 0 and self.motion not in ("approach", "recede"):
            mask = mask[:, ::-1]
        x0, y0 = round(cx - side / 2), round(cy - side / 2)
        fx0, fy0 = max(0, x0), max(0, y0)
        fx1, fy1 = min(width, x0 + side), min(height, y0 + side)
        if fx1 <= fx0 or fy1 <= fy0:
            return
        alpha = mask[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
        region = frame[:, fy0:fy1, fx0:fx1]
        region += alpha[None] * (color[:, None, None] - region)
        if self.glowing:
            _, halo = disc(alpha.shape, cx - fx0, cy - fy0, side * 0.18, 0.9, side * 0.5)
            region += (halo * (1 - alpha))[None] * glow[:, None, None]
