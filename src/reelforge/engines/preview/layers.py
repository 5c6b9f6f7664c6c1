"""Landscape layers: mountains, hills, tree lines, city skylines and water.

Each layer is a silhouette (a ridge height per column) wider than the frame by as much
as it will slide during the clip, stored premultiplied so compositing a frame is two
passes over the layer's rows. Far layers slide slowly and are hazed toward the horizon
colour, near layers slide fastest: parallax that reads as a camera moving sideways.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from reelforge.engines.preview.scene import Palette


def smooth_noise(
    rng: np.random.Generator, shape: tuple[int, int], cell: float, octaves: int = 1
) -> np.ndarray:
    """Value noise in 0..1 with features about ``cell`` pixels across (bicubic upsampling)."""
    rows, cols = shape
    total = np.zeros(shape, dtype=np.float32)
    amplitude = 1.0
    for _ in range(octaves):
        grid_rows = max(2, math.ceil(rows / cell) + 2)
        grid_cols = max(2, math.ceil(cols / cell) + 2)
        grid = rng.random((grid_rows, grid_cols), dtype=np.float32)
        image = Image.fromarray(grid, mode="F").resize((cols, rows), Image.Resampling.BICUBIC)
        total += np.asarray(image, dtype=np.float32) * amplitude
        amplitude *= 0.5
        cell = max(2.0, cell / 2)
    low, high = float(total.min()), float(total.max())
    return (total - low) / max(high - low, 1e-6)


@dataclass
class Layer:
    """A premultiplied texture that slides ``speed`` px per frame (ridges, clouds, fog).

    Arrays are planar ((3, rows, cols) colour): numpy is several times faster when the
    innermost axis is a long row than when it is an RGB triple. ``inv_alpha`` is None for
    purely additive layers (light, or clouds stored as a difference from the bare sky).
    """

    top: int
    inv_alpha: np.ndarray | None
    premultiplied: np.ndarray
    speed: float
    direction: int
    solid: np.ndarray | None = None
    """Row colours (3, rows, 1) for the fully covered rows below the blended band."""
    fog_after: bool = False
    """Fog drifts in front of this layer (and behind the nearer ones)."""

    def draw(self, frame: np.ndarray, i: int) -> None:
        """Composite onto a planar (3, height, width) frame."""
        width = frame.shape[2]
        rows, cols = self.premultiplied.shape[1:]
        span = cols - width
        shift = math.floor(self.speed * i)
        offset = int(np.clip(span - shift if self.direction > 0 else shift, 0, span))
        rows = min(rows, frame.shape[1] - self.top)
        if rows <= 0:
            return
        target = frame[:, self.top : self.top + rows]
        if self.inv_alpha is not None:
            target *= self.inv_alpha[None, :rows, offset : offset + width]
        target += self.premultiplied[:, :rows, offset : offset + width]
        if self.solid is not None:
            below = self.top + rows
            frame[:, below : below + self.solid.shape[1]] = self.solid


def scrolling_layer(
    top: int, alpha: np.ndarray, color: np.ndarray, speed: float, direction: int, over: bool
) -> Layer:
    """``alpha`` (rows, cols) times a planar ``color`` (3, 1 or rows, 1); ``over`` hides
    what is behind (fog), otherwise the colour is added (light, sky-relative clouds)."""
    alpha = alpha.astype(np.float32)
    premultiplied = np.ascontiguousarray(alpha[None] * color, dtype=np.float32)
    inverse = (1.0 - alpha).astype(np.float32) if over else None
    return Layer(top, inverse, premultiplied, speed, direction)


def _color(value: tuple[float, float, float]) -> np.ndarray:
    return np.asarray(value, dtype=np.float32)


def _profile(rng: np.random.Generator, length: int, spacing: float, octaves: int) -> np.ndarray:
    return smooth_noise(rng, (1, length), spacing, octaves)[0]


def _trees(
    rng: np.random.Generator,
    length: int,
    base: np.ndarray,
    width_px: tuple[float, float],
    height_px: tuple[float, float],
    density: float,
) -> np.ndarray:
    """Lower ``base`` (ridge y per column) by jagged conifer shapes."""
    heights = np.zeros(length, dtype=np.float32)
    x = 0.0
    while x < length:
        w = float(rng.uniform(*width_px))
        h = float(rng.uniform(*height_px))
        lo, hi = max(0, int(x - w / 2)), min(length, int(x + w / 2) + 1)
        cols = np.arange(lo, hi, dtype=np.float32)
        rel = np.abs(cols - x) / (w / 2)
        tiers = 1.0 - 0.12 * ((cols - lo) * 4.0 / max(w, 1.0) % 1.0)
        shape = np.clip(1.0 - rel, 0, 1) * h * tiers
        heights[lo:hi] = np.maximum(heights[lo:hi], shape)
        x += w * float(rng.uniform(0.35, 0.8)) / density
    return base - heights


def _buildings(
    rng: np.random.Generator, length: int, base_y: float, height: int, width: int
) -> tuple[np.ndarray, list[tuple[int, int, float]]]:
    ridge = np.full(length, base_y, dtype=np.float32)
    blocks: list[tuple[int, int, float]] = []
    x = 0
    while x < length:
        w = int(rng.uniform(0.03, 0.08) * width) + 2
        top = base_y - float(rng.uniform(0.08, 0.34)) * height
        ridge[x : x + w] = np.minimum(ridge[x : x + w], top)
        blocks.append((x, min(length, x + w), top))
        x += w + int(rng.integers(0, max(2, int(0.01 * width))))
    return ridge, blocks


def _layer(
    ridge: np.ndarray,
    bottom: int,
    color: np.ndarray,
    haze_to: np.ndarray,
    haze: float,
    speed: float,
    direction: int,
    texture: np.ndarray | None = None,
) -> Layer:
    top = max(0, math.floor(float(ridge.min())))
    bottom = max(bottom, top + 1)
    rows = np.arange(top, bottom, dtype=np.float32)[:, None]
    alpha = np.clip(rows - ridge[None, :] + 0.5, 0.0, 1.0)
    depth = np.clip((rows - top) / max(1.0, bottom - top), 0, 1)[..., None]
    shade = color + (haze_to - color) * (haze * depth)
    if texture is not None:
        rows_needed = bottom - top
        texture = texture[:rows_needed]
        if texture.shape[0] < rows_needed:
            texture = np.pad(texture, ((0, rows_needed - texture.shape[0]), (0, 0), (0, 0)))
        shade = shade + texture
    blend_rows = alpha.shape[0]
    solid = None
    if texture is None:
        blend_rows = min(blend_rows, max(1, math.ceil(float(ridge.max()) + 0.5) - top + 1))
        if blend_rows < alpha.shape[0]:
            solid = np.ascontiguousarray(np.moveaxis(shade[blend_rows:], -1, 0), np.float32)
    alpha = alpha[:blend_rows]
    premultiplied = np.ascontiguousarray(
        np.moveaxis(alpha[..., None] * shade[:blend_rows], -1, 0), dtype=np.float32
    )
    return Layer(top, (1.0 - alpha).astype(np.float32), premultiplied, speed, direction, solid)


def build_ridges(
    elements: frozenset[str],
    palette: Palette,
    size: tuple[int, int],
    horizon: int,
    water: bool,
    frame_count: int,
    near_speed: float,
    rng: np.random.Generator,
    direction: int = 1,
) -> list[Layer]:
    """The scene's silhouettes, far to near; empty for open skies."""
    width, height = size
    if not elements & {"mountains", "forest", "city", "water"}:
        return []
    far, near, sky = _color(palette.far), _color(palette.near), _color(palette.horizon)
    specs: list[tuple[np.ndarray, np.ndarray, float, float, np.ndarray | None]] = []
    """(ridge, colour, haze, speed, texture) from far to near."""

    def strip(speed: float) -> int:
        return width + math.ceil(speed * frame_count) + 2

    if "mountains" in elements:
        speed = near_speed / 4
        length = strip(speed)
        peaks = _profile(rng, length, 0.3 * width, 4) ** 1.3
        ridge = horizon + 0.01 * height - float(rng.uniform(0.2, 0.3)) * height * peaks
        specs.append((ridge, far + (sky - far) * 0.45, 0.5, speed, None))
        speed = near_speed / 2
        length = strip(speed)
        ridge = horizon + 0.03 * height - 0.15 * height * _profile(rng, length, 0.2 * width, 3)
        specs.append((ridge, far, 0.35, speed, None))
    if "city" in elements:
        speed = near_speed * 0.6
        length = strip(speed)
        ridge, blocks = _buildings(rng, length, horizon + 0.02 * height, height, width)
        tone = near + (far - near) * 0.4
        texture = _windows(rng, ridge, blocks, height, palette)
        specs.append((ridge, tone, 0.1, speed, texture))
    if "forest" in elements:
        speed = near_speed * 0.7
        length = strip(speed)
        base = horizon + 0.02 * height - 0.04 * height * _profile(rng, length, 0.4 * width, 2)
        unit = min(width, height)
        ridge = _trees(
            rng, length, base, (0.03 * unit, 0.06 * unit), (0.05 * height, 0.11 * height), 1.6
        )
        specs.append((ridge, near + (far - near) * 0.55, 0.25, speed, None))
    if not water:
        speed = near_speed
        length = strip(speed)
        base = horizon + 0.1 * height - 0.05 * height * _profile(rng, length, 0.5 * width, 2)
        if "forest" in elements:
            unit = min(width, height)
            base = _trees(
                rng, length, base, (0.07 * unit, 0.12 * unit), (0.15 * height, 0.32 * height), 0.7
            )
        specs.append((base, near, 0.0, speed, None))

    layers: list[Layer] = []
    for index, (ridge, color, haze, speed, texture) in enumerate(specs):
        if water:
            bottom = horizon
        elif index + 1 < len(specs):
            bottom = min(height, math.ceil(float(specs[index + 1][0].max())) + 1)
        else:
            bottom = height
        layers.append(_layer(ridge, bottom, color, sky, haze, speed, direction, texture))
    if layers:
        layers[min(len(layers) - 1, max(0, len(layers) - 2))].fog_after = True
    return layers


def _windows(
    rng: np.random.Generator,
    ridge: np.ndarray,
    blocks: list[tuple[int, int, float]],
    height: int,
    palette: Palette,
) -> np.ndarray:
    """Lit windows as an additive texture over the skyline's rows."""
    top = math.floor(float(ridge.min()))
    bottom = math.ceil(float(ridge.max())) + int(0.12 * height)
    texture = np.zeros((bottom - top, ridge.shape[0], 3), dtype=np.float32)
    cell_y = max(3, int(0.014 * height))
    cell_x = max(3, int(0.01 * height))
    lit = _color(palette.accent) * 0.7
    for x0, x1, roof in blocks:
        for y in range(int(roof) + cell_y, bottom, cell_y * 2):
            for x in range(x0 + cell_x, x1 - cell_x, cell_x * 2):
                if rng.random() < 0.32:
                    texture[y - top : y - top + cell_y, x : x + cell_x] = lit
    return texture


class Water:
    """Two wave trains in perspective below the horizon, with a glitter path under the
    sun or moon. Stored as sin/cos pairs, so a frame only mixes four precomputed arrays."""

    def __init__(
        self,
        size: tuple[int, int],
        horizon: int,
        glint_x: float | None,
        palette: Palette,
        speed: float,
        rng: np.random.Generator,
    ) -> None:
        width, height = size
        self.horizon = horizon
        self.speed = 1.2 * speed
        self.light = tuple(np.float32(c / 255) for c in palette.water_light)
        self.glow = tuple(np.float32(c / 255) for c in palette.glow)
        rows = height - horizon
        depth = 0.1 + np.arange(rows, dtype=np.float32)[:, None] / max(1, rows)
        x = np.arange(width, dtype=np.float32)[None, :] - width / 2
        distance = 1.0 / depth
        lateral = x / (0.5 * width) * distance
        terms = []
        for weight, along, across in ((0.6, 17.0, 5.0), (0.4, 29.0, -9.0)):
            phase = along * distance + across * lateral + rng.uniform(0, 2 * math.pi)
            terms.append((np.sin(phase) * weight).astype(np.float32))
            terms.append((np.cos(phase) * weight).astype(np.float32))
        self.terms = terms
        fade = np.clip(depth * 1.4 - 0.1, 0, 1)
        self.amplitude = (22 * fade).astype(np.float32)
        centre = 0.0 if glint_x is None else glint_x - width / 2
        spread = (0.04 + 0.12 * depth) * width
        glint = np.exp(-(((x - centre) / spread) ** 2)) * (0.4 if glint_x is None else 1.0)
        self.glint = ((25 + 260 * glint) * fade).astype(np.float32)
        self.value = np.empty((rows, width), np.float32)
        self.scratch = np.empty((rows, width), np.float32)

    def draw(self, frame: np.ndarray, background: np.ndarray, seconds: float) -> None:
        """Write the water rows of a planar frame: background plus this frame's waves."""
        sa, ca, sb, cb = self.terms
        value, scratch = self.value, self.scratch
        wa, wb = seconds * 2.1 * self.speed, seconds * 3.3 * self.speed
        np.multiply(sa, np.float32(math.cos(wa)), out=value)
        np.multiply(ca, np.float32(math.sin(wa)), out=scratch)
        value -= scratch
        np.multiply(sb, np.float32(math.cos(wb)), out=scratch)
        value += scratch
        np.multiply(cb, np.float32(math.sin(wb)), out=scratch)
        value -= scratch
        shade = value * self.amplitude
        np.subtract(value, 0.5, out=scratch)
        np.maximum(scratch, 0, out=scratch)
        scratch *= self.glint
        base = background[:, self.horizon :]
        for channel in range(3):
            target = frame[channel, self.horizon :]
            np.multiply(shade, self.light[channel], out=target)
            target += base[channel]
            np.multiply(scratch, self.glow[channel], out=value)
            target += value
