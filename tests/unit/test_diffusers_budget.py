"""The diffusers engine's time budget, on tiny pipelines saved to disk (configs read, no
weights loaded): it grows with what a job makes the GPU do, and a model's own
``timeout_seconds`` wins."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import tiny_pipelines
from reelforge.engines.base import GenerationRequest
from reelforge.engines.diffusers import DiffusersEngine
from reelforge.engines.diffusers.engine import BUDGET_LOAD_SECONDS
from reelforge.settings import Settings

pytestmark = pytest.mark.unit

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def wan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_pipelines.saved("wan_t2v", tmp_path_factory.mktemp("pipelines"))


def budget(settings: Settings, wan: Path, *, seconds: int = 5, **overrides: object) -> float:
    """The budget of a 720p clip, with a global timeout too short to hide the estimate."""
    values = {"diffusers_model_path": str(wan), "job_timeout_seconds": 1.0, **overrides}
    engine = DiffusersEngine(settings.model_copy(update=values))
    request = GenerationRequest(
        model="veo2", prompt="a fox", duration_seconds=seconds, width=1280, height=720, seed=1
    )
    result = engine.time_budget(request)
    assert result is not None
    return result


def test_budget_grows_with_steps(settings, wan) -> None:
    few, many = budget(settings, wan, diffusers_steps=4), budget(settings, wan, diffusers_steps=50)
    assert BUDGET_LOAD_SECONDS < few < many
    # The work past loading is proportional to the steps.
    assert (many - BUDGET_LOAD_SECONDS) == pytest.approx((few - BUDGET_LOAD_SECONDS) * 50 / 4)


def test_budget_grows_with_frames_and_segments(settings, wan) -> None:
    short = budget(settings, wan, seconds=2, diffusers_steps=10)
    long = budget(settings, wan, seconds=8, diffusers_steps=10)
    # 129 native frames instead of 33: about four times the work past loading.
    assert long - BUDGET_LOAD_SECONDS > (short - BUDGET_LOAD_SECONDS) * 3.5
    # The same 8 s clip made as more segments repeats their conditioning frames.
    table = {"veo2": {"checkpoint": str(wan), "max_frames": 33}}
    segmented = budget(
        settings,
        wan,
        seconds=8,
        diffusers_steps=10,
        diffusers_models=table,
        diffusers_model_path=None,
    )
    assert segmented > long


def test_budget_grows_with_offload(settings, wan) -> None:
    modes = ("none", "model", "group", "sequential")
    budgets = [budget(settings, wan, diffusers_steps=40, diffusers_cpu_offload=m) for m in modes]
    assert budgets == sorted(budgets)
    assert len(set(budgets)) == len(budgets)


def test_budget_never_below_the_global_timeout(settings, wan) -> None:
    assert budget(settings, wan, diffusers_steps=1, job_timeout_seconds=50_000.0) == 50_000.0


def test_a_models_timeout_wins(settings, wan) -> None:
    table = {"veo2": {"checkpoint": str(wan), "timeout_seconds": 123.0}}
    assert budget(settings, wan, diffusers_models=table, diffusers_model_path=None) == 123.0


def test_no_budget_without_a_model(settings) -> None:
    engine = DiffusersEngine(settings)
    request = GenerationRequest(
        model="veo2", prompt="a fox", duration_seconds=5, width=1280, height=720, seed=1
    )
    assert engine.time_budget(request) is None
