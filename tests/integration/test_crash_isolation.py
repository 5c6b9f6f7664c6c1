"""Engines that crash or hang never take the API down (``serve``'s supervised workers).

A real ``reelforge serve`` with an engine that segfaults, calls ``os._exit`` or hangs on
request: the API keeps answering, the worker process is restarted, the job is retried or
failed as the lease rules say, and the next job runs. The embedded setup also keeps its
latencies: pick-up and long-poll notice measured over several jobs.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from datetime import datetime

import httpx
import pytest

from support import TESTS_DIR, LiveServer, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    python_path = os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")]))
    live = LiveServer(
        home=tmp_path_factory.mktemp("crashes"),
        env={
            "PYTHONPATH": python_path,
            "REELFORGE_ENGINE": "crash_engine:create",
            "REELFORGE_MAX_ATTEMPTS": "2",
            # Short, for the hang test, yet room for a normal job on a loaded machine (the
            # first job of a restarted worker process also pays its imports).
            "REELFORGE_JOB_TIMEOUT_SECONDS": "4",
            "REELFORGE_JOB_TIMEOUT_GRACE_SECONDS": "0.5",
            "REELFORGE_DRAIN_SECONDS": "0",
        },
    ).start()
    yield live
    live.stop()


def submit(server: LiveServer, prompt: str) -> str:
    response = server.create({"model": "veo2", "prompt": prompt})
    assert response.status_code == 200, response.text
    return response.json()["id"]


class HealthWatch:
    """Polls ``/health`` in the background; every answer must be a quick 200."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.failures: list[str] = []
        self.answers = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                status = httpx.get(f"{self.server.url}/health", timeout=30).status_code
            except httpx.TimeoutException:
                continue  # a very busy machine, not a dead API (a dead one refuses)
            except httpx.HTTPError as error:
                self.failures.append(repr(error))
                continue
            self.answers += 1
            if status != 200:
                self.failures.append(f"HTTP {status}")

    def __enter__(self) -> HealthWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.parametrize("crash", ["segfault", "exit"])
def test_a_crashing_engine_never_takes_the_api_down(server, crash) -> None:
    with HealthWatch(server) as health:
        job_id = submit(server, f"please {crash} now")
        failed = server.wait(job_id, timeout=180)
        after = server.wait(submit(server, "a calm lake"), timeout=180)
    assert health.failures == [] and health.answers > 5
    assert server.process.poll() is None, "the API process died"
    # Each attempt killed the worker process; after two the job is given up.
    assert failed["status"] == "error" and failed["error"]["name"] == "WorkerCrashed"
    assert failed["meta"]["usage"]["credits_used"] == 0
    assert after["status"] == "completed", after  # a restarted worker took the next job
    log = server.log_path.read_text()
    assert "worker process died" in log and "restarting it" in log


def test_a_hung_engine_fails_its_job_and_its_worker_is_recycled(server) -> None:
    began = time.monotonic()
    hung = server.wait(submit(server, "hang forever"), timeout=60)
    took = time.monotonic() - began
    assert hung["status"] == "error" and hung["error"]["name"] == "Timeout", hung
    assert "longer than the 4 s limit" in hung["error"]["message"]
    assert took < 30
    after = server.wait(submit(server, "a calm lake"), timeout=60)
    assert after["status"] == "completed", after
    wait_until(lambda: "asked to be recycled" in server.log_path.read_text(), timeout=30)


def _stamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def test_pickup_and_long_poll_notice_stay_fast(server) -> None:
    """Jobs cross from the API process to the worker process and back in milliseconds."""
    pickups, notices = [], []
    for _ in range(8):
        job_id = submit(server, "a quick clip")
        body: dict = {}
        noticed = time.time()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            response = httpx.get(
                f"{server.url}/v2/video/generations",
                params={"generation_id": job_id, "wait": 10},
                headers=server.headers(),
                timeout=30,
            )
            noticed = time.time()
            body = response.json()
            if body["status"] in ("completed", "error"):
                break
        assert body["status"] == "completed", body
        pickups.append(_stamp(body["started_at"]) - _stamp(body["created_at"]))
        notices.append(noticed - _stamp(body["completed_at"]))
    pickup, notice = statistics.median(pickups), statistics.median(notices)
    print(f"\npick-up p50 {pickup * 1000:.1f} ms, long-poll notice p50 {notice * 1000:.1f} ms")
    assert pickup < 0.05
    assert notice < 0.1
