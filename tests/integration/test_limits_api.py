"""Limits and quotas over HTTP, as a client meets them: 429 and 403 in the published
shape with the IETF rate-limit headers, the SDK's typed errors, Redis shared by two API
processes, the service cap, the account endpoint, retention and the CLI."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import httpx
import pytest

from reelforge.client import (
    Client,
    DownloadError,
    Generation,
    PermissionDeniedError,
    RateLimitError,
)
from support import LiveServer, wait_until

pytestmark = pytest.mark.integration

REDIS_URL = os.environ.get("REELFORGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def cli(home, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reelforge", *args],
        env={**os.environ, "REELFORGE_HOME": str(home), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def fresh_keys(count: int = 2) -> tuple[str, ...]:
    """Keys no earlier run has used: rate-limit counters may outlive a test in Redis."""
    return tuple(f"test-{secrets.token_hex(8)}" for _ in range(count))


def create(server: LiveServer, key: str | None = None) -> httpx.Response:
    return server.create({"model": "veo2", "prompt": "a quiet bay"}, key=key)


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """3 creates and 5 reads a minute per key; jobs are not run (no workers)."""
    live = LiveServer(
        home=tmp_path_factory.mktemp("limited"),
        keys=fresh_keys(),
        env={
            "REELFORGE_DEFAULT_RPM": "3",
            "REELFORGE_DEFAULT_READ_RPM": "5",
            "REELFORGE_WORKERS": "0",
            "REELFORGE_MAX_QUEUED": "50",
        },
    ).start()
    yield live
    live.stop()


def test_over_the_create_rate_is_a_429_with_the_ietf_headers(limited) -> None:
    answers = [create(limited) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["RateLimit-Remaining"] for a in answers[:3]] == ["2", "1", "0"]
    refused = answers[3]
    body = refused.json()
    assert body["message"].startswith("Too Many Requests")
    assert set(body) == {"message", "path", "requestId", "statusCode", "timestamp"}
    assert body["statusCode"] == 429
    assert refused.headers["RateLimit-Limit"] == "3"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert 0 <= int(refused.headers["RateLimit-Reset"]) <= 60
    # Another key has its own budget; reads have theirs.
    assert create(limited, key=limited.keys[1]).status_code == 200
    job_id = answers[0].json()["id"]
    assert limited.get(job_id).headers["RateLimit-Limit"] == "5"


def test_the_sdk_raises_its_typed_errors(limited) -> None:
    key = limited.keys[1]
    with Client(api_key=key, base_url=limited.url, max_retries=0) as client:
        client.create("veo2", "one")
        client.create("veo2", "two")
        with pytest.raises(RateLimitError) as caught:
            client.create("veo2", "three")
    assert caught.value.retry_after and caught.value.status_code == 429


def test_redis_shares_the_limit_between_two_api_processes(tmp_path) -> None:
    keys = fresh_keys(1)
    env = {
        "REELFORGE_DEFAULT_RPM": "4",
        "REELFORGE_WORKERS": "0",
        "REELFORGE_REDIS_URL": REDIS_URL,
    }
    one = LiveServer(home=tmp_path / "shared", keys=keys, env=env).start()
    two = LiveServer(home=tmp_path / "shared", keys=keys, env=env).start()
    try:
        statuses = [create(server).status_code for server in (one, two) * 3]
    finally:
        one.stop()
        two.stop()
    assert statuses.count(200) == 4 and statuses.count(429) == 2, statuses


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    """A server with a key made by the CLI (limits and credits); jobs run."""
    home = tmp_path_factory.mktemp("ledger")
    live = LiveServer(
        home=home,
        env={
            "REELFORGE_ENCODER_PRESET": "ultrafast",
            "REELFORGE_RETENTION_HOURS": "0.0005",  # 1.8 s
            "REELFORGE_RETENTION_SWEEP_SECONDS": "1",
            "REELFORGE_LEASE_SECONDS": "2",
        },
    ).start()
    made = cli(
        home, "keys", "create", "--name", "budget", "--credits", "1100000", "--max-queued", "5"
    )
    assert made.returncode == 0, made.stderr
    live.budget_key = made.stdout.strip()
    yield live
    live.stop()


def test_credits_are_checked_held_and_charged(ledger) -> None:
    key = ledger.budget_key
    first = ledger.wait(create(ledger, key).json()["id"], key=key)  # 5 s of veo2: 525,000
    assert first["meta"]["usage"]["credits_used"] == 525_000
    account = httpx.get(f"{ledger.url}/v2/account", headers=ledger.headers(key)).json()
    assert account["credits"] == {
        "balance": 575_000,
        "reserved": 0,
        "available": 575_000,
        "spent": 525_000,
    }
    assert account["limits"]["max_queued"] == 5 and account["key_id"].startswith("key_")
    second = create(ledger, key)
    assert second.status_code == 200
    refused = create(ledger, key)
    assert refused.status_code == 403
    assert refused.json()["message"].startswith("You've run out of credits")
    with (
        Client(api_key=key, base_url=ledger.url, max_retries=0) as client,
        pytest.raises(PermissionDeniedError, match="run out of credits"),
    ):
        client.create("veo2", "over budget")
    ledger.wait(second.json()["id"], key=key)
    account = httpx.get(f"{ledger.url}/v2/account", headers=ledger.headers(key)).json()
    assert account["credits"]["balance"] == 50_000 and account["credits"]["spent"] == 1_050_000
    assert account["generations"]["completed"] == 2


def test_the_cli_shows_and_changes_limits(ledger) -> None:
    listing = cli(ledger.home, "keys", "list").stdout.splitlines()
    header = listing[0].split("\t")
    row = dict(
        zip(header, next(line for line in listing if "budget" in line).split("\t"), strict=True)
    )
    assert row["max queued/running"] == "5/-"
    key_id = row["id"]
    changed = cli(ledger.home, "keys", "update", key_id, "--rpm", "30", "--credits", "unlimited")
    assert changed.returncode == 0, changed.stderr
    assert "rpm 30" in changed.stdout
    row = dict(
        zip(
            header,
            next(
                line
                for line in cli(ledger.home, "keys", "list").stdout.splitlines()
                if "budget" in line
            ).split("\t"),
            strict=True,
        )
    )
    assert row["credits left"] == "unlimited" and row["rpm create/read"].startswith("30/")
    bad = cli(ledger.home, "keys", "update", key_id, "--rpm", "lots")
    assert bad.returncode == 1 and "whole number" in bad.stderr


def test_retention_deletes_old_videos_and_their_urls_answer_410(ledger) -> None:
    done = ledger.wait(create(ledger).json()["id"])
    assert done["expires_at"] and done["video"]["url"]
    url = done["video"]["url"]
    assert httpx.get(url).status_code in (200, 410)

    def gone() -> bool:
        return httpx.get(url).status_code == 410

    wait_until(gone, timeout=60, interval=0.2)
    answer = httpx.get(url)
    assert "expired" in answer.json()["message"]
    after = ledger.get(done["id"]).json()
    assert after["status"] == "completed" and after["expires_at"]
    assert after["video"] is None and after["video_expired"] is True  # no URL that 410s
    assert done["video_expired"] is False
    # The SDK and the CLI pass the server's explanation on, not "HTTP 410" and a URL.
    with Client(ledger.key, ledger.url) as client, pytest.raises(DownloadError) as caught:
        client.download(Generation.model_validate(done), ledger.home / "late.mp4")
    assert caught.value.status_code == 410 and "expired" in caught.value.message
    assert "signature" not in str(caught.value)
    late = cli(
        ledger.home,
        "download",
        done["id"],
        "-o",
        str(ledger.home / "late.mp4"),
        env={"REELFORGE_BASE_URL": ledger.url, "REELFORGE_API_KEY": ledger.key},
    )
    assert late.returncode == 1 and "expired" in late.stderr and "generate it again" in late.stderr
    files = list((ledger.home / "files" / "videos").glob("*/output.mp4"))
    assert all(done["video"]["url"].split("/")[-2] != path.parent.name for path in files)


def test_the_service_cap_answers_503_with_retry_after(tmp_path) -> None:
    live = LiveServer(
        home=tmp_path / "saturated",
        env={"REELFORGE_MAX_QUEUED": "2", "REELFORGE_WORKERS": "0"},
    ).start()
    try:
        answers = [create(live) for _ in range(3)]
    finally:
        live.stop()
    assert [a.status_code for a in answers] == [200, 200, 503]
    assert int(answers[2].headers["Retry-After"]) >= 1
    assert "saturated" in answers[2].json()["message"]


def test_gc_deletes_by_hand(tmp_path) -> None:
    home = tmp_path / "gc"
    live = LiveServer(home=home, env={"REELFORGE_RETENTION_SWEEP_SECONDS": "86400"}).start()
    try:
        done = live.wait(create(live).json()["id"])
    finally:
        live.stop()
    swept = cli(home, "gc", env={"REELFORGE_RETENTION_HOURS": "0.00001"})
    assert swept.returncode == 0 and "deleted 1 video" in swept.stdout, swept.stdout + swept.stderr
    video = home / "files" / "videos" / done["video"]["url"].split("/")[-2] / "output.mp4"
    assert not video.exists()
