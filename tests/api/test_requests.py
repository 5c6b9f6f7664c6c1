"""The in-process tier: request and response behaviour of both front doors, fast.

The real app (real store on SQLite, real storage in a temporary directory) driven through
Starlette's TestClient, without a server process or workers. What needs a real process
(signals, slow clients, streaming over a socket, workers) stays in tests/integration.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from reelforge.api.app import create_app
from reelforge.catalog import MODELS
from reelforge.settings import Settings

pytestmark = pytest.mark.unit
GENERATIONS = "/v2/video/generations"
KEYS = ("tier-key-1", "tier-key-2")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(
        home=tmp_path_factory.mktemp("api-tier"), workers=0, api_keys=",".join(KEYS)
    )
    with TestClient(create_app(settings), base_url="http://localhost") as test_client:
        yield test_client


def auth(key: str = KEYS[0]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def create(client: TestClient, key: str = KEYS[0], **fields: object) -> dict:
    response = client.post(
        GENERATIONS, json={"model": "veo2", "prompt": "a kite", **fields}, headers=auth(key)
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_every_answer_carries_an_id_a_version_and_safe_headers(client: TestClient) -> None:
    response = client.get("/health")
    assert response.headers["x-request-id"] and response.headers["x-reelforge-version"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    page = client.get("/")
    assert "script-src 'self';" in page.headers["content-security-policy"]


@pytest.mark.parametrize("path", [GENERATIONS, "/v1/videos"])
@pytest.mark.parametrize("key", [None, "wrong"])
def test_a_missing_or_wrong_key_is_401_in_each_doors_shape(
    client: TestClient, path: str, key: str | None
) -> None:
    headers = auth(key) if key else {}
    response = client.get(path, headers=headers)
    assert response.status_code == 401
    body = response.json()
    if path.startswith("/v1"):
        assert (
            body["error"]["type"] == "authentication_error"
            and "API key" in body["error"]["message"]
        )
    else:
        assert body["statusCode"] == 401 and body["path"] == path and "API key" in body["message"]


@pytest.mark.parametrize(
    ("model", "fields", "field"),
    [
        ("veo2", {"duration": 9}, "duration"),
        ("veo2", {"aspect_ratio": "4:3"}, "aspect_ratio"),
        ("veo2", {"prompt": ""}, "prompt"),
        ("veo2/image-to-video", {}, "image_url"),
        (
            "google/veo-3.0-i2v",
            {"image_url": "https://example.com/a.png", "resolution": "4K"},
            "resolution",
        ),
        ("google/veo-3.1-t2v", {"duration": 5}, "duration"),
        ("google/veo-3.1-reference-to-video", {"image_urls": []}, "image_urls"),
    ],
)
def test_invalid_bodies_name_their_field(
    client: TestClient, model: str, fields: dict, field: str
) -> None:
    body = {"model": model, "prompt": "a kite", **fields}
    response = client.post(GENERATIONS, json=body, headers=auth())
    assert response.status_code == 400, response.text
    assert field in response.json()["message"]


def test_create_get_list_cancel_delete(client: TestClient) -> None:
    created = create(client, duration=6)
    assert created["status"] == "queued"  # no workers in this tier
    job = created["id"]
    document = client.get(GENERATIONS, params={"generation_id": job}, headers=auth()).json()
    assert document["model"] == "veo2" and document["video"] is None
    listed = client.get(GENERATIONS, params={"limit": 100}, headers=auth()).json()
    assert job in [item["id"] for item in listed["data"]]
    assert set(listed) == {"data", "has_more", "next_cursor"}
    # Another key sees nothing of it.
    assert (
        client.get(GENERATIONS, params={"generation_id": job}, headers=auth(KEYS[1])).status_code
        == 404
    )
    cancelled = client.post(f"{GENERATIONS}/cancel", params={"generation_id": job}, headers=auth())
    assert cancelled.json()["error"]["name"] == "Cancelled"
    assert (
        client.delete(GENERATIONS, params={"generation_id": job}, headers=auth()).status_code == 200
    )
    assert client.get(GENERATIONS, params={"generation_id": job}, headers=auth()).status_code == 404


@pytest.mark.parametrize(
    ("fields", "seconds", "size"),
    [
        ({}, "4", "720x1280"),  # OpenAI's defaults
        ({"seconds": "4", "size": "1280x720"}, "4", "1280x720"),
        ({"model": "sora-2-pro", "seconds": "8", "size": "1792x1024"}, "8", "1920x1080"),
        ({"model": "sora-2-pro", "size": "1024x1792"}, "4", "1080x1920"),
    ],
)
def test_sora_seconds_and_sizes_work_as_sent(
    client: TestClient, fields: dict, seconds: str, size: str
) -> None:
    made = client.post("/v1/videos", json={"prompt": "a kite", **fields}, headers=auth())
    assert made.status_code == 200, made.text
    assert (made.json()["seconds"], made.json()["size"]) == (seconds, size)


def test_twelve_seconds_is_refused_naming_what_is_made(client: TestClient) -> None:
    refused = client.post("/v1/videos", json={"prompt": "x", "seconds": "12"}, headers=auth())
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["param"] == "seconds"
    assert error["message"] == (
        'seconds must be one of "4", "6", "8" for model sora-2 '
        "(made by google/veo-3.1-t2v-fast, whose longest video is 8 s)"
    )


def test_the_google_door_answers_in_googles_shape(client: TestClient) -> None:
    path = "/v1/publishers/google/models/veo-3.0-generate-001:predictLongRunning"
    missing = client.post(path, json={"instances": [{"prompt": "x"}]})
    assert missing.status_code == 401
    assert missing.json()["error"]["status"] == "UNAUTHENTICATED"
    made = client.post(
        path, json={"instances": [{"prompt": "x"}]}, headers={"x-goog-api-key": KEYS[0]}
    )
    assert made.status_code == 200, made.text
    name = made.json()["name"]
    fetch = path.replace(":predictLongRunning", ":fetchPredictOperation")
    queued = client.post(fetch, json={"operationName": name}, headers=auth())
    assert queued.json() == {"name": name, "metadata": {"progressPercent": 0}, "done": False}
    unknown = client.get("/v1beta/nothing-here", headers=auth())
    assert unknown.json()["error"] == {
        "code": 404,
        "message": "Cannot GET /v1beta/nothing-here",
        "status": "NOT_FOUND",
    }
    assert client.get("/v1/videos/video_nope", headers=auth()).json()["error"]["type"] == (
        "invalid_request_error"
    )


def test_models_lists_the_whole_catalogue(client: TestClient) -> None:
    listed = client.get("/v2/models").json()["data"]
    assert [model["id"] for model in listed] == list(MODELS)
    assert all(model["credits_per_second"] > 0 for model in listed)


def test_the_openai_door_validates_and_shows_the_same_job(client: TestClient) -> None:
    bad = client.post("/v1/videos", json={"prompt": "x", "size": "999x999"}, headers=auth())
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "size"
    made = client.post("/v1/videos", json={"prompt": "a kite", "seconds": "8"}, headers=auth())
    assert made.status_code == 200, made.text
    video = made.json()
    assert video["status"] == "queued" and video["model"] == "sora-2" and video["seconds"] == "8"
    hexed = video["id"].removeprefix("video_")
    job = (
        f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"
        ":google/veo-3.1-t2v-fast"
    )
    assert (
        client.get(GENERATIONS, params={"generation_id": job}, headers=auth()).json()["status"]
        == "queued"
    )
    content = client.get(f"/v1/videos/{video['id']}/content", headers=auth())
    assert content.status_code == 400 and "queued" in content.json()["error"]["message"]
    assert client.get("/v1/videos/video_nope", headers=auth()).status_code == 404


def test_failed_authentication_is_throttled_per_client_without_slowing_valid_keys(
    tmp_path,
) -> None:
    """Failed attempts were never throttled, and each cost a database query."""
    settings = Settings(home=tmp_path, workers=0, api_keys=KEYS[0], auth_failures_per_minute=5)
    app = create_app(settings)
    with TestClient(app, base_url="http://localhost", client=("203.0.113.7", 1)) as guesser:
        keys = app.state.services.database.keys
        _, stored_key = keys.create("stored")
        lookups = []
        authenticate = keys.authenticate
        keys.authenticate = lambda secret: lookups.append(secret) or authenticate(secret)
        answers = [
            guesser.get(GENERATIONS, headers=auth(f"guess-{n}")).status_code for n in range(8)
        ]
        assert answers == [401] * 5 + [429] * 3
        assert len(lookups) == 5, "no query once the budget is spent"
        refused = guesser.get("/v1/videos", headers=auth("guess-9"))
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        # A fixed key needs no query: it still works from that address.
        assert guesser.get(GENERATIONS, headers=auth(KEYS[0])).status_code == 200
        with TestClient(app, base_url="http://localhost", client=("198.51.100.2", 1)) as other:
            for _ in range(10):  # valid keys never count against anyone's budget
                assert other.get(GENERATIONS, headers=auth(stored_key)).status_code == 200
            assert other.get(GENERATIONS, headers=auth("typo")).status_code == 401
