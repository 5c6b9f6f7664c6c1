"""What a new operator meets first, driven as subprocesses: a wrong database URL in one
line, what ``serve`` says when it starts, a port in use, Ctrl-C."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import free_port

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
