"""Worker processes on PostgreSQL: does a second one double the jobs per minute?"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

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
    body = {"model": "veo2", "prompt": "waves on a beach", "duration": seconds}
    with httpx.Client(headers=HEADERS, timeout=60) as client:
        ids = [
            client.post(f"{api.url}/v2/video/generations", json=body).json()["id"]
            for _ in range(jobs)
        ]
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "reelforge", "worker", "--concurrency", "1"],
                env={
                    **os.environ,
                    **env,
                    "REELFORGE_WORKER_NAME": f"bench-{index}",
                    "REELFORGE_HOME": str(api.home / f"w{index}"),
                },
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for index in range(processes)
        ]
        try:
            started = time.monotonic()
            for job in ids:
                state = {"status": "queued"}
                while state["status"] not in ("completed", "error"):
                    state = client.get(
                        f"{api.url}/v2/video/generations", params={"generation_id": job, "wait": 30}
                    ).json()
            elapsed = time.monotonic() - started
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.wait(timeout=60)
    return jobs / elapsed * 60


def worker_processes(scale: Scale) -> list[Result]:
    jobs = int(scale.pick(8, 2))
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
        with api:
            one = _jobs_per_minute(api, env, 1, jobs, seconds)
            two = _jobs_per_minute(api, env, 2, jobs, seconds)
    finally:
        database.__exit__(None, None, None)
    ratio = two / one
    return [
        Result(
            f"1 -> 2 worker processes on PostgreSQL, x264 one thread each "
            f"({jobs} jobs of {seconds} s)",
            f"2 workers {two:.1f} jobs/min",
            f"1 worker {one:.1f} jobs/min",
            ratio,
            ">= 1.8x jobs/min",
            ratio >= 1.8,
        )
    ]
