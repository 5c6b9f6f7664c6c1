"""Image references from requests, and turning untrusted bytes into a safe RGB picture.

``image_url`` / ``tail_image_url`` may be an http(s) URL, a Base64 data URI or bare
Base64. At submit time ``check_image_ref`` does everything that needs neither a fetch nor
a decode: inline images get only cheap checks (``inspect_image``: format by magic bytes,
declared size, truncation, whether the bytes can plausibly hold that many pixels), so a
hostile image costs the API process almost nothing. In the worker ``load_image`` fetches
and decodes. Decoding sniffs the real format from magic bytes (never trusting a declared
MIME type or Content-Type), checks the pixel count from the header before any pixel is
decoded, and normalises orientation, colour mode and transparency.

Nothing here logs or echoes image bytes, Base64 payloads or whole data URIs.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
from PIL import Image, ImageCms, ImageOps

from reelforge.errors import InvalidImage, InvalidRequest
from reelforge.media.fetch import fetch_bytes
from reelforge.media.netguard import FetchPolicy, check_url, parse_target
from reelforge.media.refs import MediaRef, decode_base64, decode_data_uri_payload, too_big

logger = logging.getLogger(__name__)

GREY_BACKGROUND = (128, 128, 128)
"""Transparent areas are composited over neutral mid-grey, which biases no model."""
MIN_BARE_BASE64_CHARS = 32
PILLOW_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
SUPPORTED_TEXT = "JPEG, PNG, WebP, GIF, BMP or TIFF"
ACCEPTED_TEXT = (
    "an http(s) URL, a Base64 data URI (data:image/png;base64,...) or Base64-encoded image data"
)

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_MIME_RE = re.compile(r"^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+$")
_WIDE_INT_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


def _parse_data_uri(value: str, *, field: str, max_bytes: int) -> MediaRef:
    header, comma, payload = value.partition(",")
    if not comma or len(header) > 200:
        raise InvalidRequest(
            f"{field} is not a valid data URI; expected data:image/<type>;base64,<data>", field
        )
    params = [p.strip().lower() for p in header[len("data:") :].split(";")]
    mime = params[0]
    if "base64" not in params[1:]:
        raise InvalidRequest(
            f"{field} data URI must be Base64-encoded: data:image/<type>;base64,<data>", field
        )
    if not mime.startswith("image/") or _MIME_RE.match(mime) is None:
        what = f"media type {mime[:30]}" if _MIME_RE.match(mime) else "no valid media type"
        raise InvalidRequest(
            f"{field} data URI has {what}; expected an image type such as image/png or image/jpeg",
            field,
        )
    data = decode_data_uri_payload(payload, field=field, max_bytes=max_bytes)
    if len(data) > max_bytes:
        raise too_big(field, len(data), max_bytes)
    return MediaRef(kind="data", data=data, mime=mime)


def parse_image_ref(value: str, *, field: str, max_bytes: int) -> MediaRef:
    """Classify and validate an image reference without any network access.

    Raises ``InvalidRequest`` naming ``field`` and what is accepted; never echoes data.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{field} is empty; expected {ACCEPTED_TEXT}", field)
    text = value.strip()
    scheme_match = _SCHEME_RE.match(text)
    if scheme_match is not None:
        scheme = scheme_match.group(1).lower()
        if scheme == "data":
            return _parse_data_uri(text, field=field, max_bytes=max_bytes)
        if scheme in ("http", "https"):
            parse_target(text, field=field)
            return MediaRef(kind="url", url=text)
        shown = scheme if len(scheme) <= 20 else scheme[:20] + "..."
        raise InvalidRequest(
            f"{field} uses the unsupported scheme '{shown}'; expected {ACCEPTED_TEXT}", field
        )
    if len(text) >= MIN_BARE_BASE64_CHARS:
        try:
            data = decode_base64(text, field=field, max_bytes=max_bytes)
        except ValueError:
            data = b""
        if sniff_image_type(data) is not None:
            return MediaRef(kind="data", data=data)
        other = describe_non_image(data)
        if other is not None:
            raise InvalidRequest(
                f"{field} decodes to {other}, which is not supported; send {SUPPORTED_TEXT}",
                field,
            )
    raise InvalidRequest(f"{field} is not valid; expected {ACCEPTED_TEXT}", field)


def sniff_image_type(data: bytes) -> str | None:
    """The supported format ``data`` is in by its magic bytes (``"png"``, ...), else None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:2] == b"BM" and len(data) >= 26:
        return "bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    return None


_ISO_BRANDS = {
    b"avif": "an AVIF image",
    b"avis": "an AVIF image",
    b"heic": "a HEIC image",
    b"heix": "a HEIC image",
    b"mif1": "a HEIF image",
    b"msf1": "a HEIF image",
}
_MAGIC = (
    (b"%PDF", "a PDF document"),
    (b"\x00\x00\x01\x00", "an ICO icon"),
    (b"8BPS", "a Photoshop document"),
    (b"\xff\x0a", "a JPEG XL image"),
    (b"\x00\x00\x00\x0cJXL ", "a JPEG XL image"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x1a\x45\xdf\xa3", "a WebM/Matroska video"),
)


def describe_non_image(data: bytes) -> str | None:
    """A phrase naming a recognised unsupported type (``"an SVG image"``), else None."""
    for magic, description in _MAGIC:
        if data.startswith(magic):
            return description
    if data[4:8] == b"ftyp":
        return _ISO_BRANDS.get(data[8:12], "an MP4/QuickTime video")
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if b"<svg" in head or (head.startswith(b"<?xml") and b"<svg" in data[:8192].lower()):
        return "an SVG image"
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head or b"<body" in head:
        return "an HTML page"
    if head.startswith(b"<"):
        return "an XML document"
    if head.startswith((b"{", b"[")):
        return "JSON data"
    return None


def _unsupported_message(data: bytes, field: str) -> str:
    other = describe_non_image(data)
    if other is not None:
        return f"{field} is {other}, which is not a supported image format; send {SUPPORTED_TEXT}"
    return f"{field} is not a supported image; send {SUPPORTED_TEXT}"


def _pixels_text(pixels: int) -> str:
    if pixels >= 1_000_000:
        return f"{pixels / 1_000_000:.1f}".removesuffix(".0") + " megapixels"
    return f"{pixels} pixels"


def _check_dimensions(size: tuple[int, int], *, field: str, max_pixels: int, min_side: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise InvalidImage(f"{field} has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise InvalidImage(
            f"{field} is {width}x{height} ({_pixels_text(width * height)}); "
            f"the limit is {_pixels_text(max_pixels)}"
        )
    if min(width, height) < min_side:
        raise InvalidImage(
            f"{field} is {width}x{height} pixels; each side must be at least {min_side} pixels"
        )


def _wide_to_l(image: Image.Image) -> Image.Image:
    """16/32-bit integer and float greyscale to 8-bit, scaling instead of clipping."""
    values = np.asarray(image, dtype=np.float32)
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min(initial=0.0)), float(values.max(initial=0.0))
    if image.mode.startswith("I;16") or (image.mode == "I" and 255 < high <= 65535 and low >= 0):
        scaled = values / 65535.0
    elif image.mode == "F" and low >= 0 and high <= 1:
        scaled = values
    elif low >= 0 and high <= 255:
        scaled = values / 255.0
    else:
        scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
    return Image.fromarray(np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8))


def _cmyk_to_rgb(image: Image.Image) -> Image.Image:
    """Use the embedded ICC profile when there is one; Pillow's naive formula otherwise."""
    profile = image.info.get("icc_profile")
    if profile:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
            converted = ImageCms.profileToProfile(image, source, srgb, outputMode="RGB")
            if converted is not None:
                converted.info.pop("icc_profile", None)
                return converted
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            logger.debug("ignoring an unusable CMYK ICC profile", exc_info=True)
    return image.convert("RGB")


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in _WIDE_INT_MODES:
        image = _wide_to_l(image)
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*GREY_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode == "CMYK":
        return _cmyk_to_rgb(image)
    if image.mode == "RGB":
        return image.copy()
    return image.convert("RGB")


def _normalise(image: Image.Image) -> Image.Image:
    """Upright, RGB, alpha flattened; a new fully loaded image independent of the file."""
    try:
        upright = ImageOps.exif_transpose(image) or image
    except Exception:  # broken EXIF must not make a usable picture unusable
        logger.debug("ignoring unreadable EXIF orientation", exc_info=True)
        upright = image
    rgb = _to_rgb(upright)
    rgb.load()
    return rgb


def decode_image(data: bytes, *, field: str, max_pixels: int, min_side: int = 1) -> Image.Image:
    """Decode untrusted bytes into an upright RGB image; raises ``InvalidImage``.

    Only JPEG, PNG, WebP, GIF, BMP and TIFF are accepted, identified by magic bytes. The
    pixel count is checked from the header before decoding; Pillow's own
    decompression-bomb guard (``Image.MAX_IMAGE_PIXELS``, left at its process-wide value)
    is mapped to ``InvalidImage`` too. Animated images yield their first frame.
    """
    with _opened(data, field, max_pixels, "image could not be decoded") as (_kind, image):
        _check_dimensions(image.size, field=field, max_pixels=max_pixels, min_side=min_side)
        image.load()
        return _normalise(image)


@contextlib.contextmanager
def _opened(
    data: bytes, field: str, max_pixels: int, what: str
) -> Iterator[tuple[str, Image.Image]]:
    """The image's format and Pillow's lazy view of it (nothing decoded yet), refusing
    empty data and unknown formats by magic bytes first."""
    if not data:
        raise InvalidImage(f"{field} is empty")
    kind = sniff_image_type(data)
    if kind is None:
        raise InvalidImage(_unsupported_message(data, field))
    with (
        _pillow_failures(field, kind, max_pixels, what),
        Image.open(io.BytesIO(data), formats=PILLOW_FORMATS) as image,
    ):
        yield kind, image


@contextlib.contextmanager
def _pillow_failures(field: str, kind: str, max_pixels: int, what: str) -> Iterator[None]:
    """Whatever Pillow raises on hostile or damaged data, as one clear ``InvalidImage``
    (the exception type goes to the log, as ``what``; the data never does)."""
    try:
        yield
    except InvalidImage:
        raise
    except MemoryError:
        raise InvalidImage(f"{field} is too large to decode") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidImage(
            f"{field} has too many pixels to decode safely; the limit is {_pixels_text(max_pixels)}"
        ) from None
    except Exception as exc:  # Pillow raises many types for hostile or damaged files
        logger.info(what, extra={"field": field, "format": kind, "error": type(exc).__name__})
        raise InvalidImage(_corrupt_message(field, kind)) from None


def load_image(
    value: str, policy: FetchPolicy, *, field: str, max_pixels: int, min_side: int = 1
) -> Image.Image:
    """Worker side: parse, fetch if it is a URL, decode.

    Raises only ``InputError`` subclasses (``ImageFetchError``, ``InvalidImage``), so a
    failed job reports one of those names; a reference that does not parse (normally
    caught at submit) becomes ``InvalidImage``.
    """
    try:
        ref = parse_image_ref(value, field=field, max_bytes=policy.max_bytes)
    except InvalidRequest as exc:
        raise InvalidImage(exc.message) from None
    if ref.kind == "url" and ref.url is not None:
        data = fetch_bytes(ref.url, policy, field=field).data
    else:
        data = ref.data or b""
    return decode_image(data, field=field, max_pixels=max_pixels, min_side=min_side)


def check_image_ref(
    value: str, policy: FetchPolicy, *, field: str, max_pixels: int, min_side: int = 1
) -> MediaRef:
    """Submit side: everything short of fetching or decoding, so bad input is a 400 before
    queueing.

    Inline data gets ``inspect_image`` (headers only: decoding happens in the worker);
    URLs get ``check_url`` including one DNS lookup with a short timeout.
    """
    ref = parse_image_ref(value, field=field, max_bytes=policy.max_bytes)
    if ref.kind == "data":
        inspect_image(ref.data or b"", field=field, max_pixels=max_pixels, min_side=min_side)
    elif ref.url is not None:
        check_url(ref.url, policy, field=field)
    return ref


# -- cheap checks (no pixel is decoded) --------------------------------------------------

DEFLATE_MAX_RATIO = 1032
"""Deflate never expands more than this (258-byte matches in 2 bits), so a PNG's IDAT
data must be at least ``raw pixel bytes / 1032``."""
MAX_PNG_CHUNKS = 100_000
"""More chunks than any encoder writes for a 20 MiB image; walking them stays cheap."""
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_JPEG_HUFFMAN_SEQUENTIAL = frozenset({0xC0, 0xC1})
"""SOF markers of Huffman-coded sequential JPEG, where every 8x8 block costs >= 2 bits."""
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


def inspect_image(data: bytes, *, field: str, max_pixels: int, min_side: int = 1) -> None:
    """Refuse what is cheap to refuse, without decoding a pixel; raises ``InvalidImage``.

    Checks the format (magic bytes), the declared size against ``max_pixels`` and
    ``min_side``, truncation (PNG ``IEND``, JPEG ``EOI``, the RIFF size of WebP, strip
    offsets of BMP/TIFF) and whether the data can hold the declared pixels at all (PNG:
    deflate's best ratio; baseline JPEG: 2 bits per block). A damaged image that passes
    still fails, clearly, when the worker decodes it.
    """
    with _opened(data, field, max_pixels, "image header could not be read") as (kind, image):
        size, tiles, bands = image.size, list(image.tile), len(image.getbands())
        one_bit = image.mode == "1"
    _check_dimensions(size, field=field, max_pixels=max_pixels, min_side=min_side)
    intact = {
        "png": _png_intact,
        "jpeg": _jpeg_intact,
        "webp": _webp_intact,
    }.get(kind, lambda _data, _size: True)(data, size)
    bits = 1 if one_bit else 8 * bands
    if not intact or not _tiles_within(data, tiles, bits):
        raise InvalidImage(_corrupt_message(field, kind))


def _corrupt_message(field: str, kind: str) -> str:
    return f"{field} could not be decoded as {kind.upper()}: the file is truncated or corrupt"


def _png_intact(data: bytes, size: tuple[int, int]) -> bool:
    """Chunks well-formed up to ``IEND``, with enough ``IDAT`` data for the pixels."""
    if len(data) < 33 or data[12:16] != b"IHDR":
        return False
    depth, colour = data[24], data[25]
    row_bits = size[0] * depth * _PNG_CHANNELS.get(colour, 1)
    raw_bytes = size[1] * (-(-row_bits // 8))
    position, idat = 8, 0
    for _ in range(MAX_PNG_CHUNKS):
        if position + 12 > len(data):
            return False
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        position += 12 + length
        if position > len(data):
            return False
        if kind == b"IDAT":
            idat += length
        elif kind == b"IEND":
            return idat * DEFLATE_MAX_RATIO >= raw_bytes
    return False


def _jpeg_intact(data: bytes, size: tuple[int, int]) -> bool:
    """Markers well-formed up to the first scan, an ``EOI`` after it and, for baseline
    JPEG, at least 2 bits of scan data per 8x8 block."""
    position, frame = 2, 0
    while True:
        while position < len(data) and data[position] != 0xFF:
            position += 1  # tolerate junk between segments, as decoders do
        while position < len(data) and data[position] == 0xFF:
            position += 1  # fill bytes
        if position + 2 >= len(data):
            return False
        marker = data[position]
        position += 1
        if marker in _JPEG_STANDALONE:
            continue
        if marker == 0xD9:
            return False  # EOI before any scan
        length = int.from_bytes(data[position : position + 2], "big")
        if length < 2:
            return False
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            frame = frame or marker
        position += length
        if marker == 0xDA:
            break
    end = data.find(b"\xff\xd9", position)
    if end < 0:
        return False
    if frame in _JPEG_HUFFMAN_SEQUENTIAL:
        blocks = -(-size[0] // 8) * -(-size[1] // 8)
        return (end - position) * 4 >= blocks
    return True


def _webp_intact(data: bytes, size: tuple[int, int]) -> bool:
    return len(data) >= 12 and int.from_bytes(data[4:8], "little") + 8 <= len(data)


def _tiles_within(data: bytes, tiles: list[Any], bits_per_pixel: int) -> bool:
    """Every strip or tile Pillow would read starts inside the data, and uncompressed
    ones (BMP, TIFF) end inside it."""
    for tile in tiles:
        offset, extents = tile[2], tile[1]
        if offset > len(data):
            return False
        if tile[0] != "raw":
            continue
        width, height = extents[2] - extents[0], extents[3] - extents[1]
        args = tile[3]
        stride = args[1] if isinstance(args, tuple) and len(args) > 1 else 0
        if not isinstance(stride, int) or stride <= 0:
            stride = -(-width * bits_per_pixel // 8)
        if offset + stride * height > len(data):
            return False
    return True
