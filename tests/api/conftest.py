"""The in-process tier: the real app (real store on SQLite, real storage in a temporary
directory) driven through Starlette's TestClient, without a server process or workers.
For request/response behaviour; what needs a real process (signals, slow clients,
streaming over a socket, workers) stays in tests/integration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from reelforge.api.app import create_app
from reelforge.settings import Settings

TIER_KEYS = ("tier-key-1", "tier-key-2")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    home: Path = tmp_path_factory.mktemp("api-tier")
    settings = Settings(home=home, workers=0, api_keys=",".join(TIER_KEYS))
    with TestClient(create_app(settings), base_url="http://localhost") as test_client:
        yield test_client
