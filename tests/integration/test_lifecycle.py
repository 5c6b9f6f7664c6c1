"""The generation lifecycle against a real server, on SQLite and on PostgreSQL:
list, cancel (queued and running), delete, live events (SSE) and metrics."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import fresh_postgres_database
from support import LiveServer, wait_until

pytestmark = pytest.mark.integration

METRICS_TOKEN = "scrape-me"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request, tmp_path_factory):
    """Slow preview jobs (3 s each), two at a time, metrics on."""
    env = {
        "REELFORGE_PREVIEW_LATENCY_SECONDS": "3",
        "REELFORGE_WORKERS": "2",
        "REELFORGE_METRICS_TOKEN": METRICS_TOKEN,
    }
    with _database(request.param) as url:
        if url:
            env |= {"REELFORGE_DATABASE_URL": url, "REELFORGE_AUTO_MIGRATE": "true"}
        live = LiveServer(home=tmp_path_factory.mktemp(f"lifecycle-{request.param}"), env=env)
        live.start()
        yield live
        live.stop()


class _database:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._context = fresh_postgres_database() if kind == "postgresql" else None

    def __enter__(self) -> str | None:
        return self._context.__enter__() if self._context else None

    def __exit__(self, *exc: object) -> None:
        if self._context:
            self._context.__exit__(*exc)


def api(server: LiveServer, method: str, path: str = "/v2/video/generations", **kwargs):
    return httpx.request(
        method,
        f"{server.url}{path}",
        headers=server.headers(kwargs.pop("key", None)),
        timeout=30,
        **kwargs,
    )


def submit(server: LiveServer, prompt: str = "a lighthouse", **fields) -> str:
    response = server.create({"model": "veo2", "prompt": prompt, **fields})
    assert response.status_code == 200, response.text
    return response.json()["id"]


def wait_for_status(server: LiveServer, job_id: str, wanted: str, timeout: float = 60) -> dict:
    """Poll until the job is ``wanted``. A long-poll answers when the status differs from
    what it was when the request arrived, so a change just before it would be waited
    past: it is used only for final states, and a passing state is polled for."""
    deadline = time.monotonic() + timeout
    params = {"generation_id": job_id}
    final = wanted in ("completed", "error")
    while time.monotonic() < deadline:
        body = api(server, "GET", params=params).json()
        if body["status"] == wanted:
            return body
        assert body["status"] not in ("completed", "error"), body
        if final:
            params = {"generation_id": job_id, "wait": 5}
        else:
            time.sleep(0.02)
    raise AssertionError(f"{job_id} never became {wanted}")


# -- list ------------------------------------------------------------------------------


def test_list_pages_newest_first_with_filters(server) -> None:
    other_key = server.keys[1]
    mine = [submit(server, f"list {index}", duration=5) for index in range(3)]
    theirs = server.create({"model": "veo2", "prompt": "not yours"}, key=other_key).json()["id"]
    first = api(server, "GET", params={"limit": 2}).json()
    assert [item["id"] for item in first["data"]] == mine[::-1][:2]
    assert first["has_more"] is True and first["next_cursor"]
    second = api(server, "GET", params={"limit": 2, "after": first["next_cursor"]}).json()
    assert second["data"][0]["id"] == mine[0]
    seen = {item["id"] for item in first["data"] + second["data"]}
    assert theirs not in seen
    assert theirs in {item["id"] for item in api(server, "GET", key=other_key).json()["data"]}
    wanted = api(server, "GET", params={"status": ["queued", "generating"], "limit": 100}).json()
    assert all(item["status"] in ("queued", "generating") for item in wanted["data"])
    none = api(server, "GET", params={"model": "google/veo-3.0-i2v"}).json()
    assert none == {"data": [], "has_more": False, "next_cursor": None}
    for params, field in (
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"status": "done"}, "status"),
        ({"after": "not-a-cursor"}, "after"),
    ):
        bad = api(server, "GET", params=params)
        assert bad.status_code == 400 and field in bad.json()["message"], bad.text
    for job_id in mine:
        api(server, "POST", "/v2/video/generations/cancel", params={"generation_id": job_id})


# -- cancel ----------------------------------------------------------------------------


def test_cancel_a_running_job_stops_it_within_two_seconds(server) -> None:
    job_id = submit(server, "a slow sunrise over the sea")
    wait_for_status(server, job_id, "generating")
    answer = api(server, "POST", "/v2/video/generations/cancel", params={"generation_id": job_id})
    assert answer.status_code == 200, answer.text
    requested = datetime.now(UTC)  # the server has recorded the cancel by now
    done = wait_for_status(server, job_id, "error", timeout=10)
    stopped = datetime.fromisoformat(done["completed_at"].replace("Z", "+00:00"))
    stopped_after = (stopped - requested).total_seconds()
    assert stopped_after < 2.0, stopped_after
    assert done["error"] == {"name": "Cancelled", "message": "the generation was cancelled"}
    assert done["meta"]["usage"]["credits_used"] == 0 and done["video"] is None
    again = api(server, "POST", "/v2/video/generations/cancel", params={"generation_id": job_id})
    assert again.status_code == 409 and "already error" in again.json()["message"]


def test_cancel_a_queued_job_means_it_never_starts(server) -> None:
    blockers = [submit(server, f"blocker {index}") for index in range(2)]  # both workers busy
    queued = submit(server, "never to be made")
    answer = api(server, "POST", "/v2/video/generations/cancel", params={"generation_id": queued})
    body = answer.json()
    assert answer.status_code == 200 and body["status"] == "error", body
    assert body["error"]["name"] == "Cancelled" and body["started_at"] is None
    for job_id in blockers:
        api(server, "POST", "/v2/video/generations/cancel", params={"generation_id": job_id})
        wait_for_status(server, job_id, "error")
    assert api(server, "GET", params={"generation_id": queued}).json()["started_at"] is None


def test_cancel_and_delete_answer_404_for_other_keys_and_unknown_ids(server) -> None:
    job_id = submit(server, "private")
    other = server.keys[1]
    for method, path in (
        ("POST", "/v2/video/generations/cancel"),
        ("DELETE", "/v2/video/generations"),
    ):
        assert (
            api(server, method, path, params={"generation_id": job_id}, key=other).status_code
            == 404
        )
        assert api(server, method, path, params={"generation_id": "nope:veo2"}).status_code == 404
    api(server, "DELETE", params={"generation_id": job_id})


# -- delete ----------------------------------------------------------------------------


def test_delete_a_finished_job_removes_record_and_file(server) -> None:
    job_id = submit(server, "short lived")
    done = wait_for_status(server, job_id, "completed")
    video = done["video"]["url"]
    assert httpx.get(video).status_code == 200
    answer = api(server, "DELETE", params={"generation_id": job_id})
    assert answer.json() == {"id": job_id, "deleted": True}
    assert api(server, "GET", params={"generation_id": job_id}).status_code == 404
    assert httpx.get(video).status_code == 404
    assert api(server, "DELETE", params={"generation_id": job_id}).status_code == 404


def test_delete_a_running_job_leaves_nothing_behind(server) -> None:
    job_id = submit(server, "deleted while rendering")
    wait_for_status(server, job_id, "generating")
    assert api(server, "DELETE", params={"generation_id": job_id}).status_code == 200
    assert api(server, "GET", params={"generation_id": job_id}).status_code == 404
    videos = Path(server.home) / "files" / "videos"

    def no_videos_of_running_jobs() -> bool:
        listed = [
            item
            for key in server.keys
            for item in api(server, "GET", params={"limit": 100}, key=key).json()["data"]
        ]
        tokens = {item["video"]["url"].split("/")[-2] for item in listed if item["video"]}
        on_disk = {path.name for path in videos.iterdir()} if videos.exists() else set()
        return on_disk <= tokens

    wait_until(no_videos_of_running_jobs, timeout=15)
    assert "Traceback" not in server.log_path.read_text()


# -- live events -----------------------------------------------------------------------


def read_events(
    server: LiveServer, job_id: str, last_event_id: str | None = None, on_event=None
) -> list:
    headers = server.headers()
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    events, current = [], {}
    with httpx.stream(
        "GET",
        f"{server.url}/v2/video/generations/events",
        params={"generation_id": job_id},
        headers=headers,
        timeout=60,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("id:"):
                current["id"] = line[3:].strip()
            elif line.startswith("data:"):
                current["data"] = json.loads(line[5:].strip())
            elif line == "" and current:
                events.append(current)
                if on_event is not None:
                    on_event(current)
                current = {}
    return events


def test_live_events_follow_a_job_to_the_end_and_resume(server) -> None:
    job_id = submit(server, "a kite rising on the wind")
    events = read_events(server, job_id)
    ids = [int(event["id"]) for event in events]
    states = [event["data"]["status"] for event in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert states[-1] == "completed" and "generating" in states
    progress = [event["data"]["progress"] for event in events]
    assert progress == sorted(progress) and len(events) >= 5
    assert events[-1]["data"]["video"]["url"]
    # A client that saw the final event gets nothing more; one that saw less gets the
    # current document at once.
    assert read_events(server, job_id, last_event_id=events[-1]["id"]) == []
    resumed = read_events(server, job_id, last_event_id=events[0]["id"])
    assert [event["data"]["status"] for event in resumed] == ["completed"]


def test_live_events_of_a_deleted_job_end(server) -> None:
    job_id = submit(server, "to be deleted")
    wait_for_status(server, job_id, "generating")
    first = threading.Event()
    got: list = []
    reader = threading.Thread(
        target=lambda: got.extend(read_events(server, job_id, on_event=lambda _: first.set()))
    )
    reader.start()
    assert first.wait(10), "the stream sent nothing"
    api(server, "DELETE", params={"generation_id": job_id})
    reader.join(30)
    assert not reader.is_alive(), "the stream of a deleted job did not end"
    assert got and all(event["data"]["status"] == "generating" for event in got)


# -- metrics ---------------------------------------------------------------------------


def scrape(server: LiveServer, token: str | None = METRICS_TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{server.url}/metrics", headers=headers, timeout=30)


def test_metrics_are_protected_parsed_and_counted_across_processes(server) -> None:
    assert scrape(server, None).status_code == 401
    assert scrape(server, "wrong").status_code == 401
    job_id = submit(server, "counted")
    wait_for_status(server, job_id, "completed")
    families = {
        family.name: family for family in text_string_to_metric_families(scrape(server).text)
    }
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families.values()
        for sample in family.samples
    }
    # Counted by the worker process, merged by the API process:
    finished = [
        value
        for (name, labels), value in samples.items()
        if name == "reelforge_jobs_finished_total"
        and dict(labels) == {"model": "veo2", "engine": "preview", "status": "completed"}
    ]
    assert finished and finished[0] >= 1
    assert any(name == "reelforge_job_pickup_seconds_count" for name, _ in samples)
    assert any(name == "reelforge_job_generation_seconds_count" for name, _ in samples)
    # Counted by the API process:
    assert any(
        name == "reelforge_http_requests_total"
        and dict(labels).get("route") == "/v2/video/generations"
        for name, labels in samples
    )
    # Read from the database at scrape time:
    assert "reelforge_queue_depth" in families
    assert any(
        name == "reelforge_jobs" and ("status", "completed") in labels for name, labels in samples
    )
