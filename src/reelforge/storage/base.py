"""The storage interface: where finished videos and staged inputs live."""

from __future__ import annotations

import errno
import logging
import re
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple, Protocol

from reelforge.errors import DISK_FULL_RETRY_SECONDS, InsufficientStorage, NotFound
from reelforge.logs import throttle

log = logging.getLogger(__name__)

_KEY = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$")
MAX_KEY_CHARS = 400


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
DISK_FULL_MESSAGE = "The server is out of disk space; try again later"


def is_disk_full(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS


def disk_full() -> InsufficientStorage:
    """What a full disk is to a client or a job: no path, no errno, a hint to retry."""
    return InsufficientStorage(DISK_FULL_MESSAGE, retry_after_seconds=DISK_FULL_RETRY_SECONDS)


@contextmanager
def disk_full_as_insufficient_storage() -> Iterator[None]:
    """Turn ENOSPC/EDQUOT into ``InsufficientStorage`` (507 at the API, a clean job error);
    the OS error, with its path, stays out of every message."""
    try:
        yield
    except OSError as error:
        if is_disk_full(error):
            throttle.log(log, logging.ERROR, "disk full", f"disk full: {error}")
            raise disk_full() from None
        raise


def check_key(key: str) -> str:
    """Keys are relative, slash-separated names; no part may start with a dot."""
    if len(key) > MAX_KEY_CHARS or not _KEY.match(key) or ".." in key.split("/"):
        raise NotFound("no such file")
    return key


class ObjectRange(NamedTuple):
    """Part of a stored object being read: the bytes come as ``chunks``.

    ``chunks`` holds an open file or connection until exhausted; call ``chunks.close()``
    when stopping early.
    """

    chunks: Generator[bytes, None, None]
    total_size: int
    """Size of the whole object."""
    content_length: int
    """Bytes ``chunks`` yields."""


class Storage(Protocol):
    def put_file(self, key: str, source: Path, content_type: str) -> int:
        """Store ``source`` under ``key`` atomically (moving it when possible); returns size."""
        ...

    def put_bytes(self, key: str, data: bytes, content_type: str) -> int: ...

    def get_bytes(self, key: str) -> bytes: ...

    def size(self, key: str) -> int | None:
        """Size in bytes, or ``None`` when the object does not exist."""
        ...

    def delete(self, key: str) -> None: ...

    def list_keys(self, prefix: str) -> Iterator[tuple[str, float]]:
        """Every stored key under ``prefix`` with its modification time (Unix seconds),
        for the orphan sweep."""
        ...

    def local_path(self, key: str) -> Path | None:
        """A file the API can serve directly (with Range), when the backend is local."""
        ...

    def temp_dir(self) -> Path:
        """A directory for work files, on the same filesystem as local storage if any."""
        ...

    def open_range(self, key: str, start: int | None, end: int | None) -> ObjectRange:
        """Stream bytes ``start`` to ``end``, both inclusive (``None``: from the first, to
        the last byte). An ``end`` past the object is clipped; a ``start`` at or past the
        end reads nothing. Raises ``NotFound`` when the object does not exist."""
        ...

    def presigned_url(self, key: str, expires_seconds: int) -> str | None:
        """A URL that fetches the object without credentials until it expires, or
        ``None`` when the backend cannot make one (local storage)."""
        ...
