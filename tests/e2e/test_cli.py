"""The CLI driven as a user would: first start prints a key; keys create/list/revoke."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import httpx
import pytest

from support import LiveServer

pytestmark = pytest.mark.e2e

KEY_PATTERN = re.compile(r"rf_[A-Za-z0-9_-]{40,}")


def reelforge(home, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REELFORGE_HOME": str(home)}
    env.pop("REELFORGE_API_KEYS", None)
    return subprocess.run(
        [sys.executable, "-m", "reelforge", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _wait_for_key(log_path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = KEY_PATTERN.search(log_path.read_text())
        if found:
            return found.group(0)
        time.sleep(0.1)
    raise TimeoutError(log_path.read_text())


def test_first_start_creates_and_prints_a_key_once(tmp_path) -> None:
    server = LiveServer(home=tmp_path / "home", keys=())
    server.env = {"REELFORGE_API_KEYS": ""}
    server.start()
    try:
        key = _wait_for_key(server.log_path)
        body = {"model": "veo2", "prompt": "a lighthouse at dusk", "duration": 5}
        assert server.create(body, key=key).status_code == 200
        assert server.create(body, key=key[:-1] + "x").status_code == 401
    finally:
        server.stop()
    server.start()  # a key exists now: nothing new is created or printed
    try:
        assert len(KEY_PATTERN.findall(server.log_path.read_text())) == 1
    finally:
        server.stop()
    assert key not in (tmp_path / "home" / "reelforge.db").read_bytes().decode("latin-1")


def test_keys_create_list_revoke(tmp_path) -> None:
    home = tmp_path / "home"
    created = reelforge(home, "keys", "create", "--name", "alice")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert KEY_PATTERN.fullmatch(key)
    key_id = re.search(r"key_[0-9a-f]+", created.stderr).group(0)

    listed = reelforge(home, "keys", "list")
    assert "alice" in listed.stdout and key_id in listed.stdout and "active" in listed.stdout
    assert key not in listed.stdout

    server = LiveServer(home=home, keys=()).start()
    try:
        url = f"{server.url}/v2/video/generations"
        params = {"generation_id": "none:veo2"}
        assert httpx.get(url, params=params, headers=server.headers(key)).status_code == 404
        revoked = reelforge(home, "keys", "revoke", key_id)
        assert revoked.returncode == 0, revoked.stderr
        assert httpx.get(url, params=params, headers=server.headers(key)).status_code == 401
    finally:
        server.stop()
    assert "revoked" in reelforge(home, "keys", "list").stdout
    missing = reelforge(home, "keys", "revoke", "key_000000000000")
    assert missing.returncode == 1 and "no API key" in missing.stderr
