"""Particles and bursts, drawn as soft splats.

Motion is analytic (position = start + velocity x time + wobble, wrapped), so any frame
can be rendered on its own and two renders of a request agree bit for bit. Splats are
small Gaussian kernels centred at subpixel positions and accumulated with ``np.add.at``,
so even slow particles move smoothly.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

from reelforge.engines.preview.scene import Color
from reelforge.engines.preview.sprites import disc


def splat(
    frame: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    weights: np.ndarray,
    colors: np.ndarray,
    sigma: float,
) -> None:
    """Add Gaussian dots of ``colors`` (N, 3) scaled by ``weights`` (N,) to a planar frame."""
    height, width = frame.shape[1:]
    radius = max(1, math.ceil(sigma * (2.0 if sigma > 1.0 else 1.5)))
    offsets = np.arange(-radius, radius + 1, dtype=np.float32)
    ix = np.floor(xs)[:, None, None] + offsets[None, None, :]
    iy = np.floor(ys)[:, None, None] + offsets[None, :, None]
    dx = ix - xs[:, None, None]
    dy = iy - ys[:, None, None]
    kernel = np.exp((dx * dx + dy * dy) * np.float32(-0.5 / (sigma * sigma)))
    kernel *= weights[:, None, None]
    ix, iy = np.broadcast_arrays(ix, iy)
    valid = (ix >= 0) & (ix < width) & (iy >= 0) & (iy < height)
    if not valid.any():
        return
    index = (iy[valid] * width + ix[valid]).astype(np.intp)
    owner = np.broadcast_to(np.arange(len(xs))[:, None, None], valid.shape)[valid]
    amount = kernel[valid]
    for channel in range(3):
        values = (amount * colors[owner, channel]).astype(np.float32)
        np.add.at(frame[channel].reshape(-1), index, values)


@dataclass(frozen=True)
class _Style:
    count_per_mpx: float
    velocity: tuple[float, float, float, float]
    """x min, x max, y min, y max in px/s at 720p."""
    wobble: float
    sigma: tuple[float, float]
    brightness: tuple[float, float]
    blink: float
    """0 = steady, 1 = fully blinking."""
    streak: int = 1


_STYLES: dict[str, _Style] = {
    "dust": _Style(130, (-10, 10, -6, 6), 6, (0.7, 1.2), (0.15, 0.45), 0.3),
    "fireflies": _Style(60, (-12, 12, -8, 8), 28, (1.4, 2.4), (0.8, 1.6), 1.0),
    "embers": _Style(190, (-20, 20, -130, -40), 10, (0.8, 1.5), (0.7, 1.6), 0.6),
    "snowfall": _Style(320, (-12, 12, 30, 90), 14, (0.8, 1.6), (0.6, 1.0), 0.0),
    "rain": _Style(280, (50, 70, 900, 1300), 0, (0.5, 0.6), (0.14, 0.24), 0.0, streak=12),
    "bubbles": _Style(90, (-6, 6, -90, -30), 9, (1.4, 2.6), (0.35, 0.7), 0.0),
}


class Particles:
    """One kind of particle drifting over the whole frame."""

    def __init__(
        self,
        kind: str,
        size: tuple[int, int],
        color: Color,
        rng: np.random.Generator,
        speed: float = 1.0,
    ) -> None:
        width, height = size
        style = _STYLES[kind]
        unit = min(width, height) / 720.0
        count = max(8, round(style.count_per_mpx * width * height / 1e6 * 1.6))
        self.size = (width, height)
        self.style = style
        self.start = rng.uniform((0, 0), (width, height), size=(count, 2)).astype(np.float32)
        vx0, vx1, vy0, vy1 = style.velocity
        depth = rng.uniform(0.5, 1.0, count).astype(np.float32)
        self.velocity = np.stack(
            [rng.uniform(vx0, vx1, count), rng.uniform(vy0, vy1, count)], axis=1
        ).astype(np.float32) * (unit * speed * depth[:, None])
        self.wobble = np.float32(style.wobble * unit)
        self.phase = rng.uniform(0, 2 * math.pi, (count, 3)).astype(np.float32)
        self.freq = rng.uniform(0.15, 0.6, (count, 2)).astype(np.float32)
        self.brightness = (rng.uniform(*style.brightness, count) * depth).astype(np.float32)
        self.sigma = float(np.mean(style.sigma)) * max(unit, 0.5)
        self.colors = np.tile(np.asarray(color, np.float32), (count, 1))
        self.margin = 4 * self.sigma + (40 * unit if style.streak > 1 else 0)

    def positions(self, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        width, height = self.size
        t = np.float32(seconds)
        wob_x = self.wobble * np.sin(self.freq[:, 0] * t * 2 * math.pi + self.phase[:, 0])
        wob_y = self.wobble * 0.6 * np.sin(self.freq[:, 1] * t * 2 * math.pi + self.phase[:, 1])
        span_x, span_y = width + 2 * self.margin, height + 2 * self.margin
        xs = np.mod(self.start[:, 0] + self.velocity[:, 0] * t + wob_x, span_x) - self.margin
        ys = np.mod(self.start[:, 1] + self.velocity[:, 1] * t + wob_y, span_y) - self.margin
        return xs.astype(np.float32), ys.astype(np.float32)

    def draw(self, frame: np.ndarray, seconds: float, fps: int) -> None:
        xs, ys = self.positions(seconds)
        weights = self.brightness
        if self.style.blink > 0:
            pulse = 0.5 + 0.5 * np.sin(
                self.phase[:, 2] + np.float32(seconds * 3.0) * self.freq[:, 0] * 4
            )
            weights = weights * ((1 - self.style.blink) + self.style.blink * pulse * pulse)
        if self.style.streak > 1:
            steps = np.linspace(0.0, 1.0, self.style.streak, dtype=np.float32)
            trail = self.velocity / np.float32(fps) * 0.5
            xs = (xs[:, None] - trail[:, 0:1] * steps[None, :]).ravel()
            ys = (ys[:, None] - trail[:, 1:2] * steps[None, :]).ravel()
            weights = np.repeat(weights, self.style.streak)
            colors = np.repeat(self.colors, self.style.streak, axis=0)
        else:
            colors = self.colors
        splat(frame, xs, ys, weights.astype(np.float32), colors, self.sigma)


class Bursts:
    """Explosions or fireworks: a flash of light and a ring of falling sparks."""

    LIFETIME_S = 1.8

    def __init__(
        self,
        size: tuple[int, int],
        duration_s: float,
        sky_bottom: int,
        colors: tuple[Color, Color],
        rng: np.random.Generator,
        colorful: bool,
    ) -> None:
        width, height = size
        self.size = size
        self.unit = min(width, height) / 720.0
        count = max(2, round(duration_s * 0.9))
        self.times = np.sort(rng.uniform(0.0, max(0.1, duration_s - 0.6), count))
        self.centers = np.stack(
            [rng.uniform(0.15, 0.85, count) * width, rng.uniform(0.15, 0.7, count) * sky_bottom],
            axis=1,
        )
        self.scales = rng.uniform(0.7, 1.3, count)
        sparks = 70
        angle = rng.uniform(0, 2 * math.pi, (count, sparks))
        speed = rng.uniform(0.35, 1.0, (count, sparks))
        self.directions = np.stack([np.cos(angle) * speed, np.sin(angle) * speed], axis=-1)
        base = np.asarray(colors, np.float32)
        self.palette: list[np.ndarray] = []
        for _ in range(count):
            if colorful:
                r, g, b = colorsys.hsv_to_rgb(float(rng.uniform()), 0.7, 1.0)
                tint = np.array([r, g, b], np.float32) * 255
            else:
                tint = base[0] + (base[1] - base[0]) * np.float32(rng.uniform())
            self.palette.append(tint)

    def draw(self, frame: np.ndarray, seconds: float) -> None:
        height, width = frame.shape[1:]
        for k, start in enumerate(self.times):
            age = seconds - start
            if age < 0 or age > self.LIFETIME_S:
                continue
            reach = 0.22 * min(width, height) * self.scales[k]
            cx, cy = self.centers[k]
            tint = self.palette[k]
            flash = math.exp(-age / 0.22) * (1.0 - math.exp(-age / 0.03 - 0.05))
            if flash > 0.01:
                radius = reach * (0.25 + 0.35 * min(1.0, age / 0.3))
                x0, x1 = max(0, int(cx - 3 * radius)), min(width, int(cx + 3 * radius) + 1)
                y0, y1 = max(0, int(cy - 3 * radius)), min(height, int(cy + 3 * radius) + 1)
                if x1 > x0 and y1 > y0:
                    core, glow = disc(
                        (y1 - y0, x1 - x0), cx - x0, cy - y0, radius * 0.35, 1.0, 3 * radius
                    )
                    light = (core * 0.8 + glow) * np.float32(flash * 1.1)
                    frame[:, y0:y1, x0:x1] += light[None] * tint[:, None, None]
            travel = reach * (1.0 - math.exp(-age / 0.35))
            drop = 60.0 * self.unit * age * age
            xs = (cx + self.directions[k, :, 0] * travel).astype(np.float32)
            ys = (cy + self.directions[k, :, 1] * travel + drop).astype(np.float32)
            fade = math.exp(-age / 0.6)
            weights = np.full(len(xs), 1.8 * fade, np.float32)
            colors = np.broadcast_to(tint, (len(xs), 3))
            splat(frame, xs, ys, weights, colors, 1.1 * max(self.unit, 0.6))
