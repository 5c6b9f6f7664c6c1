"""Videos in a local directory (the default, under ``$REELFORGE_HOME/files``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from reelforge.errors import NotFound
from reelforge.storage.base import check_key


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
