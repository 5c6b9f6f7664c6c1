"""Webhooks end to end: a real server, real worker processes, and a real receiver on
loopback that verifies every delivery with the Standard Webhooks reference library."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import openai
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from conftest import fresh_postgres_database
from support import LiveServer, WorkerProcess, wait_until

pytestmark = pytest.mark.integration

FAST_RETRIES = "0.2,0.2,0.2,0.2"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int | None = None


@dataclass
class Receiver:
    """A webhook endpoint: answers ``plan`` statuses in turn (then 200); ``hang_first``
    holds the first request until ``release`` is set."""

    plan: list[int] = field(default_factory=list)
    hang_first: bool = False
    hang_all: bool = False
    active: int = 0
    peak: int = 0
    """Requests being answered at once: now, and the most so far."""
    requests: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    hanging: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        receiver = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                item = Received({k.lower(): v for k, v in self.headers.items()}, body)
                receiver.requests.append(item)
                with lock:
                    receiver.active += 1
                    receiver.peak = max(receiver.peak, receiver.active)
                if receiver.hang_all or (receiver.hang_first and len(receiver.requests) == 1):
                    receiver.hanging.set()
                    receiver.release.wait(60)
                with lock:
                    receiver.active -= 1
                status = receiver.plan.pop(0) if receiver.plan else 200
                try:
                    self.send_response(status)
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                    item.answered = status
                except OSError:
                    pass  # the sender is gone

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks"

    def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def delivered(self) -> list[Received]:
        return [item for item in self.requests if item.answered and item.answered < 300]


@pytest.fixture
def receiver():
    hook = Receiver().start()
    yield hook
    hook.stop()


def cli(home, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "reelforge", *args],
        env={**os.environ, "REELFORGE_HOME": str(home), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(request):
    if request.param == "sqlite":
        yield {}
        return
    with fresh_postgres_database() as url:
        yield {"REELFORGE_DATABASE_URL": url, "REELFORGE_AUTO_MIGRATE": "true"}


@pytest.fixture(scope="module")
def server(database, tmp_path_factory):
    env = {
        **database,
        "REELFORGE_FETCH_ALLOW": "127.0.0.1",
        "REELFORGE_WEBHOOK_RETRY_SCHEDULE": FAST_RETRIES,
        # Longer than any test takes: a hung receiver stays hung (no timeouts, no retries).
        "REELFORGE_WEBHOOK_TIMEOUT_SECONDS": "45",
        "REELFORGE_WORKERS": "2",
    }
    live = LiveServer(home=tmp_path_factory.mktemp("webhooks"), env=env).start()
    key = cli(live.home, "keys", "create", "--name", "hooks", env=database)
    live.db_key = key
    # `keys update` vets a webhook URL with the same policy as the service.
    live.db_env = {**database, "REELFORGE_FETCH_ALLOW": "127.0.0.1"}
    yield live
    live.stop()


def key_id_of(server: LiveServer) -> str:
    listing = cli(server.home, "keys", "list", env=server.db_env)
    row = next(line for line in listing.splitlines() if "hooks" in line)
    return row.split("\t")[0]  # piped tables are tab-separated


def secret_of(server: LiveServer) -> str:
    answer = httpx.get(
        f"{server.url}/v2/webhooks/secret", headers=server.headers(server.db_key), timeout=30
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["secret"]


def create(server: LiveServer, **fields) -> str:
    body = {"model": "veo2", "prompt": "a lantern on a pier", **fields}
    answer = server.create(body, key=server.db_key)
    assert answer.status_code == 200, answer.text
    return answer.json()["id"]


def verify(item: Received, secret: str) -> dict:
    headers = {
        name: item.headers[name]
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    }
    return Webhook(secret).verify(item.body, headers)


def test_a_completed_generation_is_delivered_signed_after_failures(server, receiver) -> None:
    receiver.plan = [500, 503]  # the first two attempts fail
    job_id = create(server, webhook_url=receiver.url)
    wait_until(lambda: receiver.delivered(), timeout=60)
    secret = secret_of(server)
    assert secret.startswith("whsec_")
    assert len(receiver.requests) == 3
    ids = {item.headers["webhook-id"] for item in receiver.requests}
    assert len(ids) == 1 and ids.pop().startswith("msg_")
    event = verify(receiver.delivered()[0], secret)
    assert event["type"] == "generation.completed"
    data = event["data"]
    assert data["id"] == job_id and data["status"] == "completed"
    video = httpx.get(data["video"]["url"])  # signed like the API's own URLs
    assert "/output.mp4?expires=" in data["video"]["url"]
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert data["meta"]["usage"]["credits_used"] > 0
    with pytest.raises(WebhookVerificationError):  # a tampered body fails verification
        verify(Received(receiver.delivered()[0].headers, b'{"type":"x"}'), secret)


def test_failures_are_delivered_as_generation_failed(server, receiver) -> None:
    job_id = create(
        server,
        model="veo2/image-to-video",
        image_url="http://127.0.0.1:9/nothing.png",
        webhook_url=receiver.url,
    )
    wait_until(lambda: receiver.delivered(), timeout=60)
    event = verify(receiver.delivered()[0], secret_of(server))
    assert event["type"] == "generation.failed"
    assert event["data"]["id"] == job_id and event["data"]["error"]["name"] == "ImageFetchError"


def test_the_key_default_webhook_and_410_disabling_it(server, receiver) -> None:
    key_id = key_id_of(server)
    cli(server.home, "keys", "update", key_id, "--webhook-url", receiver.url, env=server.db_env)
    try:
        receiver.plan = [410]
        first = create(server)
        wait_until(lambda: receiver.requests and receiver.requests[0].answered == 410, timeout=60)
        second = create(server)
        server.wait(second, key=server.db_key)
        server.wait(first, key=server.db_key)
        assert len(receiver.requests) == 1, "nothing more goes to a receiver that said 410"
        # Setting the URL again enables it.
        cli(server.home, "keys", "update", key_id, "--webhook-url", receiver.url, env=server.db_env)
        create(server)
        wait_until(lambda: receiver.delivered(), timeout=60)
    finally:
        cli(server.home, "keys", "update", key_id, "--webhook-url", "", env=server.db_env)


def test_videos_made_on_v1_get_openai_thin_events(server, receiver) -> None:
    key_id = key_id_of(server)
    cli(server.home, "keys", "update", key_id, "--webhook-url", receiver.url, env=server.db_env)
    try:
        with openai.OpenAI(
            api_key=server.db_key, base_url=f"{server.url}/v1", max_retries=0
        ) as client:
            video = client.videos.create(prompt="a lantern on a pier", model="veo2")
            wait_until(lambda: receiver.delivered(), timeout=60)
            event = verify(receiver.delivered()[0], secret_of(server))
            assert event["object"] == "event" and event["type"] == "video.completed"
            assert event["id"].startswith("evt_") and isinstance(event["created_at"], int)
            assert event["data"] == {"id": video.id}
            assert client.videos.retrieve(video.id).status == "completed"
    finally:
        cli(server.home, "keys", "update", key_id, "--webhook-url", "", env=server.db_env)


def test_a_slow_receiver_holds_its_share_of_senders_and_delays_no_one_else(server) -> None:
    """A receiver that never answers used to hold the process's only sender for 10 s a
    delivery: a healthy receiver waited up to 34 s. Now it holds at most
    ``REELFORGE_WEBHOOK_ENDPOINT_CONCURRENCY`` (2) senders and the rest deliver at once."""
    slow, healthy = Receiver(hang_all=True).start(), Receiver().start()
    try:
        stuck = [create(server, webhook_url=slow.url) for _ in range(4)]
        job_id = create(server, webhook_url=healthy.url)  # claimed after the four
        server.wait(job_id, key=server.db_key)
        finished = time.monotonic()
        wait_until(lambda: healthy.delivered(), timeout=30)
        delay = time.monotonic() - finished
        assert delay < 3, f"the healthy receiver waited {delay:.1f} s"
        wait_until(lambda: slow.active == 2, timeout=10)
        assert slow.peak == 2 and not slow.delivered(), "held, but never more than 2 at once"
        slow.hang_all = False
        slow.release.set()
        wait_until(
            lambda: (
                {json.loads(item.body)["data"]["id"] for item in slow.delivered()} == set(stuck)
            ),
            timeout=60,
        )
    finally:
        slow.stop()
        healthy.stop()


def test_rotation_signs_with_both_secrets_for_a_day(server, receiver) -> None:
    old = secret_of(server)
    new = cli(
        server.home, "keys", "webhook-secret", key_id_of(server), "--rotate", env=server.db_env
    )
    assert new != old and new.startswith("whsec_")
    create(server, webhook_url=receiver.url)
    wait_until(lambda: receiver.delivered(), timeout=60)
    item = receiver.delivered()[0]
    assert len(item.headers["webhook-signature"].split(" ")) == 2
    assert verify(item, new)["type"] == "generation.completed"
    assert verify(item, old)["type"] == "generation.completed"
    assert secret_of(server) == new


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://169.254.169.254/latest", "not a public internet address"),
        ("ftp://example.com/x", "http(s) URL"),
        ("", "http(s) URL"),
    ],
)
def test_webhook_urls_are_vetted_at_submit(server, url, message) -> None:
    answer = server.create({"model": "veo2", "prompt": "x", "webhook_url": url}, key=server.db_key)
    assert answer.status_code == 400 and message in answer.json()["message"], answer.text


def test_fixed_keys_cannot_ask_for_webhooks(server, receiver) -> None:
    answer = server.create({"model": "veo2", "prompt": "x", "webhook_url": receiver.url})
    assert answer.status_code == 400 and "reelforge keys create" in answer.json()["message"]


def test_a_worker_killed_mid_delivery_does_not_lose_it(database, tmp_path, receiver) -> None:
    """The API runs no workers; a worker process is SIGKILLed while its delivery is in
    flight. A new worker delivers the same message (same webhook-id) exactly once."""
    env = {
        **database,
        "REELFORGE_FETCH_ALLOW": "127.0.0.1",
        "REELFORGE_WEBHOOK_RETRY_SCHEDULE": FAST_RETRIES,
        "REELFORGE_WORKERS": "0",
        "REELFORGE_WORKER_NAME": "crash-test",
    }
    api_server = LiveServer(home=tmp_path / "api", env=env).start()
    workers = []
    try:
        key = cli(api_server.home, "keys", "create", env=database)
        receiver.hang_first = True
        body = {"model": "veo2", "prompt": "delivered once", "webhook_url": receiver.url}
        job_id = api_server.create(body, key=key).json()["id"]
        first = WorkerProcess(home=api_server.home, env=env).start()
        workers.append(first)
        assert receiver.hanging.wait(60), "the first delivery never arrived"
        first.signal(signal.SIGKILL)
        first.wait()
        assert api_server.get(job_id, key=key).json()["status"] == "completed"
        second = WorkerProcess(home=api_server.home, env=env).start()
        workers.append(second)
        wait_until(lambda: receiver.delivered(), timeout=60)
        receiver.release.set()
        ids = [item.headers["webhook-id"] for item in receiver.requests]
        assert len(set(ids)) == 1, ids
        assert len(receiver.delivered()) == 1
        payload = json.loads(receiver.delivered()[0].body)
        assert payload["data"]["id"] == job_id
    finally:
        for worker in workers:
            worker.stop()
        api_server.stop()


def test_a_gemini_webhook_config_is_the_jobs_webhook(server, receiver) -> None:
    """``webhookConfig.uris[0]`` of the Gemini API's form becomes reelforge's own signed
    webhook (its payload is reelforge's generation event, not a Google one)."""
    answer = httpx.post(
        f"{server.url}/v1beta/models/veo-2.0-generate-001:predictLongRunning",
        headers={"x-goog-api-key": server.db_key},
        json={
            "instances": [{"prompt": "a lantern on a pier"}],
            "parameters": {"durationSeconds": 5},
            "webhookConfig": {"uris": [receiver.url]},
        },
    )
    assert answer.status_code == 200, answer.text
    wait_until(lambda: receiver.delivered(), timeout=60)
    event = verify(receiver.delivered()[0], secret_of(server))
    assert event["type"] == "generation.completed"
    job_hex = answer.json()["name"].rsplit("/", 1)[-1]
    assert event["data"]["id"].split(":")[0].replace("-", "") == job_hex
