"""Storage backends behind one interface."""

from __future__ import annotations

from reelforge.settings import Settings
from reelforge.storage.base import Storage, check_key
from reelforge.storage.local import LocalStorage


def open_storage(settings: Settings) -> Storage:
    return LocalStorage(settings.resolved_storage_dir)


__all__ = ["LocalStorage", "Storage", "check_key", "open_storage"]
