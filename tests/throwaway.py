"""Throw-away PostgreSQL and Redis servers for the fault-injection suite: each on a free
port in a temporary directory, so a test may stop, start or hang them without touching
the machine's shared servers (which the rest of the suite uses in parallel)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from support import free_port

PG_BIN = Path(os.environ.get("REELFORGE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
START_SECONDS = 30.0


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the ``postgres`` user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


class ThrowawayPostgres:
    """``initdb`` + ``pg_ctl`` on a free port; ``stop`` and ``start`` at will."""

    def __init__(self) -> None:
        # Its own directory under /tmp: pytest's are private to root, and PostgreSQL
        # runs as ``postgres`` when the tests run as root.
        self.root = Path(tempfile.mkdtemp(prefix="reelforge-faults-pg-"))
        self.data = self.root / "pgdata"
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def create(self) -> ThrowawayPostgres:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        subprocess.run(
            _as_postgres(
                [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust"]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        return self.start()

    def start(self) -> ThrowawayPostgres:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            _as_postgres(
                [
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.root / "pg.log"),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    str(int(START_SECONDS)),
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=START_SECONDS + 10,
        )
        return self

    def stop(self) -> None:
        """Fast shutdown: open connections are cut, as in an outage."""
        with contextlib.suppress(subprocess.CalledProcessError):
            subprocess.run(
                _as_postgres(
                    [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]
                ),
                check=True,
                capture_output=True,
                timeout=60,
            )

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class ThrowawayRedis:
    """``redis-server`` on a free port, nothing saved."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def start(self) -> ThrowawayRedis:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(self.address, 1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return self
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
