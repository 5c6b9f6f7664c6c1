"""Scaling out on a real PostgreSQL: an API process and separate worker processes.

Worker "machines" are separate processes with their own home and ``REELFORGE_WORKER_NAME``
(so a dead one is detected by its lease, as it would be on another host), sharing the
database and a storage directory.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from support import LiveServer, WorkerProcess

pytestmark = pytest.mark.integration

JOBS = 300


def base_env(postgres_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "REELFORGE_DATABASE_URL": postgres_url,
        "REELFORGE_STORAGE_URL": (tmp_path / "shared-files").resolve().as_uri(),
        "REELFORGE_API_KEYS": "scale-key",
    }


def reelforge(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "reelforge", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def rows(postgres_url: str, sql: str) -> list:
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql)))
    finally:
        engine.dispose()


def wait_until(condition, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout} s")


def test_processes_refuse_an_outdated_schema_until_upgraded(postgres_url, tmp_path) -> None:
    env = {**base_env(postgres_url, tmp_path), "REELFORGE_HOME": str(tmp_path / "h")}
    for command in (["worker"], ["serve", "--port", "1"]):
        refused = reelforge(env, *command)
        assert refused.returncode == 1
        assert "reelforge db upgrade" in refused.stderr
    upgraded = reelforge(env, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "revision" in upgraded.stdout
    assert rows(postgres_url, "SELECT count(*) FROM jobs") == [(0,)]


@pytest.fixture
def cluster_env(postgres_url, tmp_path) -> dict[str, str]:
    env = base_env(postgres_url, tmp_path)
    assert (
        reelforge({**env, "REELFORGE_HOME": str(tmp_path / "admin")}, "db", "upgrade").returncode
        == 0
    )
    return env


def test_hundreds_of_jobs_each_run_exactly_once(cluster_env, postgres_url, tmp_path) -> None:
    log = tmp_path / "executions.log"
    api = LiveServer(home=tmp_path / "api", env={**cluster_env, "REELFORGE_WORKERS": "0"})
    api.keys = ("scale-key",)
    api.start()
    worker_env = {
        **cluster_env,
        "REELFORGE_ENGINE": "quick_engine:create",
        "REELFORGE_TEST_EXECUTION_LOG": str(log),
    }
    workers = [
        WorkerProcess(
            home=tmp_path / f"machine-{n}",
            env={**worker_env, "REELFORGE_WORKER_NAME": f"machine-{n}"},
            concurrency=3,
        ).start()
        for n in range(4)
    ]
    try:
        bodies = [{"model": "veo2", "prompt": f"job {n}", "seed": n} for n in range(JOBS)]
        with ThreadPoolExecutor(8) as pool:
            created = list(pool.map(api.create, bodies))
        assert {response.status_code for response in created} == {200}

        def all_done() -> bool:
            counts = dict(rows(postgres_url, "SELECT status, count(*) FROM jobs GROUP BY 1"))
            return counts.get("completed", 0) + counts.get("error", 0) == JOBS

        wait_until(all_done, timeout=240)
        done = rows(
            postgres_url,
            "SELECT status, attempts, seed, video_key, video_size, worker_id FROM jobs",
        )
        assert Counter(row.status for row in done) == {"completed": JOBS}
        assert {row.attempts for row in done} == {1}
        executions = Counter(int(line.split()[0]) for line in log.read_text().splitlines())
        assert executions == Counter(range(JOBS))  # every job ran, none twice
        pids = {line.split()[2] for line in log.read_text().splitlines()}
        assert len(pids) == len(workers)  # the work was shared out
        videos = list((tmp_path / "shared-files" / "videos").glob("*/output.mp4"))
        assert len(videos) == JOBS
        sizes = {row.video_key: row.video_size for row in done}
        for video in videos:
            key = video.relative_to(tmp_path / "shared-files").as_posix()
            assert sizes[key] == video.stat().st_size
    finally:
        for worker in workers:
            worker.stop()
        api.stop()


def test_a_killed_worker_loses_no_job(cluster_env, postgres_url, tmp_path) -> None:
    lease = 4.0
    env = {
        **cluster_env,
        "REELFORGE_PREVIEW_LATENCY_SECONDS": "3",
        "REELFORGE_LEASE_SECONDS": str(lease),
        "REELFORGE_POLL_SECONDS": "0.5",
    }
    api = LiveServer(home=tmp_path / "api", env={**cluster_env, "REELFORGE_WORKERS": "0"})
    api.keys = ("scale-key",)
    api.start()

    def machine(name: str, **extra: str) -> WorkerProcess:
        return WorkerProcess(
            home=tmp_path / name, env={**env, "REELFORGE_WORKER_NAME": name, **extra}
        )

    # Each machine runs one job at a time; the victim slowly, so it is surely mid-job when killed,
    # however loaded the machine; the survivors are quick.
    victim = machine("machine-a", REELFORGE_PREVIEW_LATENCY_SECONDS="600").start()
    survivors: list[WorkerProcess] = []
    try:
        first = api.create({"model": "veo2", "prompt": "night sky", "seed": 1}).json()["id"]
        wait_until(
            lambda: rows(
                postgres_url,
                f"SELECT 1 FROM jobs WHERE id = '{first}' AND worker_id LIKE 'machine-a:%'",
            ),
            timeout=30,
        )
        # Two more machines: one takes the second job, the other stays idle.
        survivors = [machine("machine-b").start(), machine("machine-c").start()]
        second = api.create({"model": "veo2", "prompt": "forest", "seed": 2}).json()["id"]
        wait_until(lambda: api.get(second).json()["status"] == "generating", timeout=30)
        victim.signal(signal.SIGKILL)
        victim.wait()
        killed_at = time.monotonic()
        wait_until(
            lambda: rows(
                postgres_url,
                f"SELECT 1 FROM jobs WHERE id = '{first}' AND attempts = 2 "
                "AND worker_id NOT LIKE 'machine-a:%'",
            ),
            timeout=lease + 30,
            interval=0.1,
        )
        reclaimed_after = time.monotonic() - killed_at
        print(f"orphaned job reclaimed {reclaimed_after:.1f} s after the kill (lease {lease} s)")
        for job_id in (first, second):
            assert api.wait(job_id, timeout=120)["status"] == "completed"
        # The lease, one polling interval, and slack for a loaded machine.
        assert reclaimed_after < lease + 8
        attempts = dict(rows(postgres_url, "SELECT id, attempts FROM jobs"))
        assert attempts == {first: 2, second: 1}
    finally:
        for worker in survivors:
            worker.stop()
        api.stop()


def test_new_jobs_are_picked_up_at_once_and_sigterm_drains(cluster_env, tmp_path) -> None:
    env = {
        **cluster_env,
        "REELFORGE_POLL_SECONDS": "60",  # without notifications a job would wait a minute
        "REELFORGE_PREVIEW_LATENCY_SECONDS": "3",
        "REELFORGE_DRAIN_SECONDS": "60",
    }
    api = LiveServer(home=tmp_path / "api", env={**cluster_env, "REELFORGE_WORKERS": "0"})
    api.keys = ("scale-key",)
    api.start()
    worker = WorkerProcess(home=tmp_path / "w", env=env).start()
    try:
        # Idle and listening: the worker says so once its notifications are set up.
        wait_until(
            lambda: "reelforge worker running" in worker.log_path.read_text(errors="replace"),
            timeout=30,
        )
        job_id = api.create({"model": "veo2", "prompt": "a quick start", "seed": 1}).json()["id"]
        started = time.monotonic()
        wait_until(
            lambda: api.get(job_id).json()["status"] == "generating", timeout=10, interval=0.05
        )
        picked_up = time.monotonic() - started
        print(f"picked up after {picked_up * 1000:.0f} ms with a 60 s polling interval")
        assert picked_up < 5

        worker.signal(signal.SIGTERM)  # drains: the job finishes, then the process exits
        assert worker.wait(timeout=60) == 0
        assert api.get(job_id).json()["status"] == "completed"
        assert "stopped" in worker.log_path.read_text()
        # Another API replica, with no key configured either, accepts the signed URL.
        replica = LiveServer(home=tmp_path / "api2", env={**cluster_env, "REELFORGE_WORKERS": "0"})
        replica.keys = ("scale-key",)
        replica.start()
        try:
            signed = api.get(job_id).json()["video"]["url"].removeprefix(api.url)
            assert "signature=" in signed
            assert httpx.get(replica.url + signed).status_code == 200
        finally:
            replica.stop()
    finally:
        worker.stop()
        api.stop()


def test_sigterm_without_drain_hands_the_job_back(cluster_env, postgres_url, tmp_path) -> None:
    env = {
        **cluster_env,
        "REELFORGE_PREVIEW_LATENCY_SECONDS": "20",
        "REELFORGE_DRAIN_SECONDS": "0",
    }
    api = LiveServer(home=tmp_path / "api", env={**cluster_env, "REELFORGE_WORKERS": "0"})
    api.keys = ("scale-key",)
    api.start()
    worker = WorkerProcess(home=tmp_path / "w", env=env).start()
    try:
        job_id = api.create({"model": "veo2", "prompt": "long", "seed": 2}).json()["id"]
        wait_until(lambda: api.get(job_id).json()["status"] == "generating", timeout=15)
        worker.signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
        status, attempts, owner = rows(
            postgres_url, f"SELECT status, attempts, worker_id FROM jobs WHERE id = '{job_id}'"
        )[0]
        assert (status, attempts, owner) == ("queued", 0, None)
    finally:
        worker.stop()
        api.stop()
