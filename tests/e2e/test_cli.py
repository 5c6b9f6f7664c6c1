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


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("REELFORGE_STORAGE_URL", "gs://bucket/videos", "unsupported REELFORGE_STORAGE_URL"),
        ("REELFORGE_DATABASE_URL", "nonsense://x", "REELFORGE_DATABASE_URL cannot be used"),
        ("REELFORGE_LEASE_SECONDS", "soon", "REELFORGE_LEASE_SECONDS: Input should be"),
        ("REELFORGE_ENGINE", "aimlapi", "REELFORGE_AIMLAPI_KEY is not set"),
        ("REELFORGE_MODEL_ENGINES", "veo9=preview", "unknown models"),
    ],
)
@pytest.mark.parametrize("command", ["serve", "worker"])
def test_configuration_mistakes_stop_the_start_with_one_clear_line(
    tmp_path, command, variable, value, message
) -> None:
    env = {**os.environ, "REELFORGE_HOME": str(tmp_path), variable: value}
    result = subprocess.run(
        [sys.executable, "-m", "reelforge", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert message in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")


def test_models_lists_every_model_with_its_inputs_and_prices(tmp_path) -> None:
    from reelforge.catalog import MODELS

    result = reelforge(tmp_path / "home", "models")
    assert result.returncode == 0, result.stderr
    rows = {line.split("\t")[0]: line.split("\t") for line in result.stdout.splitlines()[1:]}
    assert set(rows) == set(MODELS)
    assert "image_urls" in rows["google/veo-3.1-reference-to-video"][1]
    assert rows["google/veo3-1-extend-video"][2] == "7 (default 7)"
    assert "person_generation" in rows["veo-3.1-lite-generate-001"][4]
    assert rows["google/veo3"][5] == "168,000 (105,000 without audio)"
