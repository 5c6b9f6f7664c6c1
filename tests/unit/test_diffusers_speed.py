"""The diffusers engine's speed levers, each shown to take effect on tiny pipelines.

Caches are counted (modules hooked, transformer calls skipped, output changed), a LoRA
made here changes the output and brings its recipe, the compile path runs, and options
that cannot run on this machine stop the worker at start with the reason.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tiny_pipelines
from reelforge.engines import EngineRouter
from reelforge.engines.base import Inputs, JobContext
from reelforge.engines.diffusers import DiffusersEngine, acceleration
from reelforge.engines.diffusers import loading as loading_module
from reelforge.errors import ConfigurationError, ServiceUnavailable
from reelforge.settings import DiffusersModel
from tiny_pipelines import request

pytestmark = pytest.mark.unit

os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORK_AREA = 32 * 32
STEPS = 8
"""Enough steps for every cache to pass its warm-up steps and skip some."""
IMAGE_FAMILIES = frozenset({"wan_i2v", "wan_flf2v", "ltx_i2v"})
CACHE_FAMILIES = (
    "wan_t2v",
    "wan_ti2v",
    "wan_i2v",
    "wan_flf2v",
    "wan_a14b",
    "wan_vace",
    "ltx_t2v",
    "ltx_i2v",
    "ltx2",
    "hunyuan15",
)
"""Every family the engine drives (tests/tiny_pipelines.py BUILDERS, audio aside)."""
THRESHOLDS = {("hunyuan15", "first_block"): 0.5}
"""The tiny random HunyuanVideo 1.5's first block changes its residual by more than the
default 10% at every step, so FBCache never skips it there; a looser threshold shows the
hooks work on that family too (real checkpoints: the GPU probe)."""
CACHES = ("first_block", "taylorseer", "magcache")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("speed-pipelines")
    return {name: tiny_pipelines.saved(name, root) for name in CACHE_FAMILIES}


@pytest.fixture
def make_engine(settings, models):
    engines: list[DiffusersEngine] = []

    def make(name: str = "wan_t2v", load: bool = True, **overrides) -> DiffusersEngine:
        values = {"diffusers_steps": STEPS, "diffusers_model_path": str(models[name])}
        values.update(overrides)
        engine = DiffusersEngine.from_settings(
            settings.model_copy(update=values), work_area=WORK_AREA
        )
        engines.append(engine)
        if load:
            engine.load()
        return engine

    yield make
    for engine in engines:
        engine.close()


def run(engine: DiffusersEngine, name: str = "wan_t2v", **overrides) -> tuple[np.ndarray, dict]:
    inputs = Inputs()
    if name in IMAGE_FAMILIES:
        last = Image.new("RGB", (64, 48), "teal") if name == "wan_flf2v" else None
        inputs = Inputs(image=Image.new("RGB", (64, 48), "orange"), last_frame=last)
    clip = engine.generate(request(**overrides), inputs, JobContext())
    return np.stack(list(clip.frames)), dict(clip.facts)


# -- step caches -----------------------------------------------------------------------------


@pytest.mark.parametrize("cache", CACHES)
@pytest.mark.parametrize("name", CACHE_FAMILIES)
def test_every_cache_hooks_modules_and_skips_calls_on_every_family(
    make_engine, caplog, name, cache
) -> None:
    caplog.set_level(logging.INFO, logger=loading_module.__name__)
    threshold = THRESHOLDS.get((name, cache))
    engine = make_engine(name, diffusers_cache=cache, diffusers_cache_threshold=threshold)
    _, facts = run(engine, name)
    counted = facts["cache"]
    assert counted["name"] == cache
    assert counted["hooked_modules"] > 0
    assert counted["transformer_calls"] >= STEPS
    assert 0 < counted["skipped_calls"] < counted["transformer_calls"]
    logged = [r.getMessage() for r in caplog.records if r.name == loading_module.__name__]
    assert any(f"{counted['skipped_calls']} of " in message for message in logged), logged


def test_the_counts_are_per_job(make_engine) -> None:
    engine = make_engine(diffusers_cache="first_block")
    _, first = run(engine)
    _, second = run(engine)
    assert second["cache"] == first["cache"]


def test_taylorseer_hooks_every_attention_and_feed_forward_of_wan_and_ltx() -> None:
    for build, blocks in (
        (tiny_pipelines.wan_t2v, "blocks"),
        (tiny_pipelines.ltx_t2v, "transformer_blocks"),
    ):
        transformer = build().transformer
        meter = acceleration.enable_cache(transformer, "taylorseer", None, STEPS)
        layers = len(getattr(transformer, blocks))
        assert meter.hooked == 3 * layers  # attn1, attn2 and the feed-forward of each block


def test_a_cache_skips_real_work_so_the_output_changes(make_engine) -> None:
    plain, _ = run(make_engine())
    cached, facts = run(make_engine(diffusers_cache="first_block"))
    assert facts["cache"]["skipped_calls"] > 0
    assert plain.shape == cached.shape
    assert not np.array_equal(plain, cached)


def test_first_block_threshold_skips_by_default_and_is_configurable(make_engine) -> None:
    assert pytest.approx(0.1) == acceleration.FIRST_BLOCK_THRESHOLD
    _, loose = run(make_engine(diffusers_cache="first_block"))
    _, strict = run(make_engine(diffusers_cache="first_block", diffusers_cache_threshold=1e-6))
    assert loose["cache"]["skipped_calls"] > strict["cache"]["skipped_calls"] == 0


def test_a_cache_that_hooks_nothing_fails_the_load(make_engine, monkeypatch) -> None:
    monkeypatch.setattr(acceleration, "TAYLORSEER_PATTERNS", (r"no_such_module",))
    engine = make_engine(diffusers_cache="taylorseer")
    with pytest.raises(ServiceUnavailable, match="hooked no module"):
        run(engine)


def test_block_caches_need_a_head_and_a_tail_block() -> None:
    from diffusers import LTXVideoTransformer3DModel

    one_block = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        num_layers=1,
        caption_channels=16,
    )
    with pytest.raises(ServiceUnavailable, match="at least 2 blocks"):
        acceleration.enable_cache(one_block, "first_block", None, STEPS)


def test_a_per_model_cache_overrides_the_global_one(make_engine, models) -> None:
    entry = DiffusersModel(checkpoint=str(models["wan_t2v"]), cache="taylorseer")
    engine = make_engine(diffusers_cache="first_block", diffusers_models={"veo2": entry})
    _, facts = run(engine)
    assert facts["cache"]["name"] == "taylorseer"


# -- step-distilled LoRA ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def lora_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rank-4 LoRA over the tiny Wan transformer's attention, with non-zero up weights."""
    import torch
    from diffusers import WanPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    transformer = tiny_pipelines.wan_t2v().transformer
    transformer.add_adapter(
        LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"])
    )
    torch.manual_seed(1)
    with torch.no_grad():
        for name, parameter in transformer.named_parameters():
            if "lora_" in name:
                parameter.normal_(0.0, 0.5)
    folder = tmp_path_factory.mktemp("lora")
    WanPipeline.save_lora_weights(
        folder,
        transformer_lora_layers=get_peft_model_state_dict(transformer),
        weight_name="distill_4step.safetensors",
    )
    return folder / "distill_4step.safetensors"


def test_a_step_distilled_lora_changes_the_output_and_brings_its_recipe(
    make_engine, models, lora_file
) -> None:
    base = DiffusersModel(checkpoint=str(models["wan_t2v"]))
    with_lora = DiffusersModel(checkpoint=str(models["wan_t2v"]), lora=str(lora_file))
    plain = make_engine(diffusers_steps=None, diffusers_models={"veo2": base})
    distilled = make_engine(diffusers_steps=None, diffusers_models={"veo2": with_lora})
    without, plain_facts = run(plain)
    frames, facts = run(distilled)
    assert (facts["steps"], facts["guidance_scale"], facts["flow_shift"]) == (4, 1.0, 5.0)
    assert plain_facts["steps"] != 4
    # Same steps and guidance for both: the difference is the LoRA's alone.
    same = DiffusersModel(checkpoint=str(models["wan_t2v"]), steps=4, guidance=1.0, shift=5.0)
    reference, _ = run(make_engine(diffusers_steps=None, diffusers_models={"veo2": same}))
    assert frames.shape == reference.shape == without.shape
    assert not np.array_equal(frames, reference)
    # Fused into the weights: no adapter layer is left to run per step.
    (model,) = distilled.models._models.values()
    transformer = model.pipelines["text"].transformer
    assert not any("lora" in name for name, _ in transformer.named_parameters())


def test_a_table_value_beats_the_lora_recipe(make_engine, models, lora_file) -> None:
    entry = DiffusersModel(checkpoint=str(models["wan_t2v"]), lora=str(lora_file), steps=6)
    _, facts = run(make_engine(diffusers_steps=None, diffusers_models={"veo2": entry}))
    assert (facts["steps"], facts["guidance_scale"]) == (6, 1.0)


def test_a_missing_lora_stops_the_worker_at_start(make_engine, models, tmp_path) -> None:
    entry = DiffusersModel(
        checkpoint=str(models["wan_t2v"]), lora=str(tmp_path / "gone.safetensors")
    )
    engine = make_engine(load=False, diffusers_models={"veo2": entry})
    with pytest.raises(ConfigurationError, match=r"gone\.safetensors does not exist"):
        engine.load()


def test_a_second_lora_needs_a_second_transformer(make_engine, models, lora_file) -> None:
    entry = DiffusersModel(checkpoint=str(models["wan_t2v"]), lora_2=str(lora_file))
    with pytest.raises(ServiceUnavailable, match="one transformer"):
        run(make_engine(diffusers_models={"veo2": entry}))


# -- attention backends, FP8, offload: checked at worker start -------------------------------


@pytest.mark.parametrize(
    ("backend", "reason"),
    [
        ("warp-drive", "not a diffusers attention backend"),
        ("sage", "needs a CUDA GPU"),
        ("_flash_3", "needs a CUDA GPU"),
        ("_native_cudnn", "needs a CUDA GPU"),
        ("flash_hub", "downloads are off"),
    ],
)
def test_an_attention_backend_that_cannot_run_stops_the_start(make_engine, backend, reason) -> None:
    engine = make_engine(load=False, diffusers_attention_backend=backend)
    with pytest.raises(ConfigurationError, match=reason):
        engine.load()


@pytest.mark.parametrize(("backend", "package"), [("sage", "sageattention"), ("_flash_3", "FA3")])
def test_a_backend_whose_package_is_missing_names_it(backend, package) -> None:
    # On a CUDA device the package is what is missing here.
    with pytest.raises(ConfigurationError, match=package):
        acceleration.check_attention_backend(backend, "cuda", allow_download=False)


def test_a_cpu_backend_runs(make_engine) -> None:
    frames, _ = run(make_engine(diffusers_attention_backend="_native_math"))
    assert frames.shape[0] == 24


def test_the_router_starts_the_diffusers_engine_at_worker_start(settings, models) -> None:
    bad = settings.model_copy(
        update={
            "engine": "diffusers",
            "diffusers_model_path": str(models["wan_t2v"]),
            "diffusers_attention_backend": "sage",
        }
    )
    with pytest.raises(ConfigurationError, match="sage needs a CUDA GPU"):
        EngineRouter(bad).start()
    preview = EngineRouter(settings)
    preview.start()  # the preview engine loads on first use, as before
    assert not preview._engines


def test_the_start_loads_only_the_engines_of_the_workers_models(settings, models) -> None:
    routed = settings.model_copy(
        update={
            "model_engines": {"veo2": "diffusers"},
            "diffusers_models": {"veo2": DiffusersModel(checkpoint=str(models["wan_t2v"]))},
            "diffusers_attention_backend": "sage",
        }
    )
    router = EngineRouter(routed)
    router.start(["google/veo-3.0-fast"])  # a worker of preview models: diffusers waits
    assert not router._engines
    with pytest.raises(ConfigurationError, match="sage"):
        router.start(["veo2"])


def test_fp8_needs_a_cuda_gpu_and_quantizes_only_the_transformers(make_engine) -> None:
    engine = make_engine(load=False, diffusers_quantization="fp8")
    with pytest.raises(ConfigurationError, match="fp8 needs a CUDA GPU"):
        engine.load()
    config = acceleration.quantization_config("fp8", ["transformer", "transformer_2"])
    assert sorted(config.quant_mapping) == ["transformer", "transformer_2"]
    for component in config.quant_mapping.values():
        assert component.quant_method == "torchao"
        assert type(component.quant_type).__name__ == "Float8DynamicActivationFloat8WeightConfig"


def test_group_offload_is_ignored_on_the_cpu_with_a_warning(make_engine, caplog) -> None:
    caplog.set_level(logging.WARNING, logger=loading_module.__name__)
    frames, _ = run(make_engine(diffusers_cpu_offload="group"))
    assert frames.shape[0] == 24
    assert "ignored: the device is the CPU" in caplog.text


# -- compile and warm-up ---------------------------------------------------------------------


def test_warm_up_loads_every_checkpoint_before_the_first_job(make_engine) -> None:
    engine = make_engine(diffusers_warmup=True)
    assert engine.models.loads == 1
    run(engine)
    assert engine.models.loads == 1


def test_compile_runs_the_blocks_compiled_after_a_warm_up(make_engine) -> None:
    plain, _ = run(make_engine())
    engine = make_engine(diffusers_compile=True)  # load() compiles and warms up
    (model,) = engine.models._models.values()
    blocks = model.pipelines["text"].transformer.blocks
    assert all(block._compiled_call_impl is not None for block in blocks)
    compiled, _ = run(engine)
    assert compiled.shape == plain.shape
    assert np.abs(compiled.astype(int) - plain.astype(int)).max() <= 2
