"""The Google door on a key's limits: the same caps as every door, and ``sampleCount``
all or nothing (in-process: the real app and store, no workers, so jobs stay queued)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from reelforge.api.app import create_app
from reelforge.settings import Settings

pytestmark = pytest.mark.unit
KEY = "google-tier-key"
PREDICT = "/v1beta1/publishers/google/models/veo-3.0-fast-generate-001:predictLongRunning"


@pytest.fixture
def client(tmp_path) -> Iterator[TestClient]:
    settings = Settings(
        home=tmp_path, workers=0, api_keys=KEY, default_max_queued=3, default_rpm=50
    )
    with TestClient(create_app(settings), base_url="http://localhost") as test_client:
        yield test_client


def queued(client: TestClient) -> int:
    listed = client.get(
        "/v1/videos", params={"limit": 100}, headers={"Authorization": f"Bearer {KEY}"}
    )
    return len(listed.json()["data"])


def start(client: TestClient, samples: int):
    return client.post(
        PREDICT,
        json={"instances": [{"prompt": "a kite"}], "parameters": {"sampleCount": samples}},
        headers={"x-goog-api-key": KEY},
    )


def test_samples_count_against_the_keys_cap_all_or_nothing(client: TestClient) -> None:
    assert start(client, 2).status_code == 200
    assert queued(client) == 2
    refused = start(client, 2)  # the second sample would be the key's fourth
    assert refused.status_code == 429
    assert refused.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert "max_queued" in refused.json()["error"]["message"]
    assert queued(client) == 2, "the first sample of the refused operation is gone too"
    assert start(client, 1).status_code == 200
    assert queued(client) == 3


def test_creates_count_against_the_keys_requests_per_minute(client: TestClient) -> None:
    first = start(client, 1)
    assert first.headers["RateLimit-Limit"] == "50"
    assert int(start(client, 1).headers["RateLimit-Remaining"]) < int(
        first.headers["RateLimit-Remaining"]
    )


def test_only_inline_media_makes_a_body_large(client: TestClient) -> None:
    padding = "x" * (80 * 2**10)  # past the 64 KiB limit of bodies without media
    text_only = client.post(
        PREDICT,
        json={"instances": [{"prompt": "a kite", "padding": padding}]},
        headers={"x-goog-api-key": KEY},
    )
    assert text_only.status_code == 413
    assert text_only.json()["error"]["status"] == "INVALID_ARGUMENT"
    with_image = client.post(
        PREDICT,
        json={
            "instances": [{"prompt": "a kite", "image": {"bytesBase64Encoded": "A" * len(padding)}}]
        },
        headers={"x-goog-api-key": KEY},
    )
    # Read whole and judged on its content: not an image, which is a 400 of its own.
    assert with_image.status_code == 400, with_image.text
    assert "instances[0].image" in with_image.json()["error"]["message"]
