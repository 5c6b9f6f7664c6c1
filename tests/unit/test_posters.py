"""Posters made from a real encoded MP4: the thumbnail is the first frame, the sprite
sheet holds evenly spaced frames in order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
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


@pytest.mark.parametrize("planar", [False, True])
def test_posters_kept_while_encoding_match_the_decoded_ones(tmp_path: Path, planar: bool) -> None:
    """The worker keeps the posters' frames as they pass into the encoder instead of
    decoding the video again: the pictures must be the same (up to compression), for
    interleaved frames and for renderers' planar ones."""
    from reelforge.media.clip import planar_frame
    from reelforge.media.posters import Posters

    frames = [np.full((HEIGHT, WIDTH, 3), shade(i), dtype=np.uint8) for i in range(FRAMES)]
    frames[0][: HEIGHT // 2] = 250  # a top half that the thumbnail must show
    frames[0][:, : WIDTH // 4, 0] = 0  # and a cyan strip (channel order matters)
    if planar:
        frames = [planar_frame(np.ascontiguousarray(f.transpose(2, 0, 1))) for f in frames]
    posters = Posters(FRAMES)
    video = tmp_path / "v.mp4"
    encode_mp4(
        Clip(width=WIDTH, height=HEIGHT, frame_count=FRAMES, fps=24, frames=posters.tap(frames)),
        video,
        preset="ultrafast",
    )
    assert posters.complete
    kept = posters.write(tmp_path / "kt.jpg", tmp_path / "ks.jpg")
    decoded = make_posters(video, FRAMES, tmp_path / "dt.jpg", tmp_path / "ds.jpg")
    assert kept == decoded
    for name in ("t", "s"):
        with Image.open(tmp_path / f"k{name}.jpg") as a, Image.open(tmp_path / f"d{name}.jpg") as b:
            assert a.size == b.size
            difference = np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))
            assert difference.mean() < 3
    with Image.open(tmp_path / "kt.jpg") as image:
        rgb = np.asarray(image).astype(float)
    top = rgb[: HEIGHT // 2 - 4, WIDTH // 4 + 4 :]
    assert top.mean() > 240 and rgb[HEIGHT // 2 + 4 :, WIDTH // 4 + 4 :].mean() < 40
    strip = rgb[: HEIGHT // 2 - 4, : WIDTH // 4 - 4]
    assert strip[..., 0].mean() < 30 and strip[..., 1].mean() > 220
