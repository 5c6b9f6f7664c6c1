"""Storage backends behind one interface."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from reelforge.errors import ConfigurationError
from reelforge.settings import Settings
from reelforge.storage.base import ObjectRange, Storage, check_key
from reelforge.storage.local import LocalStorage

if TYPE_CHECKING:
    from reelforge.storage.s3 import S3Storage

SCHEMES = ("file", "s3")


def open_storage(settings: Settings) -> Storage:
    """The backend ``settings.resolved_storage_url`` names: ``file:///path`` or
    ``s3://bucket/prefix`` (with the ``s3_*`` settings; boto3 from ``reelforge[s3]``)."""
    raw = settings.resolved_storage_url
    url = urlsplit(raw)
    if url.scheme == "file":
        if url.netloc not in ("", "localhost"):
            raise ConfigurationError(f"REELFORGE_STORAGE_URL {raw!r}: file URLs name a local path")
        return LocalStorage(Path(unquote(url.path)))
    if url.scheme == "s3":
        return open_s3(settings)
    raise ConfigurationError(
        f"unsupported REELFORGE_STORAGE_URL scheme {url.scheme!r}: "
        "use file:///path or s3://bucket/prefix"
    )


def parse_s3_url(raw: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix/`` → ``("bucket", "some/prefix")``.

    Raises ``ConfigurationError`` for anything else.
    """
    url = urlsplit(raw)
    where = f"REELFORGE_STORAGE_URL {raw!r}"
    if url.scheme != "s3":
        raise ConfigurationError(f"{where}: expected s3://bucket/prefix")
    if url.query or url.fragment:
        raise ConfigurationError(f"{where}: an S3 URL takes no query or fragment")
    if "@" in url.netloc or ":" in url.netloc:
        raise ConfigurationError(
            f"{where}: give only the bucket after s3:// (endpoint and credentials go in "
            "REELFORGE_S3_ENDPOINT_URL and REELFORGE_S3_ACCESS_KEY_ID / _SECRET_ACCESS_KEY)"
        )
    bucket = url.netloc
    if not bucket:
        raise ConfigurationError(f"{where}: the bucket is missing (s3://bucket/prefix)")
    parts = [part for part in unquote(url.path).split("/") if part]
    if any(part in (".", "..") for part in parts):
        raise ConfigurationError(f"{where}: the prefix may not contain '.' or '..' parts")
    return bucket, "/".join(parts)


def open_s3(settings: Settings) -> S3Storage:
    from reelforge.storage.s3 import S3Storage

    bucket, prefix = parse_s3_url(settings.resolved_storage_url)
    secret = settings.s3_secret_access_key
    return S3Storage(
        bucket,
        prefix,
        endpoint_url=settings.s3_endpoint_url or None,
        region=settings.s3_region or None,
        access_key_id=settings.s3_access_key_id or None,
        secret_access_key=(secret.get_secret_value() if secret is not None else "") or None,
        read_timeout=settings.s3_timeout_seconds,
    )


__all__ = [
    "LocalStorage",
    "ObjectRange",
    "Storage",
    "check_key",
    "open_s3",
    "open_storage",
    "parse_s3_url",
]
