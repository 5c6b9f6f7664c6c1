"""What every benchmark shares: servers in subprocesses, load generators, statistics and
the machine's description."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0


@dataclass
class Result:
    """One row of the table."""

    name: str
    measured: str
    anchor: str
    ratio: float | None
    goal: str
    met: bool | None
    notes: str = ""


@dataclass
class Scale:
    """How big a run is: the full one, or a smoke run that only proves it works."""

    quick: bool

    def pick(self, full: float, quick: float) -> float:
        return quick if self.quick else full


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A server in a subprocess on loopback: ``reelforge serve`` or the anchor app."""

    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    home: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="reelforge-bench-")))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        env = {**os.environ, "REELFORGE_HOME": str(self.home), **self.env}
        log = (self.home / "server.log").open("ab")
        command = [part.replace("{port}", str(self.port)) for part in self.command]
        self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.home / "server.log").read_text()[-3000:])
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"server did not start: {command}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.home, ignore_errors=True)

    def rss_mb(self) -> float:
        """Resident memory of the server process (the API; workers are children)."""
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


BENCH_KEY = "bench-key"


def reelforge_server(**env: str) -> Server:
    """``reelforge serve`` with one benchmark key; ``env`` adds settings."""
    return Server(
        [sys.executable, "-m", "reelforge", "serve", "--port", "{port}"],
        env={"REELFORGE_API_KEYS": BENCH_KEY, "REELFORGE_ENCODER_PRESET": "ultrafast", **env},
    )


def anchor_server() -> Server:
    return Server(
        [sys.executable, "-m", "benchmarks.anchor", "{port}"], env={"PYTHONPATH": str(ROOT)}
    )


HEADERS = {"Authorization": f"Bearer {BENCH_KEY}"}


@dataclass
class Load:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    tool: str


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def load(
    url: str,
    *,
    connections: int,
    seconds: float,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Load:
    """Hammer ``url``: with wrk when installed (it costs the CPU least), else in Python."""
    if shutil.which("wrk") and method == "GET":
        return _wrk(url, connections, seconds, headers or {})
    return asyncio.run(_python_load(url, connections, seconds, method, body, headers or {}))


def _wrk(url: str, connections: int, seconds: float, headers: dict[str, str]) -> Load:
    command = [
        "wrk",
        "-t",
        "1",
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(seconds))}s",
        "--latency",
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _wrk_ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1))
    p99 = _wrk_ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Load(rate, p50, p99, int(errors.group(1)) if errors else 0, "wrk")


def _wrk_ms(text: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


async def _python_load(
    url: str,
    connections: int,
    seconds: float,
    method: str,
    body: bytes | None,
    headers: dict[str, str],
) -> Load:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30, headers=headers) as client:
        deadline = time.monotonic() + seconds

        async def one_connection() -> None:
            nonlocal errors
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    response = await client.request(method, url, content=body)
                    if response.status_code >= 300:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append((time.perf_counter() - started) * 1000)

        began = time.monotonic()
        await asyncio.gather(*(one_connection() for _ in range(connections)))
        elapsed = time.monotonic() - began
    return Load(
        len(latencies) / elapsed,
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
        errors,
        "httpx",
    )


def machine() -> list[str]:
    """The lines that describe where the figures were measured."""
    memory = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1]
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import av
    import fastapi
    import uvicorn

    from reelforge import __version__

    return [
        f"reelforge {__version__}, Python {platform.python_version()}, FastAPI "
        f"{fastapi.__version__}, uvicorn {uvicorn.__version__}, PyAV {av.__version__}",
        f"{os.cpu_count()} CPUs ({cpu}), {int(memory) // 1024 // 1024} GiB RAM, "
        f"{platform.system()} {platform.release()}",
        f"load generator: {'wrk' if shutil.which('wrk') else 'httpx (wrk not installed)'}",
    ]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


@contextlib.contextmanager
def timed() -> Iterator[list[float]]:
    box: list[float] = []
    started = time.perf_counter()
    yield box
    box.append(time.perf_counter() - started)
