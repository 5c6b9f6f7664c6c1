"""Fitting input images to the output frame.

Policy (:func:`fit_frame`):

* When the image's shape is close to the frame's (cropping would keep at least
  ``COVER_MIN_KEPT`` of the image along the cropped side, e.g. a 4:3 or 3:2 photo in a
  16:9 frame), the image is scaled to *cover* the frame, centred, and the thin overflow
  is cropped: the picture fills the frame edge to edge.
* Otherwise (a portrait photo in a landscape frame, a square in either), cropping would
  cut away most of the subject, so the whole image is *contained*, centred, over a
  blurred and darkened copy of itself that fills the rest of the frame.

With ``aspect_ratio: "auto"`` the frame's orientation follows the image (:func:`aspect_for`),
so most images are simply covered.
"""

from __future__ import annotations

from PIL import Image, ImageFilter, ImageOps

LANDSCAPE = "16:9"
PORTRAIT = "9:16"

COVER_MIN_KEPT = 0.7
"""Smallest share of the image's cropped side that cover-fitting may keep."""
FILL_BLUR_FRACTION = 0.03
"""Blur radius of the fill, as a fraction of the frame's longer side."""
FILL_BRIGHTNESS = 0.55


def aspect_for(image: Image.Image) -> str:
    """The published aspect ratio closest to the image's own (square counts as landscape)."""
    return aspect_of(*image.size)


def aspect_of(width: int, height: int) -> str:
    """The published aspect ratio closest to ``width`` x ``height``."""
    return PORTRAIT if height > width else LANDSCAPE


def fit_cover(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale ``image`` to cover ``size`` and crop the overflow, centred."""
    if image.size == size:
        return image.copy()
    return ImageOps.fit(image, size, method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))


def fit_contain_on_fill(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The whole image, centred, over a blurred, darkened cover-fitted copy of itself."""
    fill = fit_cover(image, size).filter(
        ImageFilter.GaussianBlur(radius=max(2.0, FILL_BLUR_FRACTION * max(size)))
    )
    fill = fill.point(lambda value: round(value * FILL_BRIGHTNESS))
    inner = ImageOps.contain(image, size, method=Image.Resampling.LANCZOS)
    fill.paste(inner, ((size[0] - inner.width) // 2, (size[1] - inner.height) // 2))
    return fill


def cover_keeps(image_size: tuple[int, int], size: tuple[int, int]) -> float:
    """Share of the image's cropped side that cover-fitting keeps (1.0 = nothing cropped)."""
    image_ratio = image_size[0] / image_size[1]
    frame_ratio = size[0] / size[1]
    return min(image_ratio, frame_ratio) / max(image_ratio, frame_ratio)


def fit_frame(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Fit ``image`` to a frame of ``size`` by the policy in this module's docstring."""
    if cover_keeps(image.size, size) >= COVER_MIN_KEPT:
        return fit_cover(image, size)
    return fit_contain_on_fill(image, size)
