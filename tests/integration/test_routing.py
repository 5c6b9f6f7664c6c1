"""Engine routing by configuration, the model listing, prompt enhancement, reported facts."""

from __future__ import annotations

import os

import httpx
import pytest

from reelforge.engines import EngineRouter
from reelforge.errors import ServiceUnavailable
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
    config.write_text('engine = "diffusers"\n[model_engines]\n"veo2" = "google"\n')
    monkeypatch.setenv("REELFORGE_CONFIG", str(config))
    router = EngineRouter(Settings(home=tmp_path))
    assert router.engine_name("veo2") == "google"
    assert router.engine_name("veo2/image-to-video") == "diffusers"
    monkeypatch.setenv("REELFORGE_MODEL_ENGINES", "veo2=aimlapi")
    assert EngineRouter(Settings(home=tmp_path)).engine_name("veo2") == "aimlapi"


def test_misconfiguration_is_reported(tmp_path) -> None:
    with pytest.raises(ServiceUnavailable, match="unknown models"):
        EngineRouter(Settings(home=tmp_path, model_engines={"veo9": "preview"}))
    router = EngineRouter(Settings(home=tmp_path, engine="nonexistent"))
    with pytest.raises(ServiceUnavailable, match="built-in engines"):
        router.for_model("veo2")
    router = EngineRouter(Settings(home=tmp_path, engine="no_such_module:create"))
    with pytest.raises(ServiceUnavailable, match="could not be loaded"):
        router.for_model("veo2")
