"""Webhook addresses the fetch policy refuses: refused when a key's webhook is set, with
the setting that allows them, and given up at once at delivery instead of retried for
days (SQLite and PostgreSQL, a real receiver on loopback)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from reelforge.jobs import JobStore, KeyStore, NewJob
from reelforge.jobs.models import DeliveryStatus
from reelforge.media.netguard import FetchPolicy
from reelforge.settings import Settings
from reelforge.storage.layout import video_key
from reelforge.storage.local import LocalStorage
from reelforge.worker.webhooks import WebhookDispatcher

pytestmark = pytest.mark.integration


@pytest.fixture
def receiver():
    hits: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hits.append(self.rfile.read(int(self.headers.get("content-length", 0))))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks", hits
    server.shutdown()
    server.server_close()


def finished_job_with_webhook(store: JobStore, owner: str, url: str, storage: LocalStorage) -> str:
    job_id = f"{uuid.uuid4()}:veo2"
    store.create(
        NewJob(
            id=job_id,
            model="veo2",
            owner=owner,
            params={"model": "veo2", "prompt": "a fox"},
            seed=7,
            credits=100,
            video_token=uuid.uuid4().hex,
            webhook_url=url,
        )
    )
    claimed = store.claim("w1", lease_seconds=30, max_attempts=3)
    assert claimed is not None
    key = video_key(claimed.video_token)
    size = storage.put_bytes(key, b"\0" * 64, "video/mp4")
    assert store.complete(job_id, "w1", video_key=key, video_size=size)
    return job_id


def run_once(dispatcher: WebhookDispatcher) -> bool:
    """One dispatcher turn, waited out: its deliveries are sent on sender threads."""
    started = dispatcher.run_once()
    deadline = time.monotonic() + 15
    while dispatcher.in_flight and time.monotonic() < deadline:
        time.sleep(0.02)
    assert dispatcher.in_flight == 0, "a delivery did not finish within 15 s"
    return started


def dispatcher(store: JobStore, keys: KeyStore, tmp_path: Path, policy: FetchPolicy):
    settings = Settings(home=tmp_path / "home", _env_file=None)
    return WebhookDispatcher(
        settings,
        store,
        keys,
        LocalStorage(tmp_path / "files"),
        dispatcher_id="d1",
        stop_event=threading.Event(),
        policy=policy,
    )


def test_a_refused_address_is_given_up_at_once(db_engine, tmp_path, receiver) -> None:
    url, hits = receiver
    store, keys = JobStore(db_engine), KeyStore(db_engine, [])
    key, _ = keys.create("hooks")
    job_id = finished_job_with_webhook(store, key.id, url, LocalStorage(tmp_path / "files"))
    # This worker's policy does not allow loopback (the API's that accepted it did).
    assert run_once(dispatcher(store, keys, tmp_path, FetchPolicy()))
    (delivery,) = store.outbox.for_job(job_id)
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.attempts == 1
    assert "REELFORGE_FETCH_ALLOW" in (delivery.last_error or "")
    assert hits == []
    assert not run_once(dispatcher(store, keys, tmp_path, FetchPolicy()))  # nothing due


def test_an_allowed_address_is_still_delivered(db_engine, tmp_path, receiver) -> None:
    url, hits = receiver
    store, keys = JobStore(db_engine), KeyStore(db_engine, [])
    key, _ = keys.create("hooks")
    job_id = finished_job_with_webhook(store, key.id, url, LocalStorage(tmp_path / "files"))
    assert run_once(dispatcher(store, keys, tmp_path, FetchPolicy(allow=("127.0.0.1",))))
    (delivery,) = store.outbox.for_job(job_id)
    assert delivery.status is DeliveryStatus.DELIVERED and len(hits) == 1


def reelforge(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "REELFORGE_HOME": str(home), **env}
    environment.pop("REELFORGE_FETCH_ALLOW", None)
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "reelforge", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_keys_update_refuses_a_private_webhook_and_names_the_setting(tmp_path) -> None:
    home = tmp_path / "home"
    created = reelforge(home, "keys", "create", "--name", "hooks")
    assert created.returncode == 0, created.stderr
    key_id = created.stderr.split()[1].rstrip(",")
    refused = reelforge(home, "keys", "update", key_id, "--webhook-url", "http://10.9.8.7/hook")
    assert refused.returncode == 1
    assert "10.9.8.7" in refused.stderr and "REELFORGE_FETCH_ALLOW" in refused.stderr
    assert "http://10.9.8.7" not in reelforge(home, "keys", "list").stdout
    # The setting the message names is the one that allows it.
    allowed = reelforge(
        home,
        "keys",
        "update",
        key_id,
        "--webhook-url",
        "http://10.9.8.7/hook",
        REELFORGE_FETCH_ALLOW="10.0.0.0/8",
    )
    assert allowed.returncode == 0, allowed.stderr
    assert "webhook: http://10.9.8.7/hook" in allowed.stdout
    not_http = reelforge(home, "keys", "update", key_id, "--webhook-url", "ftp://example.com/x")
    assert not_http.returncode == 1 and "http(s) URL" in not_http.stderr
