"""Routes as configured: the README's worked example, and the circuit breaker's states."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from reelforge.engines import EngineRouter
from reelforge.engines.routing import CircuitBreaker, check_provider, route_kinds
from reelforge.errors import ConfigurationError, InvalidRequest
from reelforge.settings import Settings

pytestmark = pytest.mark.unit
README = Path(__file__).resolve().parents[2] / "README.md"


def readme_routing_toml() -> str:
    text = README.read_text()
    section = text[text.index("\n## Routing\n") :]
    return re.search(r"```toml\n(.*?)```", section, re.S).group(1)


@pytest.fixture
def readme_settings(tmp_path, monkeypatch) -> Settings:
    config = tmp_path / "reelforge.toml"
    config.write_text(readme_routing_toml())
    monkeypatch.setenv("REELFORGE_CONFIG", str(config))
    for name in list(os.environ):
        if name.startswith("REELFORGE_") and name != "REELFORGE_CONFIG":
            monkeypatch.delenv(name)
    return Settings(home=tmp_path)


def test_the_readme_example_routes_two_gpu_servers_then_the_aimlapi(readme_settings) -> None:
    router = EngineRouter(readme_settings)
    assert router.route("google/veo3") == ["gpu-a", "gpu-b", "aimlapi"]
    assert router.engine_name("veo2") == "gpu-a+gpu-b"
    assert router.engine_name("google/veo-3.1-t2v") == "preview"  # no route: one engine
    gpu = readme_settings.engines["gpu-a"]
    assert (gpu.kind, gpu.capacity, gpu.base_url) == ("openai-videos", 2, "http://gpu-a:8091")
    assert gpu.extra_fields == {"num_inference_steps": 40, "guidance_scale": 4.0}
    assert route_kinds(readme_settings, "google/veo3") == {
        "gpu-a": "openai-videos",
        "gpu-b": "openai-videos",
        "aimlapi": "aimlapi",
    }


def test_provider_pins_the_kind_of_upstream_or_is_refused(readme_settings) -> None:
    check_provider(readme_settings, "google/veo3", "google")  # the aimlapi engine reaches it
    check_provider(readme_settings, "google/veo3", "auto")
    with pytest.raises(InvalidRequest, match="provider 'fal' is not available") as refused:
        check_provider(
            readme_settings.model_copy(update={"routes": {"google/veo3": ["gpu-a"]}}),
            "google/veo3",
            "fal",
        )
    assert refused.value.field == "provider"
    check_provider(readme_settings, "google/veo-3.1-t2v", "fal")  # no route: a hint


def test_a_route_naming_a_server_without_a_url_stops_start_up(tmp_path) -> None:
    settings = Settings(home=tmp_path, engines={"gpu": {}}, routes={"veo2": ["gpu"]})
    with pytest.raises(ConfigurationError, match=r"engine 'gpu'.*base_url"):
        EngineRouter(settings)


def test_a_route_for_an_unknown_model_stops_start_up(tmp_path) -> None:
    with pytest.raises(ConfigurationError, match="unknown models"):
        EngineRouter(Settings(home=tmp_path, routes={"sora-9": ["preview"]}))


def test_the_breaker_opens_half_opens_for_one_probe_and_closes() -> None:
    now = [0.0]
    breaker = CircuitBreaker("gpu-a", failures=2, cooldown=10.0, clock=lambda: now[0])
    assert breaker.allow() and not breaker.failed()
    assert breaker.failed()  # the second failure in a row opens it
    assert breaker.state == "open" and not breaker.allow()
    now[0] = 10.5
    assert breaker.state == "half_open"
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one at a time
    assert breaker.failed()  # the probe failed: open again, for a new cool-down
    assert breaker.state == "open"
    now[0] = 21.0
    assert breaker.allow()
    breaker.succeeded()
    assert breaker.state == "closed" and breaker.consecutive == 0


def test_a_success_resets_the_count_of_failures() -> None:
    breaker = CircuitBreaker("gpu-a", failures=2, cooldown=10.0)
    breaker.failed()
    breaker.succeeded()
    assert not breaker.failed()
    assert breaker.state == "closed"
