"""What a new operator meets first, driven as subprocesses: a wrong database URL in one
line, what ``serve`` says when it starts, a port in use, Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reelforge.runtime import open_database
from reelforge.settings import Settings
from support import TESTS_DIR, LiveServer, free_port, wait_until

pytestmark = pytest.mark.e2e


def reelforge(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reelforge", *args],
        env={**os.environ, "REELFORGE_HOME": str(home), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("command", [["db", "upgrade"], ["serve", "--port", "0"]])
def test_a_database_that_cannot_be_reached_is_one_line(tmp_path, command) -> None:
    port = free_port()
    url = f"postgresql+psycopg://reelforge:hunter2@127.0.0.1:{port}/reelforge"
    result = reelforge(tmp_path, *command, REELFORGE_DATABASE_URL=url)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "REELFORGE_DATABASE_URL" in lines[0]
    assert f"127.0.0.1:{port}" in lines[0]
    assert "Connection refused" in lines[0]  # the server's (here the OS's) own words
    assert "hunter2" not in result.stderr + result.stdout


def test_a_role_the_server_refuses_is_named_in_its_words(tmp_path) -> None:
    url = "postgresql+psycopg://no_such_role_p25@127.0.0.1:5432/postgres"
    result = reelforge(tmp_path, "db", "upgrade", REELFORGE_DATABASE_URL=url)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert 'role "no_such_role_p25" does not exist' in result.stderr


def test_a_port_in_use_stops_serve_before_it_announces_or_starts_a_worker(tmp_path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = reelforge(tmp_path, "serve", "--port", str(port), REELFORGE_LOG_LEVEL="info")
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "REELFORGE_PORT" in result.stderr
    assert "listening" not in result.stdout
    assert "worker process started" not in result.stdout + result.stderr


def test_serve_says_what_it_serves_and_a_second_ctrl_c_hands_jobs_back(tmp_path) -> None:
    home = tmp_path / "home"
    python_path = os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")]))
    live = LiveServer(
        home=home,
        env={
            "PYTHONPATH": python_path,
            "REELFORGE_MODEL_ENGINES": "veo2=crash_engine:create",
            "REELFORGE_DRAIN_SECONDS": "300",
        },
    ).start()
    try:
        banner = live.log_path.read_text()
        assert f"playground: {live.url}/" in banner
        assert "engines: crash_engine:create for veo2; preview for " in banner
        assert "placeholder clips" in banner and "REELFORGE_ENGINE" in banner
        assert "workers: 1 job(s) at a time, in a child process" in banner
        job_id = live.create({"model": "veo2", "prompt": "linger"}).json()["id"]
        wait_until(lambda: live.get(job_id).json()["status"] == "generating", timeout=60)
        assert live.process is not None
        live.process.send_signal(signal.SIGINT)
        wait_until(lambda: "Ctrl-C again hands them back now" in live.log_path.read_text(), 30)
        wait_until(lambda: "stop asked by the serving process" in live.log_path.read_text(), 30)
        # The drain is not silent: every 10 s it says what it waits for.
        wait_until(lambda: "still waiting for the running jobs" in live.log_path.read_text(), 30)
        stopped_at = time.monotonic()
        live.process.send_signal(signal.SIGINT)
        code = live.process.wait(timeout=60)  # far less than the 300 s drain
        assert time.monotonic() - stopped_at < 60
        assert code == 0
    finally:
        live.kill()
    log = live.log_path.read_text()
    assert "SIGTERM: stopping" not in log, log  # it was SIGINT, and serve said so
    assert "Traceback" not in log, log
    assert "Ctrl-C again: handing running generations back now" in log
    database = open_database(Settings(home=home, _env_file=None), auto_migrate=False)
    try:
        job = database.jobs.get(job_id)
        assert job is not None and job.status == "queued"  # handed back, not failed
    finally:
        database.close()
