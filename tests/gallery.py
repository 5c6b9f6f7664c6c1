"""Awkward but valid images, each with the upright RGB picture it must decode to."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image

from support import picture

GREY = (128, 128, 128)


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def exif_rotated_jpeg() -> tuple[bytes, Image.Image]:
    """A phone photo: pixels stored sideways, EXIF orientation 6 says "rotate to view"."""
    upright = picture((600, 900), seed=21)
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what the sensor wrote
    exif = Image.Exif()
    exif[0x0112] = 6
    return _save(stored, "JPEG", quality=95, exif=exif), upright


def rgba_png() -> tuple[bytes, Image.Image]:
    base = picture((800, 600), seed=22)
    alpha = np.zeros((600, 800), dtype=np.uint8)
    alpha[:, 400:] = 255  # left half fully transparent
    rgba = base.copy()
    rgba.putalpha(Image.fromarray(alpha))
    expected = np.asarray(base).copy()
    expected[:, :400] = GREY
    return _save(rgba, "PNG"), Image.fromarray(expected)


def cmyk_jpeg() -> tuple[bytes, Image.Image]:
    cmyk = picture((800, 600), seed=23).convert("CMYK")
    return _save(cmyk, "JPEG", quality=95), cmyk.convert("RGB")


def palette_png_with_transparency() -> tuple[bytes, Image.Image]:
    rgb = picture((640, 480), seed=24).quantize(colors=64)
    rgb.info["transparency"] = 0
    expected = np.asarray(rgb.convert("RGBA")).astype(np.float32)
    alpha = expected[..., 3:] / 255
    flat = expected[..., :3] * alpha + np.array(GREY) * (1 - alpha)
    return _save(rgb, "PNG", transparency=0), Image.fromarray(flat.round().astype(np.uint8))


def sixteen_bit_png() -> tuple[bytes, Image.Image]:
    grey = np.asarray(picture((640, 480), seed=25).convert("L"), dtype=np.uint16) * 257
    image = Image.fromarray(grey.astype(np.uint16))
    assert image.mode.startswith("I;16")
    expected = Image.fromarray((grey // 257).astype(np.uint8)).convert("RGB")
    return _save(image, "PNG"), expected


def greyscale_jpeg() -> tuple[bytes, Image.Image]:
    grey = picture((800, 600), seed=26).convert("L")
    return _save(grey, "JPEG", quality=95), grey.convert("RGB")


def webp() -> tuple[bytes, Image.Image]:
    image = picture((900, 600), seed=27)
    return _save(image, "WEBP", quality=95), image


def animated_gif() -> tuple[bytes, Image.Image]:
    frames = [picture((500, 400), seed=s).quantize(colors=255) for s in (28, 29, 30)]
    data = _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    return data, frames[0].convert("RGB")


def bmp() -> tuple[bytes, Image.Image]:
    image = picture((700, 500), seed=31)
    return _save(image, "BMP"), image


def tiff() -> tuple[bytes, Image.Image]:
    image = picture((700, 500), seed=32)
    return _save(image, "TIFF"), image


def smallest_allowed() -> tuple[bytes, Image.Image]:
    image = picture((256, 256), seed=33)
    return _save(image, "PNG"), image


def portrait_photo() -> tuple[bytes, Image.Image]:
    image = picture((720, 1280), seed=34)
    return _save(image, "JPEG", quality=95), image


GALLERY: dict[str, Callable[[], tuple[bytes, Image.Image]]] = {
    "exif-rotated.jpg": exif_rotated_jpeg,
    "alpha.png": rgba_png,
    "cmyk.jpg": cmyk_jpeg,
    "palette-transparent.png": palette_png_with_transparency,
    "16bit.png": sixteen_bit_png,
    "grey.jpg": greyscale_jpeg,
    "photo.webp": webp,
    "animated.gif": animated_gif,
    "image.bmp": bmp,
    "image.tiff": tiff,
    "smallest.png": smallest_allowed,
    "portrait.jpg": portrait_photo,
}


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header claims a huge size (a decompression bomb's first step)."""
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )
