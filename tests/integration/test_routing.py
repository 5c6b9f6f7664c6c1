"""Engine routing by configuration, the model listing, prompt enhancement, reported facts."""

from __future__ import annotations

import os

import httpx
import pytest

from reelforge.engines import EngineRouter
from reelforge.errors import ConfigurationError
from reelforge.settings import Settings
from support import TESTS_DIR, LiveServer

pytestmark = pytest.mark.integration

QUICK = "quick_engine:create"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("routing")
    config = home / "reelforge.toml"
    config.write_text(f'engine = "preview"\n[model_engines]\n"google/veo-3.0-i2v" = "{QUICK}"\n')
    python_path = os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")]))
    live = LiveServer(
        home=home,
        env={
            "REELFORGE_CONFIG": str(config),
            "PYTHONPATH": python_path,
            "REELFORGE_TEST_EXECUTION_LOG": str(home / "executions.log"),
        },
    ).start()
    yield live
    live.stop()


def test_health_and_models_show_the_engine_of_each_model(server) -> None:
    health = httpx.get(f"{server.url}/health").json()
    assert health["models"]["veo2"]["engine"] == "preview"
    assert health["models"]["google/veo-3.0-i2v"]["engine"] == QUICK
    listed = {m["id"]: m for m in httpx.get(f"{server.url}/v2/models").json()["data"]}
    assert listed["google/veo-3.0-i2v"]["engine"] == QUICK
    veo3 = listed["google/veo-3.0-i2v"]
    assert veo3["parameters"]["duration"]["enum"] == [4, 6, 8]
    assert veo3["parameters"]["seed"]["type"] == "integer"
    assert veo3["credits_per_second"] > veo3["credits_per_second_without_audio"]


def test_each_model_is_made_by_its_engine(server) -> None:
    from support import data_uri, picture

    text = server.wait(server.create({"model": "veo2", "prompt": "a quiet harbour"}).json()["id"])
    image = data_uri(picture((640, 480)))
    body = {"model": "google/veo-3.0-i2v", "prompt": "waves", "image_url": image}
    custom = server.wait(server.create(body).json()["id"])
    assert (text["engine"], custom["engine"]) == ("preview", "quick")
    assert custom["status"] == "completed"


def test_prompt_used_reports_the_enhancement(server) -> None:
    enhanced = server.wait(server.create({"model": "veo2", "prompt": "a red kite"}).json()["id"])
    assert enhanced["prompt_used"].startswith("a red kite. ")
    assert len(enhanced["prompt_used"]) > len("a red kite. ")
    body = {"model": "veo2", "prompt": "a red kite", "enhance_prompt": False}
    plain = server.wait(server.create(body).json()["id"])
    assert plain["prompt_used"] == "a red kite"


def test_routing_from_environment_overrides_the_file(tmp_path, monkeypatch) -> None:
    config = tmp_path / "reelforge.toml"
    config.write_text(
        'engine = "diffusers"\ndiffusers_model_path = "/models/wan"\n'
        'google_api_key = "g"\naimlapi_key = "a"\n[model_engines]\n"veo2" = "google"\n'
    )
    monkeypatch.setenv("REELFORGE_CONFIG", str(config))
    router = EngineRouter(Settings(home=tmp_path))
    assert router.engine_name("veo2") == "google"
    assert router.engine_name("veo2/image-to-video") == "diffusers"
    monkeypatch.setenv("REELFORGE_MODEL_ENGINES", "veo2=aimlapi")
    assert EngineRouter(Settings(home=tmp_path)).engine_name("veo2") == "aimlapi"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"model_engines": {"veo9": "preview"}}, "unknown models"),
        ({"engine": "nonexistent"}, "built-in engines"),
        ({"engine": "no_such_module:create"}, "could not be loaded"),
        ({"engine": "aimlapi"}, "REELFORGE_AIMLAPI_KEY is not set"),
        ({"engine": "google"}, "REELFORGE_GOOGLE_API_KEY nor REELFORGE_GOOGLE_VERTEX_PROJECT"),
        ({"model_engines": {"veo2": "diffusers"}}, "no checkpoint is configured"),
    ],
)
def test_misconfiguration_is_refused_when_the_router_is_built(tmp_path, settings, message):
    """Before anything runs: a mistake never surfaces as a failed job or a 503 later."""
    with pytest.raises(ConfigurationError, match=message):
        EngineRouter(Settings(home=tmp_path, **settings))
