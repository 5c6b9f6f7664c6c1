"""Posters of a finished video: a thumbnail and a sprite sheet of frames.

Stored beside the video: galleries and players show the thumbnail before a byte of video
is fetched, scrubbing previews use the sprite sheet. Both are JPEG, small and bounded.

``Posters`` collects the frames it needs, scaled down at once, from any sequence of
frames: the worker feeds it the frames on their way into the encoder (``tap``), which
costs a few milliseconds; a clip that arrives as a file (upstream engines, diffusers
output) is decoded once instead (``make_posters``). Decoding every encoded video again
cost a fifth of a preview job and, being multi-threaded, slowed the other worker
processes on the machine (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image

from reelforge.media.clip import planes_of

THUMBNAIL_WIDTH = 640
SPRITE_TILE_WIDTH = 160
SPRITE_COLUMNS = 5
SPRITE_FRAMES = 10
JPEG_QUALITY = 85
REDUCING_GAP = 3.0
"""Pillow shrinks by whole factors first, then resamples the last 3x: as sharp, far
cheaper than filtering a full frame down."""
TILE_REDUCING_GAP = 1.5
"""Sprite tiles are 160 px scrubbing previews: a closer gap is sharp enough there."""


@dataclass(frozen=True)
class SpriteSheet:
    columns: int
    rows: int
    tile_width: int
    tile_height: int
    frames: int


class Posters:
    """The thumbnail (the first frame, at most 640 px wide) and up to ten evenly spaced
    frames, five to a row, 160 px wide each, of a clip of ``frame_count`` frames."""

    def __init__(self, frame_count: int) -> None:
        count = max(1, min(SPRITE_FRAMES, frame_count))
        self.indexes = sorted(
            {round(i * (frame_count - 1) / max(1, count - 1)) for i in range(count)}
        )
        self.wanted = frozenset(self.indexes)
        self._thumbnail: Image.Image | None = None
        self._tiles: dict[int, Image.Image] = {}

    @property
    def complete(self) -> bool:
        return len(self._tiles) == len(self.wanted)

    def take(self, index: int, frame: np.ndarray | Image.Image) -> None:
        """Keep frame ``index`` if a poster shows it ((height, width, 3) RGB)."""
        if index not in self.wanted:
            return
        image = frame if isinstance(frame, Image.Image) else _image(frame)
        if index == self.indexes[0]:
            self._thumbnail = _scaled(image, min(THUMBNAIL_WIDTH, image.width), REDUCING_GAP)
        self._tiles[index] = _scaled(image, SPRITE_TILE_WIDTH, TILE_REDUCING_GAP)

    def tap(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """``frames`` unchanged, each shown to ``take`` on its way through."""
        for index, frame in enumerate(frames):
            self.take(index, frame)
            yield frame

    def write(self, thumbnail: Path, spritesheet: Path) -> SpriteSheet:
        if self._thumbnail is None or not self._tiles:
            raise ValueError("the video has no frames")
        self._thumbnail.save(thumbnail, "JPEG", quality=JPEG_QUALITY)
        tiles = [self._tiles[index] for index in sorted(self._tiles)]
        columns = min(SPRITE_COLUMNS, len(tiles))
        rows = -(-len(tiles) // columns)
        tile_w, tile_h = tiles[0].size
        sheet = Image.new("RGB", (columns * tile_w, rows * tile_h))
        for index, tile in enumerate(tiles):
            sheet.paste(tile, ((index % columns) * tile_w, (index // columns) * tile_h))
        sheet.save(spritesheet, "JPEG", quality=JPEG_QUALITY)
        return SpriteSheet(columns, rows, tile_w, tile_h, len(tiles))


def _image(frame: np.ndarray) -> Image.Image:
    planes = planes_of(frame)
    if planes is not None:  # the renderer's planes: merged without interleaving in numpy
        return Image.merge("RGB", [Image.fromarray(plane) for plane in planes])
    return Image.fromarray(np.asarray(frame))


def _scaled(image: Image.Image, width: int, reducing_gap: float) -> Image.Image:
    height = max(1, round(image.height * width / image.width))
    return image.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=reducing_gap)


def make_posters(video: Path, frame_count: int, thumbnail: Path, spritesheet: Path) -> SpriteSheet:
    """Posters of an MP4 file, decoded once (as far as the last frame they show)."""
    posters = Posters(frame_count)
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        for index, frame in enumerate(container.decode(stream)):
            if index in posters.wanted:
                posters.take(index, frame.to_image())
            if posters.complete:
                break
    return posters.write(thumbnail, spritesheet)
