"""The fitting policy: cover when the shapes are close, contain over a blurred fill if not."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from reelforge.media.fit import (
    COVER_MIN_KEPT,
    aspect_for,
    cover_keeps,
    fit_contain_on_fill,
    fit_cover,
    fit_frame,
)

pytestmark = pytest.mark.unit


def solid(size: tuple[int, int], colour: tuple[int, int, int] = (200, 40, 40)) -> Image.Image:
    return Image.new("RGB", size, colour)


@pytest.mark.parametrize(
    ("size", "aspect"), [((800, 600), "16:9"), ((600, 800), "9:16"), ((500, 500), "16:9")]
)
def test_aspect_for(size, aspect) -> None:
    assert aspect_for(solid(size)) == aspect


@pytest.mark.parametrize("image_size", [(1600, 900), (1200, 900), (1500, 1000), (4000, 2000)])
def test_close_shapes_are_covered_edge_to_edge(image_size) -> None:
    assert cover_keeps(image_size, (1280, 720)) >= COVER_MIN_KEPT
    fitted = fit_frame(solid(image_size), (1280, 720))
    assert fitted.size == (1280, 720)
    assert np.all(np.asarray(fitted) == (200, 40, 40))


@pytest.mark.parametrize("image_size", [(600, 900), (800, 800), (300, 1200)])
def test_mismatched_shapes_keep_the_whole_image_over_a_fill(image_size) -> None:
    image = solid(image_size)
    # mark the top and bottom rows so we can see they survive
    pixels = np.asarray(image).copy()
    pixels[:4] = (0, 255, 0)
    pixels[-4:] = (0, 0, 255)
    image = Image.fromarray(pixels)
    fitted = np.asarray(fit_frame(image, (1280, 720)))
    assert fitted.shape == (720, 1280, 3)
    column = fitted[:, 640]
    assert (column == (0, 255, 0)).all(axis=1).any()
    assert (column == (0, 0, 255)).all(axis=1).any()
    # the sides are a darkened fill, not black bars and not the full-brightness image
    edge = fitted[:, :20].reshape(-1, 3).mean(axis=0)
    assert 0 < edge[0] < 200 * 0.8


def test_portrait_in_portrait_frame_is_covered() -> None:
    fitted = fit_frame(solid((600, 1000)), (720, 1280))
    assert np.all(np.asarray(fitted) == (200, 40, 40))


def test_contain_on_fill_and_cover_sizes() -> None:
    assert fit_contain_on_fill(solid((300, 1200)), (1920, 1080)).size == (1920, 1080)
    assert fit_cover(solid((300, 1200)), (1080, 1920)).size == (1080, 1920)
