"""Sub-pixel windows with swscale: as exact as Pillow's resampling, smooth when moving."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from reelforge.media.resample import GOOD_ENOUGH, PlaneResampler, place

pytestmark = pytest.mark.unit

SOURCE = (400, 240)
OUT = (320, 180)


def textured() -> Image.Image:
    """Detail at every scale: a rounding to whole pixels shows in the pixels."""
    rng = np.random.default_rng(3)
    coarse = rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize(SOURCE, Image.Resampling.BICUBIC)


def planes(image: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(image).transpose(2, 0, 1))


def exact(image: Image.Image, box: tuple[float, float, float, float]) -> np.ndarray:
    """Pillow's exact resampling of ``box``: the reference."""
    return planes(image.resize(OUT, Image.Resampling.BILINEAR, box=box))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


BOXES = [
    (0.0, 0.0, 400.0, 240.0),  # the whole source
    (13.37, 7.61, 13.37 + 351.2, 7.61 + 197.55),
    (0.31, 0.77, 0.31 + 380.4, 0.77 + 213.98),  # touching the top-left border
    (48.6, 42.45, 400.0, 240.0),  # touching the bottom-right border
    (100.5, 60.25, 100.5 + 260.5, 60.25 + 146.5),  # the most magnified
]


@pytest.mark.parametrize("box", BOXES)
def test_windows_match_pillows_exact_resampling(box: tuple[float, float, float, float]) -> None:
    image = textured()
    resampler = PlaneResampler(planes(image), max_ratio=1.6)
    got = resampler.window(box, OUT)
    assert got.shape == (3, OUT[1], OUT[0]) and got.dtype == np.uint8
    # Close to the reference, and much closer than rounding the window to whole pixels.
    assert psnr(got, exact(image, box)) > 40
    rounded = tuple(float(round(v)) for v in box)
    if rounded != box:
        assert psnr(exact(image, rounded), exact(image, box)) < psnr(got, exact(image, box)) - 6


def test_placements_are_within_a_fraction_of_a_pixel() -> None:
    """Ratios a camera passes through (1.05 to 1.7): 0.03 px on average, at most a quarter
    pixel (near 3/2), half what rounding to whole pixels can be off."""
    rng = np.random.default_rng(5)
    errors = []
    for _ in range(400):
        size = int(rng.integers(16, 1920))
        ratio = float(rng.uniform(1.05, 1.7))
        extent = size * ratio
        source = extent * float(rng.uniform(1.0, 1.3))
        begin = float(rng.uniform(0, source - extent))
        pad = 60
        span = place(begin, extent, size, pad, round(source) + 2 * pad)
        errors.append(span.error)
        # What swscale samples is where the window asks for, at both ends of the output.
        for d in (0, size - 1):
            sampled = span.start + (d + span.offset + 0.5) * span.length / span.scaled - 0.5
            asked = begin + pad + (d + 0.5) * extent / size - 0.5
            assert abs(sampled - asked) <= span.error + 1e-9
        assert 0 <= span.offset <= span.scaled - size
        assert span.start >= 0 and span.start + span.length <= round(source) + 2 * pad
    assert max(errors) < 0.25
    assert float(np.percentile(errors, 90)) < 0.06
    assert float(np.mean(errors)) < 0.03


def test_the_exact_window_takes_no_detour() -> None:
    span = place(0.0, 400.0, 320, 10, 420)
    assert (span.start, span.length, span.scaled, span.offset, span.error) == (10, 400, 320, 0, 0)
    assert place(12.5, 390.0, 300, 50, 500).error <= GOOD_ENOUGH


def test_a_slow_pan_moves_the_picture_evenly() -> None:
    """A window moving 0.1 px a frame moves a spot about 0.1 px a frame: rounding to
    whole pixels would hold it still for 9 frames and jump a pixel on the 10th."""
    yy, xx = np.mgrid[0:240, 0:400]
    spot = np.exp(-((xx - 200.0) ** 2 + (yy - 120.0) ** 2) / (2 * 6.0**2)) * 255
    source = np.repeat(spot.astype(np.uint8)[None], 3, axis=0)
    resampler = PlaneResampler(np.ascontiguousarray(source), max_ratio=1.6)
    ratio = 1.1837
    centres = []
    for step in range(21):
        left = 20.0 + 0.1 * step
        frame = resampler.window((left, 30.0, left + OUT[0] * ratio, 30.0 + OUT[1] * ratio), OUT)
        weights = frame[0].astype(np.float64)
        centres.append(float((weights * np.arange(OUT[0])).sum() / weights.sum()))
    moves = -np.diff(centres) * ratio  # in source pixels
    assert np.all(np.abs(moves - 0.1) < 0.1), moves
    assert float(np.abs(moves - 0.1).mean()) < 0.04, moves


def test_same_window_same_bytes_and_bad_planes_are_refused() -> None:
    image = textured()
    box = BOXES[1]
    first = PlaneResampler(planes(image), 1.6).window(box, OUT)
    again = PlaneResampler(planes(image), 1.6).window(box, OUT)
    assert np.array_equal(first, again)
    with pytest.raises(ValueError, match="uint8"):
        PlaneResampler(np.zeros((3, 10, 10), np.float32), 1.6)
    with pytest.raises(ValueError, match="does not fit"):
        place(-500.0, 100.0, 50, 4, 120)
