"""Worker processes on PostgreSQL: does a second one double the jobs per minute?"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime

import httpx

from benchmarks.core import HEADERS, Result, Scale, Server, reelforge_server

ADMIN = os.environ.get(
    "REELFORGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@contextlib.contextmanager
def _database() -> Iterator[str]:
    import psycopg

    conninfo = ADMIN.replace("postgresql+psycopg://", "postgresql://")
    name = f"reelforge_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield (
            conninfo.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
            + f"/{name}"
        )
    finally:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _jobs_per_minute(
    api: Server, env: dict[str, str], processes: int, jobs: int, seconds: int
) -> float:
    """Jobs per minute from the first start to the last completion, as the service
    recorded them: worker start-up (imports, connections) is not part of the figure."""
    body = {"model": "veo2", "prompt": "waves on a beach", "duration": seconds}
    logs = [api.home / f"worker-{processes}-{index}.log" for index in range(processes)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "reelforge", "worker", "--concurrency", "1"],
            env={
                **os.environ,
                **env,
                "REELFORGE_WORKER_NAME": f"bench-{processes}-{index}",
                "REELFORGE_HOME": str(api.home / f"w{index}"),
            },
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
        )
        for index, log in enumerate(logs)
    ]
    try:
        deadline = time.monotonic() + 60
        while not all(
            log.exists() and "reelforge worker running" in log.read_text() for log in logs
        ):
            if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
                raise RuntimeError("a benchmark worker did not start")
            time.sleep(0.05)
        with httpx.Client(headers=HEADERS, timeout=60) as client:
            ids = [
                client.post(f"{api.url}/v2/video/generations", json=body).json()["id"]
                for _ in range(jobs)
            ]
            done = []
            for job in ids:
                state = {"status": "queued"}
                while state["status"] not in ("completed", "error"):
                    state = client.get(
                        f"{api.url}/v2/video/generations",
                        params={"generation_id": job, "wait": 30},
                    ).json()
                if state["status"] != "completed":
                    raise RuntimeError(f"a benchmark job failed: {state['error']}")
                done.append(state)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=60)
    first = min(_when(state["started_at"]) for state in done)
    last = max(_when(state["completed_at"]) for state in done)
    return jobs / (last - first) * 60


def _when(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def worker_processes(scale: Scale) -> list[Result]:
    jobs = int(scale.pick(20, 2))
    rounds = int(scale.pick(2, 1))
    seconds = 5  # the shortest veo2 clip
    try:
        database = _database()
        url = database.__enter__()
    except Exception as error:  # no PostgreSQL here
        return [
            Result(
                "1 -> 2 worker processes on PostgreSQL",
                "not run",
                "-",
                None,
                ">= 1.8x jobs/min",
                None,
                f"PostgreSQL unreachable: {type(error).__name__}",
            )
        ]
    try:
        env = {
            "REELFORGE_DATABASE_URL": url,
            "REELFORGE_AUTO_MIGRATE": "true",
            "REELFORGE_API_KEYS": "bench-key",
            "REELFORGE_ENCODER_THREADS": "1",
            "REELFORGE_ENCODER_PRESET": "ultrafast",
        }
        api = reelforge_server(**{**env, "REELFORGE_WORKERS": "0"})
        api.env["REELFORGE_STORAGE_URL"] = (api.home / "files").as_uri()
        env["REELFORGE_STORAGE_URL"] = api.env["REELFORGE_STORAGE_URL"]
        # Alternating rounds, summed: the machine's speed drifts over a minute by about
        # as much as the difference being measured.
        ones, twos = [], []
        with api:
            for _ in range(rounds):
                ones.append(_jobs_per_minute(api, env, 1, jobs, seconds))
                twos.append(_jobs_per_minute(api, env, 2, jobs, seconds))
    finally:
        database.__exit__(None, None, None)
    ceiling = _machine_ceiling(int(scale.pick(4, 1)), seconds, rounds)
    one, two = sum(ones) / rounds, sum(twos) / rounds
    ratio = two / one
    return [
        Result(
            f"1 -> 2 worker processes on PostgreSQL, x264 one thread each "
            f"({jobs} jobs of {seconds} s, {rounds} rounds)",
            f"2 workers {two:.1f} jobs/min",
            f"1 worker {one:.1f} jobs/min",
            ratio,
            ">= 1.8x jobs/min",
            ratio >= 1.8,
            f"the machine's own ceiling: {ceiling:.2f}x (the same render and encode in two "
            "bare processes side by side, no service, database or client)",
        )
    ]


BARE_JOB = """
import sys, tempfile, time
from pathlib import Path
from reelforge.engines.base import GenerationRequest, Inputs, JobContext
from reelforge.engines.preview.engine import PreviewEngine
from reelforge.media.encode import encode_mp4
jobs, seconds = int(sys.argv[1]), int(sys.argv[2])
request = GenerationRequest(model="veo2", prompt="waves on a beach", duration_seconds=seconds,
                            width=1280, height=720, seed=7)
out = Path(tempfile.mkdtemp()) / "bare.mp4"
started = time.perf_counter()
for _ in range(jobs):
    clip = PreviewEngine(render_threads=0).generate(request, Inputs(), JobContext())
    encode_mp4(clip, out, preset="ultrafast", threads=1)
print(jobs / (time.perf_counter() - started))
out.unlink()
"""


def _machine_ceiling(jobs: int, seconds: int, rounds: int) -> float:
    """What two processes doing a worker's work (render and encode, one core each) get
    together against one alone: the most any worker setup can get on this machine."""

    def rate(processes: int) -> float:
        command = [sys.executable, "-c", BARE_JOB, str(jobs), str(seconds)]
        running = [
            subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(processes)
        ]
        return sum(float(process.communicate()[0]) for process in running)

    ones, twos = [], []
    for _ in range(rounds):
        ones.append(rate(1))
        twos.append(rate(2))
    return sum(twos) / sum(ones)
