"""Server extensions used by the SDK: long-poll (``&wait=S``) and ``Idempotency-Key``."""

from __future__ import annotations

import signal
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import httpx
import pytest

from support import LiveServer

pytestmark = pytest.mark.integration

BODY = {"model": "veo2", "prompt": "a paper boat on a river", "duration": 5}
URL = "/v2/video/generations"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(home=tmp_path_factory.mktemp("longpoll")).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def idle_server(tmp_path_factory):
    """No workers: jobs stay queued."""
    live = LiveServer(home=tmp_path_factory.mktemp("idle"), env={"REELFORGE_WORKERS": "0"})
    yield live.start()
    live.stop()


def long_poll(server: LiveServer, job_id: str, wait: float) -> httpx.Response:
    return httpx.get(
        server.url + URL,
        params={"generation_id": job_id, "wait": wait},
        headers=server.headers(),
        timeout=wait + 10,
    )


def test_long_poll_notices_completion_at_once(server: LiveServer) -> None:
    lags = []
    for _ in range(3):
        job_id = server.create(BODY).json()["id"]
        status = "queued"
        while status not in ("completed", "error"):
            response = long_poll(server, job_id, 30)
            received = time.time()
            assert response.headers["x-reelforge-wait"] == "30"
            body = response.json()
            assert body["status"] != status or body["status"] in ("completed", "error")
            status = body["status"]
        assert status == "completed"
        completed = datetime.fromisoformat(body["completed_at"]).timestamp()
        lags.append(received - completed)
    print(f"long-poll lag after completion: {[round(lag * 1000) for lag in lags]} ms")
    # The fallback re-read runs every 0.5 s; an immediate wake-up is far below that.
    assert statistics.median(lags) < 0.25


def test_long_poll_times_out_with_the_unchanged_state(idle_server: LiveServer) -> None:
    job_id = idle_server.create(BODY).json()["id"]
    started = time.monotonic()
    response = long_poll(idle_server, job_id, 1.0)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.json()["status"] == "queued"
    assert 0.9 <= elapsed < 5


@pytest.mark.parametrize("wait", ["31", "-1", "soon"])
def test_invalid_wait_is_400(idle_server: LiveServer, wait: str) -> None:
    job_id = idle_server.create(BODY).json()["id"]
    response = httpx.get(
        idle_server.url + URL,
        params={"generation_id": job_id, "wait": wait},
        headers=idle_server.headers(),
    )
    assert response.status_code == 400
    assert "wait" in response.json()["message"]


def create(server: LiveServer, body: dict, key: str | None) -> httpx.Response:
    headers = server.headers()
    if key is not None:
        headers["Idempotency-Key"] = key
    return httpx.post(server.url + URL, json=body, headers=headers)


def test_idempotent_create(idle_server: LiveServer) -> None:
    first = create(idle_server, BODY, "order-42")
    again = create(idle_server, BODY, "order-42")
    assert first.status_code == again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    other = create(idle_server, BODY, "order-43")
    assert other.json()["id"] != first.json()["id"]
    without = create(idle_server, BODY, None)
    assert without.json()["id"] not in (first.json()["id"], other.json()["id"])


def test_idempotency_key_reused_for_another_request_is_400(idle_server: LiveServer) -> None:
    assert create(idle_server, BODY, "k-1").status_code == 200
    response = create(idle_server, {**BODY, "duration": 6}, "k-1")
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["message"]
    assert create(idle_server, BODY, "x" * 201).status_code == 400


def test_idempotency_keys_are_per_api_key(idle_server: LiveServer) -> None:
    mine = create(idle_server, BODY, "shared-key").json()["id"]
    headers = {**idle_server.headers(idle_server.keys[1]), "Idempotency-Key": "shared-key"}
    theirs = httpx.post(idle_server.url + URL, json=BODY, headers=headers).json()["id"]
    assert mine != theirs


def test_concurrent_retries_create_one_job(idle_server: LiveServer) -> None:
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: create(idle_server, BODY, "burst"), range(16)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["id"] for r in responses}) == 1


def test_every_response_names_reelforge(idle_server: LiveServer) -> None:
    assert httpx.get(idle_server.url + "/health").headers["x-reelforge-version"]
    assert httpx.get(idle_server.url + URL).headers["x-reelforge-version"]


def test_long_polls_of_departed_clients_do_not_hold_the_server(tmp_path) -> None:
    live = LiveServer(home=tmp_path, env={"REELFORGE_WORKERS": "0"}).start()
    try:
        job = live.create({"model": "veo2", "prompt": "never run"}).json()["id"]

        def give_up() -> None:  # waits 0.5 s of the 30 it asked for, then hangs up
            with pytest.raises(httpx.ReadTimeout):
                httpx.get(
                    f"{live.url}/v2/video/generations",
                    params={"generation_id": job, "wait": 30},
                    headers=live.headers(),
                    timeout=httpx.Timeout(5, read=0.5),
                )

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: give_up(), range(8)))
        stopping = time.monotonic()
        live.kill(signal.SIGTERM)  # waits for the process to end
        stopped_after = time.monotonic() - stopping
        print(f"stopped {stopped_after:.1f} s after SIGTERM")
        assert stopped_after < 10  # not the 30 s the departed long-polls asked for
    finally:
        live.stop()
