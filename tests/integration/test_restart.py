"""Durability: a server killed with SIGKILL mid-work finishes every job after restart."""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from support import LiveServer, data_uri, inspect_mp4, picture

pytestmark = pytest.mark.integration


def _submit_mix(server: LiveServer) -> list[str]:
    image = data_uri(picture((640, 480), seed=4))
    bodies = [
        {"model": "veo2", "prompt": "fireworks over a city at night", "seed": 1},
        {"model": "veo2/image-to-video", "prompt": "zoom out", "image_url": image},
        {"model": "google/veo-3.0-i2v", "prompt": "waves", "image_url": image, "duration": 4},
        {"model": "veo2", "prompt": "a forest in the rain", "duration": "6"},
    ]
    ids = []
    for body in bodies:
        response = server.create(body)
        assert response.status_code == 200, response.text
        ids.append(response.json()["id"])
    return ids


def _wait_for_status(server: LiveServer, job_id: str, status: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.get(job_id).json()["status"] == status:
            return
        time.sleep(0.05)
    raise TimeoutError(f"{job_id} never reached {status}")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_jobs_survive_a_killed_server(tmp_path, sig: int) -> None:
    # A lease far longer than the test: recovery must not wait for it to expire.
    env = {"REELFORGE_PREVIEW_LATENCY_SECONDS": "3", "REELFORGE_LEASE_SECONDS": "900"}
    server = LiveServer(home=tmp_path / "home", env=env).start()
    try:
        ids = _submit_mix(server)
        _wait_for_status(server, ids[0], "generating")
        server.kill(sig)
        with pytest.raises(httpx.HTTPError):
            server.get(ids[0])

        server.start()
        states = {job_id: server.get(job_id).json()["status"] for job_id in ids}
        assert set(states.values()) <= {"queued", "generating", "completed"}, states
        for job_id in ids:
            done = server.wait(job_id, timeout=120)
            assert done["status"] == "completed", done
            target = tmp_path / (job_id.split(":")[0] + ".mp4")
            target.write_bytes(httpx.get(done["video"]["url"]).content)
            facts = inspect_mp4(target)
            assert facts.frames == done["video"]["duration"] * 24
            assert target.stat().st_size == done["video"]["file_size"]
    finally:
        server.stop()
