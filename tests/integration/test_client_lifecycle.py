"""The SDK's lifecycle methods and the CLI commands over them, against a live server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from reelforge import webhooks
from reelforge.client import AsyncClient, Client, ConflictError, NotFoundError
from support import LiveServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(
        home=tmp_path_factory.mktemp("sdk-lifecycle"),
        env={"REELFORGE_PREVIEW_LATENCY_SECONDS": "2", "REELFORGE_WORKERS": "2"},
    ).start()
    yield live
    live.stop()


@pytest.fixture
def client(server):
    with Client(api_key=server.key, base_url=server.url) as sdk:
        yield sdk


def cli(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REELFORGE_BASE_URL": server.url, "REELFORGE_API_KEY": server.key}
    return subprocess.run(
        [sys.executable, "-m", "reelforge", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_events_follow_a_generation_to_its_end(client) -> None:
    created = client.create("veo2", "a paper lantern rising", duration=5)
    states = list(client.events(created.id))
    assert states[-1].status == "completed" and states[-1].video is not None
    progress = [state.progress for state in states]
    assert progress == sorted(progress) and len(states) > 3


def test_list_pages_cancel_and_delete(client) -> None:
    ids = [client.create("veo2", f"page {index}").id for index in range(3)]
    pages = list(client.list(page_size=2))
    assert len(pages[0].data) == 2 and pages[0].has_more
    listed = [generation.id for page in pages for generation in page.data]
    assert listed[:3] == ids[::-1]
    cancelled = [client.cancel(job_id) for job_id in ids]
    assert all(state.status in ("generating", "error") for state in cancelled)
    for state in (client.get(job_id) for job_id in ids):
        if state.status != "error":
            state = next(s for s in client.events(state.id) if s.is_done)
        assert state.error is not None and state.error.name == "Cancelled"
    with pytest.raises(ConflictError):
        client.cancel(ids[0])
    client.delete(ids[0])
    with pytest.raises(NotFoundError):
        client.get(ids[0])
    only_errors = [g for page in client.list(status="error") for g in page.data]
    assert {g.id for g in only_errors} >= set(ids[1:])


def test_the_async_client_has_the_same_methods(server) -> None:
    async def run() -> tuple[list[str], str]:
        async with AsyncClient(api_key=server.key, base_url=server.url) as sdk:
            created = await sdk.create("veo2", "an async harbour")
            states = [state.status async for state in sdk.events(created.id)]
            pages = [page async for page in sdk.list(page_size=1)]
            await sdk.delete(created.id)
            return states, pages[0].data[0].id

    states, newest = asyncio.run(run())
    assert states[-1] == "completed" and newest


def test_webhook_verify_helper() -> None:
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = json.dumps({"type": "generation.completed", "data": {"id": "x"}})
    now = datetime.now(UTC)
    signature = Webhook(secret).sign("msg_1", now, body)
    headers = {
        "Webhook-Id": "msg_1",
        "Webhook-Timestamp": str(int(now.timestamp())),
        "Webhook-Signature": f"v1,bm90LXRoaXM= {signature}",  # another secret's, then ours
    }
    assert webhooks.verify(headers, body, secret)["data"]["id"] == "x"
    with pytest.raises(webhooks.WebhookVerificationError):
        webhooks.verify(headers, body + " ", secret)


def test_cli_list_watch_cancel_delete(server, client) -> None:
    done = client.create("veo2", "watched from the terminal")
    watched = cli(server, "watch", done.id)
    assert watched.returncode == 0, watched.stderr
    assert "completed: http" in watched.stdout
    running = client.create("veo2", "cancelled from the terminal")
    cancelled = cli(server, "cancel", running.id)
    assert cancelled.returncode == 0 and running.id in cancelled.stdout
    failed = cli(server, "watch", running.id)
    assert failed.returncode == 1 and "Cancelled" in failed.stderr
    again = cli(server, "cancel", running.id)
    assert again.returncode == 1 and "already error" in again.stderr
    listed = cli(server, "list", "--status", "completed", "-n", "5")
    lines = listed.stdout.splitlines()
    assert lines[0].split("\t")[:3] == ["id", "model", "status"]
    assert any(line.startswith(done.id + "\t") for line in lines[1:])
    assert all(line.split("\t")[2] == "completed" for line in lines[1:])
    as_json = cli(server, "list", "--json", "-n", "2").stdout.splitlines()
    assert len(as_json) == 2 and json.loads(as_json[0])["id"]
    deleted = cli(server, "delete", done.id)
    assert deleted.returncode == 0
    gone = cli(server, "delete", done.id)
    assert gone.returncode == 1 and "not found" in gone.stderr.lower()
