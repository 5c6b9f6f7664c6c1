"""Videos in a local directory (the default, under ``$REELFORGE_HOME/files``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Generator
from pathlib import Path
from typing import BinaryIO

from reelforge.errors import NotFound
from reelforge.storage.base import ObjectRange, check_key

READ_CHUNK_BYTES = 256 * 2**10


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._tmp = self.root / ".tmp"
        self._tmp.mkdir(exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if self.root not in path.parents:
            raise NotFound("no such file")
        return path

    def temp_dir(self) -> Path:
        return self._tmp

    def put_file(self, key: str, source: Path, content_type: str) -> int:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Readers see either no file or the whole file: write beside, fsync, rename.
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
        fd, staging = tempfile.mkstemp(dir=self._tmp, suffix=".part")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
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
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

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
