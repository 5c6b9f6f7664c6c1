"""What a new user tripped over in the CLI, driven as subprocesses."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import httpx
import pytest

from reelforge import __version__
from support import LiveServer, encode_image, free_port, picture, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(home=tmp_path_factory.mktemp("cli-hardening")).start()
    yield live
    live.stop()


def run(*args: str, base_url: str, key: str = "k", **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "REELFORGE_BASE_URL": base_url, "REELFORGE_API_KEY": key, **env}
    return subprocess.run(
        [sys.executable, "-m", "reelforge", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_version() -> None:
    result = run("--version", base_url="http://127.0.0.1:1")
    assert result.returncode == 0
    assert result.stdout.strip() == f"reelforge {__version__}"


def test_connection_refused_names_the_server_and_how_to_start_one() -> None:
    base = f"http://127.0.0.1:{free_port()}"
    result = run("status", "some-id", base_url=base)
    assert result.returncode == 1
    assert f"cannot connect to the API at {base}" in result.stderr
    assert "`reelforge serve`" in result.stderr


def test_download_of_a_failed_generation_says_it_failed_and_why(server, tmp_path) -> None:
    data = bytearray(encode_image(picture((640, 480), seed=4), "PNG"))
    start = data.index(b"IDAT") + 40
    data[start : start + 400] = b"\xff" * 400  # passes the checks at submit, fails to decode
    body = {
        "model": "veo2/image-to-video",
        "prompt": "zoom",
        "image_url": "data:image/png;base64," + base64.b64encode(bytes(data)).decode(),
    }
    job_id = server.create(body).json()["id"]
    assert server.wait(job_id)["status"] == "error"
    result = run(
        "download", job_id, "-o", str(tmp_path / "x.mp4"), base_url=server.url, key=server.key
    )
    assert result.returncode == 1
    assert f"generation {job_id} failed, so it has no video (InvalidImage:" in result.stderr
    assert "reelforge wait" not in result.stderr


def test_status_json_keeps_numbers_as_the_api_sent_them(server) -> None:
    job_id = server.create({"model": "veo2", "prompt": "a kite", "duration": 6}).json()["id"]
    server.wait(job_id)
    result = run("status", job_id, "--json", base_url=server.url, key=server.key)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["video"]["duration"] == 6
    assert '"duration": 6,' in result.stdout or '"duration": 6\n' in result.stdout


def test_models_shows_whole_names_at_120_columns(tmp_path) -> None:
    result = run(
        "models",
        base_url="http://127.0.0.1:1",
        FORCE_COLOR="1",
        COLUMNS="120",
        REELFORGE_HOME=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    for name in ("veo2/image-to-video", "google/veo-3.0-i2v"):
        assert f" {name} " in result.stdout
    assert "…" not in result.stdout


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a socket listening on ``port`` (from /proc/net/tcp)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.rsplit(":", 1)
                if state == "0A" and int(hex_port, 16) == port:
                    found.add(address)
    return found


def test_worker_metrics_listen_on_loopback_unless_told_otherwise(tmp_path) -> None:
    """``--metrics-port`` used to listen on 0.0.0.0, unauthenticated."""
    port = free_port()
    env = {**os.environ, "REELFORGE_HOME": str(tmp_path), "REELFORGE_API_KEYS": "k"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "reelforge", "worker", "--metrics-port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: listening_addresses(port) or worker.poll() is not None, 60, 0.1)
        assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1 only
        assert b"reelforge" in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).content
    finally:
        worker.terminate()
        worker.wait(timeout=60)
