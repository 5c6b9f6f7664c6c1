"""Fitting input images to the output frame.

Policy: *cover, centred*. The image is scaled so it fills the whole frame and the overflow
is cropped equally from both sides. Nothing is letterboxed, so the first frame of an
image-to-video clip is the picture itself, as large as the frame allows. With
``aspect_ratio: "auto"`` the frame's orientation follows the image, so at most a thin
sliver is cropped.
"""

from __future__ import annotations

from PIL import Image, ImageOps

LANDSCAPE = "16:9"
PORTRAIT = "9:16"


def aspect_for(image: Image.Image) -> str:
    """The published aspect ratio closest to the image's own (square counts as landscape)."""
    width, height = image.size
    return PORTRAIT if height > width else LANDSCAPE


def fit_cover(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale ``image`` to cover ``size`` and crop the overflow, centred."""
    if image.size == size:
        return image.copy()
    return ImageOps.fit(image, size, method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))
