"""Typos that used to pass silently: unknown fields are still accepted (the published
API accepts them) but named, with the closest known one, in ``warnings`` and a header;
an unknown model gets a "did you mean"; ``?id=`` on GET is not a list; ``/health`` of
an API without workers says where they run."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
from starlette.testclient import TestClient

from reelforge import Client
from reelforge.api.app import create_app
from reelforge.api.security import CORS_EXPOSED_HEADERS
from reelforge.settings import Settings

pytestmark = pytest.mark.unit
GENERATIONS = "/v2/video/generations"
KEY = "warn-key-1"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(home=tmp_path_factory.mktemp("warnings"), workers=0, api_keys=KEY)
    with TestClient(create_app(settings), base_url="http://localhost") as test_client:
        yield test_client


def test_an_unknown_field_is_accepted_and_named_with_the_closest(client: TestClient) -> None:
    body = {"model": "veo2", "prompt": "a lighthouse", "aspect_ration": "9:16"}
    answer = client.post(GENERATIONS, json=body, headers=AUTH)
    assert answer.status_code == 200, answer.text
    expected = (
        "'aspect_ration' is not a field of model 'veo2' and was ignored; "
        "did you mean 'aspect_ratio'?"
    )
    assert answer.json()["warnings"] == [expected]
    assert answer.headers["x-reelforge-warning"] == expected
    assert "x-reelforge-warning" in CORS_EXPOSED_HEADERS  # browsers may read it


def test_a_clean_request_has_the_published_shape(client: TestClient) -> None:
    answer = client.post(GENERATIONS, json={"model": "veo2", "prompt": "a kite"}, headers=AUTH)
    assert set(answer.json()) == {"id", "status"}
    assert "x-reelforge-warning" not in answer.headers


def test_many_unknown_fields_are_counted_and_odd_names_not_echoed(client: TestClient) -> None:
    body = {"model": "veo2", "prompt": "x", **{f"extra{i}": i for i in range(7)}, "ü\n": 1}
    answer = client.post(GENERATIONS, json=body, headers=AUTH)
    warnings = answer.json()["warnings"]
    assert len(warnings) == 6 and warnings[-1] == "3 more unknown fields were ignored"
    assert all("\n" not in w for w in warnings)
    answer.headers["x-reelforge-warning"].encode("ascii")


def test_an_unknown_model_gets_a_did_you_mean(client: TestClient) -> None:
    answer = client.post(GENERATIONS, json={"model": "veo-3", "prompt": "x"}, headers=AUTH)
    assert answer.status_code == 400
    assert answer.json()["message"].endswith("received 'veo-3'; did you mean 'google/veo3'?")


def test_id_instead_of_generation_id_is_refused_not_listed(client: TestClient) -> None:
    made = client.post(GENERATIONS, json={"model": "veo2", "prompt": "x"}, headers=AUTH).json()
    answer = client.get(GENERATIONS, params={"id": made["id"]}, headers=AUTH)
    assert answer.status_code == 400
    assert "did you mean 'generation_id'?" in answer.json()["message"]
    # With generation_id, an unknown parameter is ignored and named.
    found = client.get(GENERATIONS, params={"generation_id": made["id"], "wiat": "1"}, headers=AUTH)
    assert found.status_code == 200 and found.json()["id"] == made["id"]
    assert found.headers["x-reelforge-warning"] == (
        "query parameter 'wiat' was ignored; did you mean 'wait'?"
    )
    # A parameter like nothing known (a cache buster) does not break a list.
    listed = client.get(GENERATIONS, params={"_": "123"}, headers=AUTH)
    assert listed.status_code == 200 and "data" in listed.json()


def test_the_sdk_logs_the_servers_warnings(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    def relay(request: httpx.Request) -> httpx.Response:
        answer = client.request(
            request.method, request.url.path, content=request.content, headers=request.headers
        )
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    with (
        caplog.at_level(logging.WARNING, "reelforge.client"),
        Client(KEY, "http://localhost", transport=httpx.MockTransport(relay)) as sdk,
    ):
        created = sdk.create("veo2", "a fox", aspect_ration="9:16")
    assert created.warnings and "aspect_ratio" in created.warnings[0]
    assert any("did you mean 'aspect_ratio'" in r.getMessage() for r in caplog.records)


def test_health_says_where_workers_run(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health["workers"] == 0
    assert (
        health["workers_run"].startswith("elsewhere")
        and "reelforge worker" in (health["workers_run"])
    )
