"""Local storage: key rules and atomic writes."""

from __future__ import annotations

import secrets

import pytest

from reelforge.errors import NotFound
from reelforge.storage import LocalStorage, check_key

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "key",
    ["videos/abc/output.mp4", "videos/-abc/output.mp4", "videos/_x-y/output.mp4", "inputs/a/b"],
)
def test_valid_keys(key: str) -> None:
    assert check_key(key) == key


def test_every_generated_token_is_a_valid_key() -> None:
    for _ in range(2000):
        check_key(f"videos/{secrets.token_urlsafe(24)}/output.mp4")


@pytest.mark.parametrize(
    "key",
    ["../x", "videos/../x", "/abs", "videos/.hidden", "", "a//b", "a/b/", "x" * 500, "a\\b", "é"],
)
def test_invalid_keys(key: str) -> None:
    with pytest.raises(NotFound):
        check_key(key)


def test_put_get_size_delete(tmp_path) -> None:
    storage = LocalStorage(tmp_path / "files")
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"x" * 1000)
    assert storage.put_file("videos/t/output.mp4", source, "video/mp4") == 1000
    assert not source.exists()  # moved, not copied
    assert storage.size("videos/t/output.mp4") == 1000
    assert storage.local_path("videos/t/output.mp4").read_bytes() == b"x" * 1000
    assert storage.put_bytes("inputs/j/image_url", b"abc", "image/png") == 3
    assert storage.get_bytes("inputs/j/image_url") == b"abc"
    storage.delete("inputs/j/image_url")
    assert storage.size("inputs/j/image_url") is None
    with pytest.raises(NotFound):
        storage.get_bytes("inputs/j/image_url")
    assert list(storage.temp_dir().iterdir()) == []


def test_opening_storage_sweeps_stale_work_files_only(tmp_path) -> None:
    import os
    import time

    LocalStorage(tmp_path)
    stale = tmp_path / ".tmp" / "dead-process.mp4.part"
    fresh = tmp_path / ".tmp" / "being-written.mp4"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"y")
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    LocalStorage(tmp_path)  # a process starting
    assert not stale.exists() and fresh.exists()
