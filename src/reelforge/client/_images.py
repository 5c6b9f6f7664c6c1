"""Turning local images into data URIs for ``image_url`` / ``tail_image_url``."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from reelforge.client.errors import InvalidRequestError

MAX_PATH_CHARS = 4096
IMAGE_FIELDS = ("image_url", "tail_image_url")

_IMAGE_TYPES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"BM", "image/bmp"),
)


def sniff_image_type(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((mime for magic, mime in _IMAGE_TYPES if data.startswith(magic)), None)


def image_to_data_uri(value: Any, field: str = "image_url") -> str:
    """URLs and data URIs pass as they are; a local file or ``bytes`` becomes a data URI.

    Refusing an unknown file type here saves uploading megabytes for a 400.
    """
    if isinstance(value, str):
        if value.startswith(("http://", "https://", "data:")):
            return value
        path = Path(value).expanduser() if len(value) < MAX_PATH_CHARS else None
        try:
            is_file = path is not None and path.is_file()
        except (OSError, ValueError):
            is_file = False
        if is_file and path is not None:
            return _file_to_data_uri(path, field)
        if "." in value:  # never bare Base64, so a file name that does not exist
            raise InvalidRequestError(f"{field}: no such file: {value}", field=field)
        return value  # bare Base64: the server decodes it
    if isinstance(value, os.PathLike):
        return _file_to_data_uri(Path(value), field)
    if isinstance(value, bytes | bytearray | memoryview):
        return _bytes_to_data_uri(bytes(value), field)
    raise InvalidRequestError(
        f"{field}: expected a URL, a data URI, a file path or bytes, got {type(value).__name__}",
        field=field,
    )


def _file_to_data_uri(path: Path, field: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InvalidRequestError(f"{field}: cannot read {path}: {error}", field=field) from None
    return _bytes_to_data_uri(data, field, source=str(path))


def _bytes_to_data_uri(data: bytes, field: str, source: str = "the bytes given") -> str:
    mime = sniff_image_type(data)
    if mime is None:
        raise InvalidRequestError(
            f"{field}: {source} is not a JPEG, PNG, WebP, GIF, BMP or TIFF image", field=field
        )
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")
