"""Fault injection: PostgreSQL stopped and started under a working service.

A throw-away cluster (``initdb`` + ``pg_ctl`` on a free port; never the machine's shared
server) under ``reelforge serve`` with workers and webhooks to receivers that answer,
fail with 500, hang, or are down. During the outage the API answers 503 "unavailable" with
``Retry-After`` and the webhook dispatcher logs its error once, not a traceback a second;
afterwards every job completes exactly once, each healthy receiver gets its delivery,
and the credit ledger matches the jobs to the credit."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from support import LiveServer, free_port, wait_until
from throwaway import ThrowawayPostgres

pytestmark = pytest.mark.faults

FAST_RETRIES = "0.3,0.3,0.3,0.3,0.3,0.3"


class Receiver:
    """Answers ``plan`` statuses in turn, then 200; records the message ids it got. A
    ``hung`` one holds every request until ``stop``."""

    def __init__(self, plan: list[int] | None = None, *, hung: bool = False) -> None:
        self.plan = list(plan or [])
        self.delivered: list[str] = []
        self.requests = 0
        self.released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.requests += 1
                if hung:
                    receiver.released.wait(120)
                    return
                status = receiver.plan.pop(0) if receiver.plan else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()
                if status < 300:
                    receiver.delivered.append(self.headers["webhook-id"])

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def stop(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def postgres() -> Iterator[ThrowawayPostgres]:
    cluster = ThrowawayPostgres().create()
    yield cluster
    cluster.destroy()


def test_a_postgresql_outage_delays_jobs_and_loses_nothing(postgres, tmp_path) -> None:
    env = {
        "REELFORGE_DATABASE_URL": postgres.url,
        "REELFORGE_AUTO_MIGRATE": "true",
        "REELFORGE_WORKERS": "2",
        "REELFORGE_FETCH_ALLOW": "127.0.0.1",
        "REELFORGE_WEBHOOK_RETRY_SCHEDULE": FAST_RETRIES,
        "REELFORGE_DB_TIMEOUT_SECONDS": "2",
        "REELFORGE_WEBHOOK_TIMEOUT_SECONDS": "60",  # the hung receiver stays hung
    }
    api = LiveServer(home=tmp_path, env=env).start()
    healthy, failing, hung = Receiver(), Receiver(plan=[500, 500]), Receiver(hung=True)
    down = f"http://127.0.0.1:{free_port()}/hook"  # nobody listens
    try:
        made = subprocess.run(
            [sys.executable, "-m", "reelforge", "keys", "create", "--credits", "100000000"],
            env={**os.environ, "REELFORGE_HOME": str(tmp_path), **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        key = made.stdout.strip()
        account = f"{api.url}/v2/account"
        before = httpx.get(account, headers=api.headers(key), timeout=30).json()["credits"]
        hooks = [hung.url, healthy.url, failing.url, down, healthy.url, failing.url, healthy.url]
        ids = []
        for n, hook in enumerate(hooks):
            body = {"model": "veo2", "prompt": f"a tide pool {n}", "webhook_url": hook}
            answer = api.create(body, key=key)
            assert answer.status_code == 200, answer.text
            ids.append(answer.json()["id"])

        postgres.stop()
        try:
            refused = api.create({"model": "veo2", "prompt": "during the outage"}, key=key)
            assert refused.status_code == 503, refused.text
            assert "unavailable" in refused.json()["message"]
            assert int(refused.headers["retry-after"]) > 0
            # The dispatcher meets the outage every poll: its error is logged once.
            wait_until(lambda: "webhook dispatcher error" in api.log_path.read_text(), 60, 0.2)
            wait_until(lambda: "worker loop error" in api.log_path.read_text(), 60, 0.2)
            assert api.get(ids[0], key=key).status_code == 503
        finally:
            postgres.start()

        done = [api.wait(job, timeout=240, key=key) for job in ids]
        assert [job["status"] for job in done] == ["completed"] * len(ids), done
        wait_until(lambda: len(healthy.delivered) == 3 and len(failing.delivered) == 2, 60)
        assert len(set(healthy.delivered + failing.delivered)) == 5, "each delivered once"
        assert hung.requests == 1 and not hung.delivered, "held, and holding no one else"
        after = httpx.get(account, headers=api.headers(key), timeout=30).json()["credits"]
        charged = sum(job["meta"]["usage"]["credits_used"] for job in done)
        assert after["reserved"] == 0 and after["spent"] - before["spent"] == charged
        assert before["balance"] - after["balance"] == charged
        listed = httpx.get(
            f"{api.url}/v2/video/generations",
            headers=api.headers(key),
            params={"limit": 100},
            timeout=30,
        ).json()["data"]
        assert sorted(item["id"] for item in listed) == sorted(ids), "none lost or duplicated"
    finally:
        api.stop()
        healthy.stop()
        failing.stop()
        hung.stop()
    logged = api.log_path.read_text()
    assert logged.count("webhook dispatcher error; retrying") == 1, "throttled: once a minute"
