"""Posters made from a real encoded MP4: the thumbnail is the first frame, the sprite
sheet holds evenly spaced frames in order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from reelforge.media.clip import Clip
from reelforge.media.encode import encode_mp4
from reelforge.media.posters import make_posters

WIDTH, HEIGHT, FRAMES = 320, 180, 48


def shade(index: int) -> int:
    """Frame ``index`` is one flat grey, brighter with time (survives compression)."""
    return 20 + index * 4


def test_thumbnail_and_sprite_sheet_show_the_video(tmp_path: Path) -> None:
    frames = (np.full((HEIGHT, WIDTH, 3), shade(i), dtype=np.uint8) for i in range(FRAMES))
    video = tmp_path / "v.mp4"
    encode_mp4(
        Clip(width=WIDTH, height=HEIGHT, frame_count=FRAMES, fps=24, frames=frames),
        video,
        preset="ultrafast",
    )
    thumbnail, sprites = tmp_path / "t.jpg", tmp_path / "s.jpg"
    sheet = make_posters(video, FRAMES, thumbnail, sprites)

    with Image.open(thumbnail) as image:
        assert image.format == "JPEG" and image.size == (WIDTH, HEIGHT)
        assert abs(np.asarray(image.convert("L")).mean() - shade(0)) < 4
    assert (sheet.columns, sheet.rows, sheet.frames) == (5, 2, 10)
    assert (sheet.tile_width, sheet.tile_height) == (160, 90)
    with Image.open(sprites) as image:
        assert image.size == (5 * 160, 2 * 90)
        grey = np.asarray(image.convert("L")).astype(float)
    means = [
        grey[row * 90 + 10 : row * 90 + 80, col * 160 + 10 : col * 160 + 150].mean()
        for row in range(2)
        for col in range(5)
    ]
    expected = [shade(round(i * (FRAMES - 1) / 9)) for i in range(10)]
    assert all(abs(m - e) < 4 for m, e in zip(means, expected, strict=True)), means
    assert means == sorted(means)  # in time order


def test_a_short_video_gets_as_many_tiles_as_frames(tmp_path: Path) -> None:
    frames = (np.full((HEIGHT, WIDTH, 3), 128, dtype=np.uint8) for _ in range(3))
    video = tmp_path / "v.mp4"
    encode_mp4(
        Clip(width=WIDTH, height=HEIGHT, frame_count=3, fps=24, frames=frames),
        video,
        preset="ultrafast",
    )
    sheet = make_posters(video, 3, tmp_path / "t.jpg", tmp_path / "s.jpg")
    assert (sheet.columns, sheet.rows, sheet.frames) == (3, 1, 3)
