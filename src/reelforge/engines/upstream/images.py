"""Inputs leave as JPEG bytes that reelforge decoded and vetted itself, never as the user's
URL (which may point into the operator's network, or at a staged file only reelforge can
read)."""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

from reelforge.errors import EngineError

if TYPE_CHECKING:
    from PIL.Image import Image

MAX_IMAGE_SIDE_PX = 2048
"""Longest side of an image sent upstream; outputs are at most 1920 px, more is waste."""
MAX_IMAGE_BYTES = 8 * 2**20
"""Largest encoded image sent upstream (the AI/ML API and Google both accept more)."""
JPEG_QUALITIES = (92, 85, 75, 60)
"""Tried in order until the image fits ``MAX_IMAGE_BYTES``."""


def encode_image(
    image: Image, *, max_side: int = MAX_IMAGE_SIDE_PX, max_bytes: int = MAX_IMAGE_BYTES
) -> tuple[bytes, str]:
    """``(bytes, mime type)`` of ``image`` as a JPEG within ``max_side`` and ``max_bytes``.

    Inputs arrive as decoded RGB (EXIF orientation and transparency already handled), so
    JPEG loses nothing that matters and is far smaller than PNG for photos.
    """
    from PIL import Image as PILImage

    picture = image if image.mode == "RGB" else image.convert("RGB")
    if max(picture.size) > max_side:
        picture = picture.copy()
        picture.thumbnail((max_side, max_side), PILImage.Resampling.LANCZOS)
    data = b""
    for quality in JPEG_QUALITIES:
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=quality, optimize=True)
        data = buffer.getvalue()
        if len(data) <= max_bytes:
            return data, "image/jpeg"
    raise EngineError(
        f"the input image could not be made smaller than {max_bytes // 2**20} MiB for upstream"
    )


def image_data_uri(image: Image) -> str:
    """``data:image/jpeg;base64,...`` for a JSON field such as ``image_url``."""
    data, mime = encode_image(image)
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")
