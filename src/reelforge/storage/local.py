"""Videos in a local directory (the default, under ``$REELFORGE_HOME/files``).

Work files live in ``.tmp`` beside the videos (same filesystem, so storing is a rename).
Every write cleans up after itself when it fails, a full disk is ``InsufficientStorage``
(never an ``OSError`` carrying a server path), and files left in ``.tmp`` by a process
that died are swept when storage is opened.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import BinaryIO

from reelforge.errors import NotFound
from reelforge.storage.base import ObjectRange, check_key, disk_full_as_insufficient_storage

log = logging.getLogger(__name__)

READ_CHUNK_BYTES = 256 * 2**10
STALE_TEMP_SECONDS = 15 * 60
"""Work files untouched this long belong to no live process (encoders and downloads
write continuously), so opening storage sweeps them."""


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._tmp = self.root / ".tmp"
        self._tmp.mkdir(exist_ok=True)
        self.sweep_temp()

    def sweep_temp(self, older_than: float = STALE_TEMP_SECONDS) -> int:
        """Delete work files older than ``older_than`` seconds; returns how many."""
        cutoff = time.time() - older_than
        removed = 0
        for entry in self._tmp.iterdir():
            with contextlib.suppress(OSError):
                if entry.is_file() and entry.stat().st_mtime < cutoff:
                    entry.unlink()
                    removed += 1
        if removed:
            log.info("removed stale work files", extra={"count": removed})
        return removed

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if self.root not in path.parents:
            raise NotFound("no such file")
        return path

    def temp_dir(self) -> Path:
        return self._tmp

    def put_file(self, key: str, source: Path, content_type: str) -> int:
        target = self._path(key)
        # Readers see either no file or the whole file: write beside, fsync, rename.
        with disk_full_as_insufficient_storage():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, staging = tempfile.mkstemp(dir=self._tmp, suffix=".part")
            os.close(fd)
            try:
                try:
                    os.replace(source, staging)
                except OSError:
                    shutil.copyfile(source, staging)
                with open(staging, "rb+") as handle:
                    os.fsync(handle.fileno())
                os.replace(staging, target)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(staging)
        return target.stat().st_size

    def put_bytes(self, key: str, data: bytes, content_type: str) -> int:
        with disk_full_as_insufficient_storage():
            fd, staging = tempfile.mkstemp(dir=self._tmp, suffix=".part")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(staging)
                raise
        return self.put_file(key, Path(staging), content_type)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound("no such file") from None

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        """Remove the file, and the directories it leaves empty (one per video)."""
        path = self._path(key)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        for parent in path.parents:
            if parent == self.root or self.root not in parent.parents:
                break
            try:
                parent.rmdir()
            except OSError:  # not empty (or already gone): stop here
                break

    def list_keys(self, prefix: str) -> Iterator[tuple[str, float]]:
        top = self.root / prefix
        if not top.is_dir():
            return
        for path in sorted(top.rglob("*")):
            with contextlib.suppress(OSError):
                if path.is_file():
                    yield path.relative_to(self.root).as_posix(), path.stat().st_mtime

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None

    def open_range(self, key: str, start: int | None, end: int | None) -> ObjectRange:
        try:
            handle = self._path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError):
            raise NotFound("no such file") from None
        total = os.fstat(handle.fileno()).st_size
        first = max(0, start or 0)
        last = total - 1 if end is None else min(end, total - 1)
        length = max(0, last - first + 1)
        handle.seek(first)
        return ObjectRange(_read(handle, length), total, length)

    def presigned_url(self, key: str, expires_seconds: int) -> str | None:
        return None


def _read(handle: BinaryIO, length: int) -> Generator[bytes, None, None]:
    with handle:
        while length > 0:
            chunk = handle.read(min(READ_CHUNK_BYTES, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk
