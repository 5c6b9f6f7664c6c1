"""Text-to-video: an animated landscape built from the prompt's scene parameters.

Rendered straight at the output size into a planar float32 buffer (3, height, width),
values 0..255: numpy runs several times faster when the innermost axis is a row of
pixels rather than an RGB triple. Everything static (sky, glow, water colours) is
computed once; each frame copies it and adds what moves: clouds and fog scrolling,
ridge layers sliding at different speeds (parallax), waves, the sun or moon, the
subject, particles and bursts. The optional camera zoom is the only full-frame resample.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from PIL import Image

from reelforge.engines.preview.layers import (
    Layer,
    Water,
    build_ridges,
    scrolling_layer,
    smooth_noise,
)
from reelforge.engines.preview.particles import Bursts, Particles
from reelforge.engines.preview.scene import Color, Scene, rng_for
from reelforge.engines.preview.sprites import Subject, disc
from reelforge.media.clip import planar_frame

PARTICLE_KINDS = ("rain", "snowfall", "embers", "fireflies", "bubbles", "dust")
ZOOM_RANGE = 0.18
"""How far the camera zooms when the prompt asks for it (1 → 1.18)."""
_LUMA = (0.2126, 0.7152, 0.0722)


def _rgb(color: Color | np.ndarray) -> np.ndarray:
    """A colour as a (3, 1, 1) array, ready to broadcast over a planar frame."""
    return np.asarray(color, dtype=np.float32).reshape(3, 1, 1)


def _mix(a: np.ndarray, b: np.ndarray, t: float | np.ndarray) -> np.ndarray:
    return (a + (b - a) * t).astype(np.float32)


class TextToVideo:
    """Renders ``frame_count`` frames of ``scene``; iterate to get them lazily."""

    def __init__(
        self,
        scene: Scene,
        size: tuple[int, int],
        frame_count: int,
        fps: int,
        seed: int,
        prompt: str,
    ) -> None:
        self.scene = scene
        self.width, self.height = width, height = size
        self.frame_count, self.fps = frame_count, fps
        self.short_side = min(size)
        self.unit = self.short_side / 720.0
        elements, palette = scene.elements, scene.palette
        layout = rng_for(seed, prompt, "layout")
        camera = rng_for(seed, prompt, "camera")
        self.direction = {"pan_left": 1, "pan_right": -1}.get(
            scene.camera, int(camera.choice([-1, 1]))
        )
        self.water = "water" in elements
        if not elements & {"mountains", "forest", "city", "water"}:
            self.horizon = height
        elif self.water:
            self.horizon = int(height * layout.uniform(0.55, 0.63))
        else:
            self.horizon = int(height * layout.uniform(0.6, 0.68))
        self.sun = "sun" in elements
        self.moon = "moon" in elements and not self.sun
        self.light = (
            float(layout.uniform(0.2, 0.8) * width),
            float(self.horizon * layout.uniform(0.3, 0.6)),
        )
        self.background = self._background(layout)
        # Vignette only the static background: a per-frame pass would cost as much as a layer.
        yy = (np.arange(height, dtype=np.float32) / height - 0.5) * 2
        xx = (np.arange(width, dtype=np.float32) / width - 0.5) * 2
        vignette = (1.0 - 0.16 * np.abs(yy) ** 2.5)[:, None] * (1.0 - 0.2 * np.abs(xx) ** 2.5)
        self.background *= vignette.astype(np.float32)[None]
        self.light_sprite = self._light_sprite()
        near_speed = max(1.0, round(self.unit * scene.speed))
        self.ridges: list[Layer] = build_ridges(
            elements,
            palette,
            size,
            self.horizon,
            self.water,
            frame_count,
            near_speed,
            rng_for(seed, prompt, "ridges"),
            self.direction,
        )
        self.bands_back, self.bands_front = self._bands(seed, prompt)
        self.copy_rows = self._rows_to_copy()
        self.stars = self._stars(rng_for(seed, prompt, "stars")) if "stars" in elements else None
        self.waves = None
        if self.water:
            glint_x = self.light[0] if (self.sun or self.moon) else None
            self.waves = Water(
                size, self.horizon, glint_x, palette, scene.speed, rng_for(seed, prompt, "waves")
            )
        self.particles = [
            Particles(
                kind, size, self._particle_color(kind), rng_for(seed, prompt, kind), scene.speed
            )
            for kind in PARTICLE_KINDS
            if kind in elements
        ]
        duration = frame_count / fps
        self.bursts = None
        if "bursts" in elements:
            self.bursts = Bursts(
                size,
                duration,
                self.horizon,
                (palette.glow, palette.accent),
                rng_for(seed, prompt, "bursts"),
                colorful="firework" in prompt.lower(),
            )
        self.lightning = None
        if "lightning" in elements:
            flashes = rng_for(seed, prompt, "lightning").uniform(0.3, max(0.4, duration - 0.3), 2)
            self.lightning = np.sort(flashes)
        self.subject = None
        if scene.subject:
            self.subject = Subject(
                scene.subject,
                scene.subject_word,
                scene.motion,
                scene.speed,
                size,
                self.horizon,
                self.water,
                rng_for(seed, prompt, "subject"),
            )
        self.work = np.zeros((3, height, width), dtype=np.float32)

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(self.frame_count):
            yield self.frame(i)

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i`` as an (height, width, 3) uint8 array; frames are independent."""
        seconds = i / self.fps
        progress = i / max(1, self.frame_count - 1)
        frame = self.work
        covered = self.copy_rows
        np.copyto(frame[:, :covered], self.background[:, :covered])
        if self.waves is not None:
            self.waves.draw(frame, self.background, seconds)
        if self.stars is not None:
            self._draw_stars(frame, seconds)
        if self.sun or self.moon:
            self._draw_light(frame, progress)
        for band in self.bands_back:
            band.draw(frame, i)
        fog_drawn = False
        for layer in self.ridges:
            layer.draw(frame, i)
            if layer.fog_after:
                for band in self.bands_front:
                    band.draw(frame, i)
                fog_drawn = True
        if not fog_drawn:
            for band in self.bands_front:
                band.draw(frame, i)
        if self.subject is not None:
            palette = self.scene.palette
            self.subject.draw(
                frame, seconds, progress, _rgb(palette.subject).ravel(), _rgb(palette.glow).ravel()
            )
        for system in self.particles:
            system.draw(frame, seconds, self.fps)
        if self.bursts is not None:
            self.bursts.draw(frame, seconds)
        if self.lightning is not None:
            age = seconds - self.lightning
            flash = float(np.sum(np.exp(-np.abs(age) / 0.07) * (age >= 0)))
            if flash > 0.02:
                frame *= np.float32(1.0 + 0.9 * flash)
        out = self._finish(frame)
        if self.scene.camera in ("zoom_in", "zoom_out"):
            out = self._zoom(out, progress)
        return out

    def _rows_to_copy(self) -> int:
        """Rows of the background a frame needs: water and the nearest layer's solid
        ground are written in full each frame, so copying them first would be wasted."""
        rows = self.horizon if self.water else self.height
        if self.ridges and self.ridges[-1].solid is not None:
            nearest = self.ridges[-1]
            solid_top = nearest.top + nearest.inv_alpha.shape[0]
            if solid_top + nearest.solid.shape[1] >= self.height:
                rows = min(rows, solid_top)
        return rows

    def _finish(self, frame: np.ndarray) -> np.ndarray:
        """Optional greyscale, then clip to uint8: an (height, width, 3) view of the planes."""
        if self.scene.greyscale:
            luma = frame[0] * _LUMA[0] + frame[1] * _LUMA[1] + frame[2] * _LUMA[2]
            frame[:] = luma[None]
        planes = np.empty((3, self.height, self.width), dtype=np.uint8)
        np.clip(frame, 0.0, 255.0, out=planes, casting="unsafe")
        return planar_frame(planes)  # no interleaving: the encoder takes the planes

    def _zoom(self, image: np.ndarray, progress: float) -> np.ndarray:
        ease = progress * progress * (3 - 2 * progress) * 0.7 + progress * 0.3
        zoom = 1 + ZOOM_RANGE * (ease if self.scene.camera == "zoom_in" else 1 - ease)
        w, h = self.width / zoom, self.height / zoom
        left, top = (self.width - w) / 2, (self.height - h) / 2
        resized = Image.fromarray(image).resize(
            (self.width, self.height), Image.Resampling.BILINEAR, box=(left, top, left + w, top + h)
        )
        return np.array(resized)

    def _background(self, rng: np.random.Generator) -> np.ndarray:
        palette, height, width = self.scene.palette, self.height, self.width
        top, horizon = _rgb(palette.sky_top), _rgb(palette.horizon)
        if "rays" in self.scene.elements:
            top, horizon = horizon * 0.8, top
        rows = np.arange(height, dtype=np.float32)[:, None]
        t = np.clip(rows / max(1, self.horizon), 0, 1) ** 1.5
        sky = np.broadcast_to(_mix(top, horizon, t[None]), (3, height, width)).copy()
        glow = _rgb(palette.glow)
        band = np.exp(-(((rows - self.horizon) / (0.1 * height)) ** 2))[None]
        sky += band * (glow - sky) * 0.25
        if self.sun or self.moon:
            lx, ly = self.light
            cols = np.arange(width, dtype=np.float32)[None, :]
            dist2 = ((cols - lx) ** 2 + (rows - ly) ** 2) / (0.4 * height) ** 2
            sky += (np.exp(-dist2) * (0.45 if self.sun else 0.2))[None] * (glow - sky)
        if self.water:
            rows_below = height - self.horizon
            depth = (np.arange(rows_below, dtype=np.float32)[:, None] / max(1, rows_below)) ** 0.6
            near = _mix(_rgb(palette.horizon), _rgb(palette.water_light), 0.5)
            sky[:, self.horizon :] = _mix(near, _rgb(palette.water), depth[None])
        return sky.astype(np.float32)

    def _bands(self, seed: int, prompt: str) -> tuple[list[Layer], list[Layer]]:
        palette, elements = self.scene.palette, self.scene.elements
        cloud_speed = max(1.0, round(self.unit))
        fog_speed = max(1.0, round(2 * self.unit))
        pad = int(fog_speed * self.frame_count) + 2
        back: list[Layer] = []
        front: list[Layer] = []
        sky_rows = max(1, int(self.horizon * 0.9))
        if "clouds" in elements:
            rng = rng_for(seed, prompt, "clouds")
            heavy = "storm" in self.scene.palette_names
            noise = smooth_noise(rng, (sky_rows, self.width + pad), 0.18 * self.short_side, 3)
            arc = np.sin(np.linspace(0.0, math.pi, sky_rows, dtype=np.float32))
            profile = np.clip(arc, 0, 1) ** 0.7
            alpha = np.clip((noise - (0.38 if heavy else 0.52)) * 3.0, 0, 0.9) * profile[:, None]
            tone = 0.35 if self.scene.dark else 1.0
            color = _mix(_rgb(palette.horizon), _rgb(palette.glow), 0.6) * tone
            delta = color - self.background[:, :sky_rows, :1]
            back.append(scrolling_layer(0, alpha, delta, cloud_speed, self.direction, False))
        if "nebula" in elements:
            rng = rng_for(seed, prompt, "nebula")
            shape = (self.horizon, self.width + pad)
            cloud = smooth_noise(rng, shape, 0.3 * self.short_side, octaves=3)
            detail = smooth_noise(rng, shape, 0.12 * self.short_side, octaves=2)
            alpha = np.clip((cloud - 0.4) * 2.2, 0, 1) * detail
            color = _mix(_rgb(palette.accent), _rgb(palette.glow), 0.4) * 0.6
            back.append(scrolling_layer(0, alpha, color, cloud_speed, self.direction, False))
        if "aurora" in elements or "rays" in elements:
            back.append(self._curtains(rng_for(seed, prompt, "aurora"), sky_rows, pad))
        if "fog" in elements:
            rng = rng_for(seed, prompt, "fog")
            top = max(0, int(self.horizon - 0.25 * self.height))
            rows = max(1, min(self.height, int(self.horizon + 0.3 * self.height)) - top)
            noise = smooth_noise(rng, (rows, self.width + pad), 0.12 * self.short_side, 2)
            offsets = (np.arange(rows) + top - self.horizon) / (0.14 * self.height)
            profile = np.exp(-(offsets**2)).astype(np.float32)
            alpha = np.clip(noise * 0.55, 0, 0.5) * profile[:, None]
            color = _mix(_rgb(palette.horizon), _rgb(palette.glow), 0.3)
            front.append(scrolling_layer(top, alpha, color, fog_speed, self.direction, True))
        return back, front

    def _curtains(self, rng: np.random.Generator, rows: int, pad: int) -> Layer:
        """Aurora (glowing from the horizon up) or underwater light rays (from the top down)."""
        x = np.arange(self.width + pad, dtype=np.float32)
        k1 = rng.uniform(2, 5) * 2 * math.pi / self.width
        k2 = rng.uniform(6, 11) * 2 * math.pi / self.width
        wave = 0.5 + 0.5 * np.sin(x * k1 + 1.8 * np.sin(x * k2 + rng.uniform(0, 6)))
        y = np.linspace(0.0, 1.0, rows, dtype=np.float32)[:, None]
        if "rays" in self.scene.elements:
            profile = (1 - y) ** 1.5
            color = _rgb(self.scene.palette.water_light) * 0.55
        else:
            profile = np.clip((y - 0.1) * 1.5, 0, 1) * np.exp(-((1 - y) / 0.25))
            color = _rgb((70.0, 255.0, 170.0)) * 0.6
        alpha = (wave[None, :] ** 3 * profile).astype(np.float32)
        return scrolling_layer(0, alpha, color, max(1.0, round(self.unit)), self.direction, False)

    def _stars(self, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        count = int(self.width * self.height / 2600)
        ys = rng.uniform(0, self.horizon * 0.95, count)
        xs = rng.uniform(0, self.width, count)
        index = ys.astype(np.intp) * self.width + xs.astype(np.intp)
        level = (rng.uniform(0.2, 1.0, count) ** 3 * 230).astype(np.float32)
        phase = rng.uniform(0, 2 * math.pi, count).astype(np.float32)
        rate = rng.uniform(1.5, 5.0, count).astype(np.float32)
        return index, level, phase, rate

    def _draw_stars(self, frame: np.ndarray, seconds: float) -> None:
        assert self.stars is not None
        index, level, phase, rate = self.stars
        twinkle = level * (0.65 + 0.35 * np.sin(phase + rate * np.float32(seconds)))
        flat = frame.reshape(3, -1)
        flat[:, index] += twinkle[None]

    def _light_sprite(self) -> tuple[np.ndarray, np.ndarray, float]:
        """The sun's or moon's soft halo, premultiplied by its colour, and the disc colour."""
        radius = (0.07 if self.sun else 0.055) * min(self.width, self.height)
        reach = math.ceil(radius * 3)
        side = 2 * reach + 1
        _, halo = disc((side, side), reach, reach, radius, 0.6, reach)
        color = _rgb(self.scene.palette.glow)
        if self.moon:
            color = _mix(color, _rgb((235.0, 235.0, 245.0)), 0.5)
        return (halo * 0.6)[None] * color, color, radius

    def _draw_light(self, frame: np.ndarray, progress: float) -> None:
        """Halo at whole pixels (it is too soft to show steps), disc at subpixel precision;
        both stop at the horizon so water and ridges hide a setting sun."""
        halo, color, radius = self.light_sprite
        lx, ly = self.light
        if self.sun:
            sinking = "sunset" in self.scene.palette_names or self.scene.motion == "fall"
            cy = ly + (0.12 if sinking else -0.04) * self.height * progress
        else:
            cy = ly - 0.05 * self.height * progress
        reach = halo.shape[1] // 2
        hx, hy = round(lx) - reach, round(cy) - reach
        x0, x1 = max(0, hx), min(self.width, hx + halo.shape[2])
        y0, y1 = max(0, hy), min(self.horizon, hy + halo.shape[1])
        if x1 <= x0 or y1 <= y0:
            return
        frame[:, y0:y1, x0:x1] += halo[:, y0 - hy : y1 - hy, x0 - hx : x1 - hx]
        edge = math.ceil(radius) + 2
        x0, x1 = max(0, int(lx) - edge), min(self.width, int(lx) + edge + 1)
        y0, y1 = max(0, int(cy) - edge), min(self.horizon, int(cy) + edge + 1)
        if x1 <= x0 or y1 <= y0:
            return
        alpha, _ = disc((y1 - y0, x1 - x0), lx - x0, cy - y0, radius, 0.0, radius * 2)
        region = frame[:, y0:y1, x0:x1]
        region += alpha[None] * (color - region)

    def _particle_color(self, kind: str) -> Color:
        palette = self.scene.palette
        if kind == "rain":
            return (200.0, 210.0, 225.0)
        if kind in ("snowfall", "bubbles"):
            return (235.0, 240.0, 250.0)
        if kind == "embers":
            r, g, b = _mix(_rgb(palette.accent), _rgb((255.0, 120.0, 30.0)), 0.5).ravel()
            return (float(r), float(g), float(b))
        return palette.accent
