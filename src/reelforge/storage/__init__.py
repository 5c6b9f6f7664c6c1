"""Storage backends behind one interface."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from reelforge.settings import Settings
from reelforge.storage.base import Storage, check_key
from reelforge.storage.local import LocalStorage


def open_storage(settings: Settings) -> Storage:
    url = urlsplit(settings.resolved_storage_url)
    if url.scheme == "file":
        return LocalStorage(Path(unquote(url.path)))
    raise ValueError(f"unsupported REELFORGE_STORAGE_URL scheme {url.scheme!r}")


__all__ = ["LocalStorage", "Storage", "check_key", "open_storage"]
