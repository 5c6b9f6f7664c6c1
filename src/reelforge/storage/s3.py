"""Videos and staged inputs in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, ...).

What every API and worker process of a scaled-out deployment shares. Objects live under
``<prefix>/<key>``; keys pass ``check_key`` like everywhere else. S3 makes a put visible
only once it is complete (multipart uploads included), so readers never see a partial
video. boto3 is an optional extra (``reelforge[s3]``) and is imported only when this
backend is built.

Failures to reach the store become ``ServiceUnavailable`` (503 at the API, a job error
in a worker); client timeouts and a bounded number of retries keep a dead endpoint from
hanging a request.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

from reelforge.errors import ConfigurationError, NotFound, ServiceUnavailable
from reelforge.storage.base import ObjectRange, check_key

log = logging.getLogger(__name__)

MULTIPART_THRESHOLD_BYTES = 16 * 2**20
"""Files at least this big are uploaded in parts (in parallel, retried per part)."""
MULTIPART_CHUNK_BYTES = 8 * 2**20
"""Part size; S3 raises anything below 5 MiB to 5 MiB except for the last part."""
UPLOAD_CONCURRENCY = 4
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 30.0
"""Longest wait for the next bytes of a response, not for the whole transfer."""
MAX_ATTEMPTS = 3
"""Tries of one request, the first included (botocore's "standard" retry mode)."""
READ_CHUNK_BYTES = 256 * 2**10
MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
INSTALL_HINT = (
    "S3 storage needs boto3: install the extra with `pip install -e '.[s3]'` (in the clone)"
)


def _boto3() -> tuple[ModuleType, Any]:
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    return boto3, Config


def _private_temp_dir(root: Path | None) -> Path:
    """``<tmp>/reelforge-<uid>``, owned by this user and closed to others.

    A directory someone else created there (or a symlink) is not trusted: work files
    then go to a fresh ``mkdtemp`` directory instead.
    """
    base = Path(tempfile.gettempdir()) if root is None else root
    uid = os.getuid() if hasattr(os, "getuid") else None
    path = base / f"reelforge-{uid if uid is not None else 'user'}"
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700, parents=True)
    info = path.lstat()
    trusted = stat.S_ISDIR(info.st_mode) and (uid is None or info.st_uid == uid)
    if not trusted:
        log.warning("untrusted temp directory; using a fresh one", extra={"path": str(path)})
        return Path(tempfile.mkdtemp(prefix="reelforge-", dir=base))
    if uid is not None and stat.S_IMODE(info.st_mode) & 0o077:
        path.chmod(0o700)
    return path


class S3Storage:
    """Objects in ``bucket`` under ``prefix``; credentials default to boto3's chain.

    ``endpoint_url`` selects an S3-compatible service (MinIO, Ceph); requests then use
    path-style addressing, which those serve without wildcard DNS. ``client`` injects a
    ready boto3 S3 client (tests); the other connection arguments are then unused.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        multipart_threshold: int = MULTIPART_THRESHOLD_BYTES,
        multipart_chunk: int = MULTIPART_CHUNK_BYTES,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
        read_timeout: float = READ_TIMEOUT_SECONDS,
        max_attempts: int = MAX_ATTEMPTS,
        temp_root: Path | None = None,
        client: Any = None,
    ) -> None:
        if not bucket:
            raise ConfigurationError("an S3 bucket name is required")
        if (access_key_id is None) != (secret_access_key is None):
            raise ConfigurationError(
                "set both REELFORGE_S3_ACCESS_KEY_ID and REELFORGE_S3_SECRET_ACCESS_KEY, "
                "or neither to use the AWS credential chain"
            )
        boto3, config_type = _boto3()
        from boto3.s3.transfer import TransferConfig

        self.bucket = bucket
        self.prefix = "/".join(part for part in prefix.split("/") if part)
        self.endpoint_url = endpoint_url
        if client is None:
            session = boto3.session.Session(
                aws_access_key_id=access_key_id,
                aws_secret_access_key=secret_access_key,
                region_name=region,
            )
            config = config_type(
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                retries={"max_attempts": max_attempts, "mode": "standard"},
                signature_version="s3v4",
                s3={"addressing_style": "path" if endpoint_url else "auto"},
            )
            client = session.client("s3", endpoint_url=endpoint_url, config=config)
        self._client = client
        self._transfer = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunk,
            max_concurrency=UPLOAD_CONCURRENCY,
        )
        self._temp = _private_temp_dir(temp_root)
        log.info(
            "s3 storage",
            extra={"bucket": bucket, "prefix": self.prefix, "endpoint": _safe(endpoint_url)},
        )

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def object_key(self, key: str) -> str:
        """The bucket key of a storage key: ``<prefix>/<key>``, never a double slash."""
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def temp_dir(self) -> Path:
        return self._temp

    def put_file(self, key: str, source: Path, content_type: str) -> int:
        """Upload ``source`` (in parts when large), then remove it, as a local move would."""
        name = self.object_key(key)
        size = source.stat().st_size
        try:
            self._client.upload_file(
                str(source),
                self.bucket,
                name,
                ExtraArgs={"ContentType": content_type},
                Config=self._transfer,
            )
        except Exception as error:
            self._fail(error, "upload", name)
        with contextlib.suppress(FileNotFoundError):
            source.unlink()
        return size

    def put_bytes(self, key: str, data: bytes, content_type: str) -> int:
        name = self.object_key(key)
        try:
            self._client.put_object(
                Bucket=self.bucket, Key=name, Body=data, ContentType=content_type
            )
        except Exception as error:
            self._fail(error, "upload", name)
        return len(data)

    def get_bytes(self, key: str) -> bytes:
        name = self.object_key(key)
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=name)
            with contextlib.closing(response["Body"]) as body:
                return body.read()
        except Exception as error:
            self._fail(error, "download", name)

    def size(self, key: str) -> int | None:
        name = self.object_key(key)
        try:
            response = self._client.head_object(Bucket=self.bucket, Key=name)
        except Exception as error:
            if _code(error) in MISSING_CODES:
                return None
            self._fail(error, "inspect", name)
        return int(response["ContentLength"])

    def delete(self, key: str) -> None:
        name = self.object_key(key)
        try:
            self._client.delete_object(Bucket=self.bucket, Key=name)
        except Exception as error:
            if _code(error) not in MISSING_CODES:
                self._fail(error, "delete", name)

    def list_keys(self, prefix: str) -> Iterator[tuple[str, float]]:
        start = f"{self.prefix}/" if self.prefix else ""
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=start + prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"][len(start) :], item["LastModified"].timestamp()
        except Exception as error:
            self._fail(error, "list", start + prefix)

    def local_path(self, key: str) -> Path | None:
        self.object_key(key)
        return None

    def open_range(self, key: str, start: int | None, end: int | None) -> ObjectRange:
        name = self.object_key(key)
        first = max(0, start or 0)
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": name}
        if first or end is not None:
            request["Range"] = f"bytes={first}-{'' if end is None else end}"
        try:
            response = self._client.get_object(**request)
        except Exception as error:
            if _code(error) == "InvalidRange":  # starts at or past the end: nothing to read
                total = self.size(key)
                if total is None:
                    raise NotFound("no such file") from None
                return ObjectRange(_nothing(), total, 0)
            self._fail(error, "download", name)
        length = int(response["ContentLength"])
        content_range = response.get("ContentRange")
        total = int(content_range.rsplit("/", 1)[1]) if content_range else length
        return ObjectRange(_stream(response["Body"]), total, length)

    def presigned_url(self, key: str, expires_seconds: int) -> str:
        """A GET URL valid ``expires_seconds`` (SigV4 allows up to 7 days); signing is
        local, but the first call may resolve credentials from boto3's chain."""
        name = self.object_key(key)
        try:
            return self._client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": name},
                ExpiresIn=expires_seconds,
            )
        except Exception as error:
            self._fail(error, "presign", name)

    def _fail(self, error: Exception, action: str, name: str) -> NoReturn:
        """Re-raise ``error`` as a domain error: ``NotFound`` or ``ServiceUnavailable``."""
        code = _code(error)
        if code in MISSING_CODES:
            raise NotFound("no such file") from None
        if not _is_boto_error(error):
            raise error
        log.warning(
            "s3 request failed",
            extra={
                "action": action,
                "bucket": self.bucket,
                "key": name,
                "error": code or type(error).__name__,
            },
        )
        raise ServiceUnavailable(
            f"object storage is unavailable ({action} failed: {code or type(error).__name__}); "
            "try again later"
        ) from error


def _code(error: BaseException) -> str | None:
    """The S3 error code of ``error`` or of the error it wraps (boto3 wraps upload errors)."""
    current: BaseException | None = error
    for _ in range(3):
        if current is None:
            break
        response = getattr(current, "response", None)
        if isinstance(response, dict):
            return str(response.get("Error", {}).get("Code") or "") or None
        current = current.__cause__ or current.__context__
    return None


def _is_boto_error(error: Exception) -> bool:
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    return isinstance(error, BotoCoreError | ClientError | Boto3Error)


def _stream(body: Any) -> Generator[bytes, None, None]:
    with contextlib.closing(body):
        yield from body.iter_chunks(READ_CHUNK_BYTES)


def _nothing() -> Generator[bytes, None, None]:
    yield from ()


def _safe(url: str | None) -> str | None:
    """An endpoint URL without any user information, for logs."""
    if url is None or "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rsplit('@', 1)[1]}"
