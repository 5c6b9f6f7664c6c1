"""Posters of a finished video: a thumbnail and a sprite sheet of frames.

Made once by the worker from the encoded MP4 (so they show exactly what the video shows)
and stored beside it: galleries and players show the thumbnail before a byte of video is
fetched, scrubbing previews use the sprite sheet. Both are JPEG, small and bounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
from PIL import Image

THUMBNAIL_WIDTH = 640
SPRITE_TILE_WIDTH = 160
SPRITE_COLUMNS = 5
SPRITE_FRAMES = 10
JPEG_QUALITY = 85


@dataclass(frozen=True)
class SpriteSheet:
    columns: int
    rows: int
    tile_width: int
    tile_height: int
    frames: int


def _frames_at(path: Path, indexes: list[int]) -> list[Image.Image]:
    """Decode the video once, keeping the frames at ``indexes`` (sorted)."""
    wanted = set(indexes)
    found: list[Image.Image] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for index, frame in enumerate(container.decode(stream)):
            if index in wanted:
                found.append(frame.to_image())
                if len(found) == len(wanted):
                    break
    return found


def _scaled(image: Image.Image, width: int) -> Image.Image:
    height = max(1, round(image.height * width / image.width))
    return image.resize((width, height), Image.Resampling.LANCZOS)


def make_posters(video: Path, frame_count: int, thumbnail: Path, spritesheet: Path) -> SpriteSheet:
    """Write the thumbnail (the first frame, at most 640 px wide) and a sprite sheet of
    up to ten evenly spaced frames, five to a row, 160 px wide each."""
    count = max(1, min(SPRITE_FRAMES, frame_count))
    indexes = sorted({round(i * (frame_count - 1) / max(1, count - 1)) for i in range(count)})
    frames = _frames_at(video, indexes)
    if not frames:
        raise ValueError("the video has no frames")
    first = frames[0]
    _scaled(first, min(THUMBNAIL_WIDTH, first.width)).save(thumbnail, "JPEG", quality=JPEG_QUALITY)
    tiles = [_scaled(frame, SPRITE_TILE_WIDTH) for frame in frames]
    columns = min(SPRITE_COLUMNS, len(tiles))
    rows = -(-len(tiles) // columns)
    tile_w, tile_h = tiles[0].size
    sheet = Image.new("RGB", (columns * tile_w, rows * tile_h))
    for index, tile in enumerate(tiles):
        sheet.paste(tile, ((index % columns) * tile_w, (index // columns) * tile_h))
    sheet.save(spritesheet, "JPEG", quality=JPEG_QUALITY)
    return SpriteSheet(columns, rows, tile_w, tile_h, len(tiles))
