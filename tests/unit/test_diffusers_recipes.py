"""The official recipes: every value against the official file and line it comes from.

Sources (the commits read):

* Wan2.1: github.com/Wan-Video/Wan2.1 at 9737cba9c1c3c4d04b33fcad41c111989865d315
* Wan2.2: github.com/Wan-Video/Wan2.2 at 42bf4cfaa384bc21833865abc2f9e6c0e67233dc
* LTX-Video: github.com/Lightricks/LTX-Video at 5260738e171955b66c0827f9af7e84d68fd1d919
* LTX-2: github.com/Lightricks/LTX-2 at 400fd31054597515f47125691032c04b1c3ee24e
* HunyuanVideo-1.5: github.com/Tencent-Hunyuan/HunyuanVideo-1.5 at
  60783e704160023913bee78f0b47036d393d4dfa

Then the engine on tiny random-weight pipelines shows each value reaching the pipeline:
the scheduler's shift, guidance_scale_2, the default negative prompt, per-model overrides,
segments for long clips and the refusal where a checkpoint cannot continue a clip.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tiny_pipelines
from reelforge.engines.base import GenerationRequest, Inputs, JobContext
from reelforge.engines.diffusers import DiffusersEngine
from reelforge.engines.diffusers import recipes as r
from reelforge.engines.diffusers.engine import segment_lengths
from reelforge.engines.diffusers.families import configured, detect
from reelforge.errors import EngineError
from reelforge.settings import DiffusersModel, Settings
from tiny_pipelines import request

pytestmark = pytest.mark.unit

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# (recipe, field, official value, "file:line" in the repository named by the recipe)
OFFICIAL = [
    # Wan2.1 generate.py:71-74: 50 steps, 40 when "i2v" is in the task ("flf2v" has no "i2v").
    (r.WAN21_T2V, "steps", 50, "Wan2.1 generate.py:72"),
    (r.WAN21_I2V_720P, "steps", 40, "Wan2.1 generate.py:74"),
    (r.WAN21_I2V_480P, "steps", 40, "Wan2.1 generate.py:74"),
    (r.WAN21_FLF2V, "steps", 50, "Wan2.1 generate.py:72"),
    (r.WAN21_VACE, "steps", 50, "Wan2.1 generate.py:72"),
    # Wan2.1 generate.py:76-81: shift 5.0; 3.0 for i2v at 832*480; 16 for flf2v and vace.
    (r.WAN21_T2V, "shift", 5.0, "Wan2.1 generate.py:77"),
    (r.WAN21_I2V_720P, "shift", 5.0, "Wan2.1 generate.py:77"),
    (r.WAN21_I2V_480P, "shift", 3.0, "Wan2.1 generate.py:79"),
    (r.WAN21_FLF2V, "shift", 16.0, "Wan2.1 generate.py:81"),
    (r.WAN21_VACE, "shift", 16.0, "Wan2.1 generate.py:81"),
    # Wan2.1 generate.py:242-245: --sample_guide_scale default 5.0.
    (r.WAN21_T2V, "guidance", 5.0, "Wan2.1 generate.py:244"),
    (r.WAN21_I2V_720P, "guidance", 5.0, "Wan2.1 generate.py:244"),
    (r.WAN21_FLF2V, "guidance", 5.0, "Wan2.1 generate.py:244"),
    (r.WAN21_VACE, "guidance", 5.0, "Wan2.1 generate.py:244"),
    # Wan2.1 generate.py:84-85 (81 frames), wan/configs/shared_config.py:18 (16 fps).
    (r.WAN21_T2V, "max_frames", 81, "Wan2.1 generate.py:85"),
    (r.WAN21_T2V, "fps", 16, "Wan2.1 wan/configs/shared_config.py:18"),
    # Wan2.2 wan/configs/wan_t2v_A14B.py:34-37.
    (r.WAN22_T2V_A14B, "shift", 12.0, "Wan2.2 wan/configs/wan_t2v_A14B.py:34"),
    (r.WAN22_T2V_A14B, "steps", 40, "Wan2.2 wan/configs/wan_t2v_A14B.py:35"),
    # sample_guide_scale = (3.0, 4.0)  # low noise, high noise; diffusers: guidance_scale
    # drives `transformer` (high noise), guidance_scale_2 `transformer_2` (low noise).
    (r.WAN22_T2V_A14B, "guidance", 4.0, "Wan2.2 wan/configs/wan_t2v_A14B.py:37"),
    (r.WAN22_T2V_A14B, "guidance_2", 3.0, "Wan2.2 wan/configs/wan_t2v_A14B.py:37"),
    (r.WAN22_T2V_A14B, "fps", 16, "Wan2.2 wan/configs/shared_config.py:18"),
    (r.WAN22_T2V_A14B, "max_frames", 81, "Wan2.2 wan/configs/shared_config.py:20"),
    # Wan2.2 wan/configs/wan_i2v_A14B.py:34-37.
    (r.WAN22_I2V_A14B, "shift", 5.0, "Wan2.2 wan/configs/wan_i2v_A14B.py:34"),
    (r.WAN22_I2V_A14B, "steps", 40, "Wan2.2 wan/configs/wan_i2v_A14B.py:35"),
    (r.WAN22_I2V_A14B, "guidance", 3.5, "Wan2.2 wan/configs/wan_i2v_A14B.py:37"),
    (r.WAN22_I2V_A14B, "guidance_2", 3.5, "Wan2.2 wan/configs/wan_i2v_A14B.py:37"),
    # Wan2.2 wan/configs/wan_ti2v_5B.py:32-36.
    (r.WAN22_TI2V_5B, "fps", 24, "Wan2.2 wan/configs/wan_ti2v_5B.py:32"),
    (r.WAN22_TI2V_5B, "shift", 5.0, "Wan2.2 wan/configs/wan_ti2v_5B.py:33"),
    (r.WAN22_TI2V_5B, "steps", 50, "Wan2.2 wan/configs/wan_ti2v_5B.py:34"),
    (r.WAN22_TI2V_5B, "guidance", 5.0, "Wan2.2 wan/configs/wan_ti2v_5B.py:35"),
    (r.WAN22_TI2V_5B, "max_frames", 121, "Wan2.2 wan/configs/wan_ti2v_5B.py:36"),
    # LTX-Video configs/ltxv-2b-0.9.6-dev.yaml:3,7 (also 0.9.1 and 0.9.5: 40 steps, CFG 3).
    (r.LTX_DEV, "guidance", 3.0, "LTX-Video configs/ltxv-2b-0.9.6-dev.yaml:3"),
    (r.LTX_DEV, "steps", 40, "LTX-Video configs/ltxv-2b-0.9.6-dev.yaml:7"),
    # LTX-Video configs/ltxv-2b-0.9.6-distilled.yaml:3,6.
    (r.LTX_DISTILLED, "guidance", 1.0, "LTX-Video configs/ltxv-2b-0.9.6-distilled.yaml:3"),
    (r.LTX_DISTILLED, "steps", 8, "LTX-Video configs/ltxv-2b-0.9.6-distilled.yaml:6"),
    # LTX-Video ltx_video/inference.py:345-346 (frame_rate default 30); README.md:120
    # ("1216 x 704 pixels at 30 FPS"), README.md:281 (frames below 257).
    (r.LTX_DEV, "fps", 30, "LTX-Video ltx_video/inference.py:346"),
    (r.LTX_DISTILLED, "fps", 30, "LTX-Video ltx_video/inference.py:346"),
    (r.LTX_DEV, "max_frames", 257, "LTX-Video README.md:281"),
    # LTX-2 packages/ltx-pipelines/src/ltx_pipelines/utils/constants.py (PipelineParams).
    (r.LTX2, "fps", 24, "LTX-2 ltx_pipelines/utils/constants.py:46"),
    (r.LTX2, "steps", 40, "LTX-2 ltx_pipelines/utils/constants.py:47"),
    (r.LTX2, "guidance", 3.0, "LTX-2 ltx_pipelines/utils/constants.py:51"),
    # HunyuanVideo-1.5 README.md:347-350 ("Optimal Inference Configurations": CFG 6, shift
    # 5 at 480p, 9 for 720p T2V, 7 for 720p I2V, 50 steps); README.md:315 (121 frames);
    # generate.py:48 (written at 24 fps).
    (r.HUNYUAN15_480P, "guidance", 6.0, "HunyuanVideo-1.5 README.md:347"),
    (r.HUNYUAN15_480P, "shift", 5.0, "HunyuanVideo-1.5 README.md:347"),
    (r.HUNYUAN15_480P, "steps", 50, "HunyuanVideo-1.5 README.md:347"),
    (r.HUNYUAN15_720P_T2V, "shift", 9.0, "HunyuanVideo-1.5 README.md:349"),
    (r.HUNYUAN15_720P_T2V, "guidance", 6.0, "HunyuanVideo-1.5 README.md:349"),
    (r.HUNYUAN15_720P_I2V, "shift", 7.0, "HunyuanVideo-1.5 README.md:350"),
    (r.HUNYUAN15_720P_I2V, "steps", 50, "HunyuanVideo-1.5 README.md:350"),
    (r.HUNYUAN15_480P, "max_frames", 121, "HunyuanVideo-1.5 README.md:315"),
    (r.HUNYUAN15_480P, "fps", 24, "HunyuanVideo-1.5 generate.py:48"),
]


@pytest.mark.parametrize(
    ("recipe", "field", "value", "where"),
    OFFICIAL,
    ids=[f"{recipe.name}-{field}" for recipe, field, _, _ in OFFICIAL],
)
def test_recipe_values_are_the_official_ones(recipe, field, value, where) -> None:
    assert getattr(recipe, field) == value, where


def test_negative_prompts_are_the_official_ones() -> None:
    # Wan2.1 and Wan2.2 wan/configs/shared_config.py:19 (identical in both).
    assert r.WAN_NEGATIVE_PROMPT.startswith("色调艳丽，过曝，静态，细节模糊不清，字幕")
    assert r.WAN_NEGATIVE_PROMPT.endswith("三条腿，背景人很多，倒着走")
    assert len(r.WAN_NEGATIVE_PROMPT) == 137
    for recipe in (r.WAN21_T2V, r.WAN21_VACE, r.WAN22_T2V_A14B, r.WAN22_I2V_A14B):
        assert recipe.negative_prompt == r.WAN_NEGATIVE_PROMPT, recipe.name
    # Wan2.1 wan/configs/wan_i2v_14B.py:11: "镜头晃动，" + the shared one.
    assert r.WAN21_I2V_720P.negative_prompt == "镜头晃动，" + r.WAN_NEGATIVE_PROMPT
    assert r.WAN21_I2V_480P.negative_prompt == r.WAN21_I2V_720P.negative_prompt
    # Wan2.1 wan/configs/__init__.py:16-18: FLF2V copies I2V and adds "镜头切换，".
    assert r.WAN21_FLF2V.negative_prompt == "镜头切换，" + r.WAN21_I2V_720P.negative_prompt
    # LTX-Video ltx_video/inference.py:351-352.
    expected = "worst quality, inconsistent motion, blurry, jittery, distorted"
    assert r.LTX_DEV.negative_prompt == r.LTX_DISTILLED.negative_prompt == expected
    # LTX-2 ltx_pipelines/utils/constants.py:186-199 (DEFAULT_NEGATIVE_PROMPT).
    assert r.LTX2.negative_prompt.startswith("has_subtitles, has_blurbox, transition from black")
    assert r.LTX2.negative_prompt.endswith("stylized filters, or AI artifacts.")
    assert len(r.LTX2.negative_prompt) == 1171
    # Its audio guidance, constants.py:61 (audio_guider_params cfg_scale=7.0).
    assert dict(r.LTX2.call_args) == {"audio_guidance_scale": 7.0}


def test_ltx_distilled_schedule_and_decode_arguments() -> None:
    # configs/ltxv-2b-0.9.8-distilled.yaml:17 (first pass) and :24 (its last timestep),
    # in diffusers' 0-1000 scale; decode_timestep / decode_noise_scale at :6-7.
    first_pass = [1.0000, 0.9937, 0.9875, 0.9812, 0.9750, 0.9094, 0.7250]
    assert list(r.LTX_DISTILLED_TIMESTEPS) == pytest.approx(
        [t * 1000 for t in first_pass] + [421.9]
    )
    assert len(r.LTX_DISTILLED_TIMESTEPS) == r.LTX_DISTILLED.steps
    for recipe in (r.LTX_DEV, r.LTX_DISTILLED):
        assert dict(recipe.call_args) == {"decode_timestep": 0.05, "decode_noise_scale": 0.025}


# -- which recipe a checkpoint gets, from its configuration --------------------------------

WAN_14B = {"num_attention_heads": 40, "attention_head_dim": 128}
CONFIGS = {
    "Wan2.1-T2V-1.3B-Diffusers": (
        {"_class_name": "WanPipeline"},
        {
            "in_channels": 16,
            "out_channels": 16,
            "num_attention_heads": 12,
            "attention_head_dim": 128,
        },
    ),
    "Wan2.1-T2V-14B-Diffusers": (
        {"_class_name": "WanPipeline"},
        {"in_channels": 16, "out_channels": 16, **WAN_14B},
    ),
    "Wan2.1-I2V-14B-480P-Diffusers": (
        {"_class_name": "WanImageToVideoPipeline"},
        {"in_channels": 36, "out_channels": 16, **WAN_14B},
    ),
    "Wan2.1-I2V-14B-720P-Diffusers": (
        {"_class_name": "WanImageToVideoPipeline"},
        {"in_channels": 36, "out_channels": 16, **WAN_14B},
    ),
    "Wan2.1-FLF2V-14B-720P-diffusers": (
        {"_class_name": "WanImageToVideoPipeline"},
        {"in_channels": 36, "out_channels": 16, "pos_embed_seq_len": 514, **WAN_14B},
    ),
    "Wan2.2-T2V-A14B-Diffusers": (
        {"_class_name": "WanPipeline", "transformer_2": ["diffusers", "WanTransformer3DModel"]},
        {"in_channels": 16, "out_channels": 16, **WAN_14B},
    ),
    "Wan2.2-I2V-A14B-Diffusers": (
        {
            "_class_name": "WanImageToVideoPipeline",
            "transformer_2": ["diffusers", "WanTransformer3DModel"],
        },
        {"in_channels": 36, "out_channels": 16, **WAN_14B},
    ),
    "Wan2.2-TI2V-5B-Diffusers": (
        {"_class_name": "WanPipeline", "expand_timesteps": True},
        {
            "in_channels": 48,
            "out_channels": 48,
            "num_attention_heads": 24,
            "attention_head_dim": 128,
        },
    ),
    "HunyuanVideo-1.5-480p_t2v": (
        {"_class_name": "HunyuanVideo15Pipeline"},
        {"task_type": "t2v", "target_size": 640},
    ),
    "HunyuanVideo-1.5-720p_t2v": (
        {"_class_name": "HunyuanVideo15Pipeline"},
        {"task_type": "t2v", "target_size": 960},
    ),
    "HunyuanVideo-1.5-720p_i2v": (
        {"_class_name": "HunyuanVideo15ImageToVideoPipeline"},
        {"task_type": "i2v", "target_size": 960},
    ),
    "LTX-2": ({"_class_name": "LTX2Pipeline"}, {"in_channels": 128}),
    "Wan2.1-VACE-14B-diffusers": ({"_class_name": "WanVACEPipeline"}, dict(WAN_14B)),
    "LTX-Video-0.9.5": ({"_class_name": "LTXPipeline"}, {"in_channels": 128}),
    "LTX-Video-0.9.7-distilled": ({"_class_name": "LTXConditionPipeline"}, {"in_channels": 128}),
}


@pytest.mark.parametrize(
    ("label", "recipe", "resolution"),
    [
        ("Wan2.1-T2V-1.3B-Diffusers", r.WAN21_T2V, "480p"),  # a 1536-wide transformer
        ("Wan2.1-T2V-14B-Diffusers", r.WAN21_T2V, "720p"),
        ("Wan2.1-I2V-14B-480P-Diffusers", r.WAN21_I2V_480P, "480p"),
        ("Wan2.1-I2V-14B-720P-Diffusers", r.WAN21_I2V_720P, "720p"),
        ("Wan2.1-FLF2V-14B-720P-diffusers", r.WAN21_FLF2V, "720p"),
        ("Wan2.2-T2V-A14B-Diffusers", r.WAN22_T2V_A14B, "720p"),
        ("Wan2.2-I2V-A14B-Diffusers", r.WAN22_I2V_A14B, "720p"),
        ("Wan2.2-TI2V-5B-Diffusers", r.WAN22_TI2V_5B, "720p"),
        ("HunyuanVideo-1.5-480p_t2v", r.HUNYUAN15_480P, "480p"),
        ("HunyuanVideo-1.5-720p_t2v", r.HUNYUAN15_720P_T2V, "720p"),
        ("HunyuanVideo-1.5-720p_i2v", r.HUNYUAN15_720P_I2V, "720p"),
        ("LTX-2", r.LTX2, "720p"),
        ("Wan2.1-VACE-14B-diffusers", r.WAN21_VACE, "720p"),
        ("LTX-Video-0.9.5", r.LTX_DEV, "720p"),
        ("LTX-Video-0.9.7-distilled", r.LTX_DISTILLED, "720p"),
    ],
)
def test_each_published_checkpoint_gets_its_recipe(label, recipe, resolution) -> None:
    index, transformer = CONFIGS[label]
    info = detect(f"/models/{label}", label, index, transformer)
    assert (info.recipe, info.resolution) == (recipe, resolution)


def test_configuration_names_resolution_and_distillation_for_renamed_copies() -> None:
    index, transformer = CONFIGS["Wan2.1-I2V-14B-720P-Diffusers"]
    info = detect("/models/i2v", "i2v", index, transformer, resolution="480p")
    assert (info.recipe, info.sizes[0]) == (r.WAN21_I2V_480P, (832, 480))
    assert configured(info, "720p", None).recipe == r.WAN21_I2V_720P
    index, transformer = CONFIGS["LTX-Video-0.9.5"]
    plain = detect("/models/ltx", "ltx", index, transformer)
    assert plain.recipe == r.LTX_DEV
    assert configured(plain, None, True).recipe == r.LTX_DISTILLED


# -- configuration over the recipe ----------------------------------------------------------


def test_precedence_model_table_then_lora_then_global_then_recipe() -> None:
    settings = Settings(diffusers_steps=20, diffusers_guidance_scale=2.0)
    plain = r.resolve(r.WAN22_T2V_A14B, None, Settings())
    assert (plain.steps, plain.guidance, plain.guidance_2, plain.shift) == (40, 4.0, 3.0, 12.0)
    globally = r.resolve(r.WAN22_T2V_A14B, None, settings)
    # A global guidance applies to both experts.
    assert (globally.steps, globally.guidance, globally.guidance_2) == (20, 2.0, 2.0)
    lora = {"steps": 4, "guidance": 1.0, "shift": 5.0}
    with_lora = r.resolve(r.WAN22_T2V_A14B, None, settings, lora)
    assert (with_lora.steps, with_lora.guidance, with_lora.shift) == (4, 1.0, 5.0)
    table = DiffusersModel(checkpoint="/m", steps=6, guidance_2=1.5, shift=8.0, fps=24)
    own = r.resolve(r.WAN22_T2V_A14B, table, settings, lora)
    assert (own.steps, own.guidance, own.guidance_2, own.shift, own.fps) == (6, 1.0, 1.5, 8.0, 24)


def test_distilled_timesteps_only_with_their_step_count() -> None:
    assert r.resolve(r.LTX_DISTILLED, None, Settings()).timesteps == r.LTX_DISTILLED_TIMESTEPS
    table = DiffusersModel(checkpoint="/m", steps=12)
    assert r.resolve(r.LTX_DISTILLED, table, Settings()).timesteps is None


def test_model_tables_come_from_toml_and_environment(tmp_path, monkeypatch) -> None:
    config = tmp_path / "reelforge.toml"
    config.write_text(
        '[diffusers_models."google/veo3"]\n'
        'checkpoint = "/models/Wan2.2-T2V-A14B-Diffusers"\n'
        'steps = 30\nguidance_2 = 2.5\nnegative_prompt = ""\n'
        '[diffusers_models]\nveo2 = "/models/ltx"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("REELFORGE_CONFIG", str(config))
    models = Settings().diffusers_models
    assert models["google/veo3"] == DiffusersModel(
        checkpoint="/models/Wan2.2-T2V-A14B-Diffusers", steps=30, guidance_2=2.5, negative_prompt=""
    )
    assert models["veo2"] == DiffusersModel(checkpoint="/models/ltx")
    monkeypatch.setenv("REELFORGE_DIFFUSERS_MODELS", '{"veo2": {"checkpoint": "/m", "shfit": 3}}')
    with pytest.raises(ValueError, match="shfit"):
        Settings()


def test_segment_lengths_cover_the_clip_with_one_shared_frame() -> None:
    assert segment_lengths(81, 81, 4) == (81,)
    assert segment_lengths(129, 81, 4) == (81, 49)  # 8 s of Wan: 81 + 48 new frames
    assert segment_lengths(193, 121, 4) == (121, 73)
    lengths = segment_lengths(25, 9, 4)
    assert lengths == (9, 9, 9)
    assert sum(lengths) - (len(lengths) - 1) == 25
    assert all((length - 1) % 4 == 0 for length in lengths)


# -- the values reach the pipeline -----------------------------------------------------------

WORK_AREA = 48 * 32


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pipelines")
    names = ("wan_t2v", "wan_ti2v", "wan_a14b", "ltx_t2v", "wan_i2v")
    return {name: tiny_pipelines.saved(name, root) for name in names}


@pytest.fixture
def engine_for(settings, models):
    engines: list[DiffusersEngine] = []

    def make(name: str, **table) -> DiffusersEngine:
        entry = {"checkpoint": str(models[name]), "steps": 2, **table}
        values = {"diffusers_models": {"veo2": DiffusersModel(**entry)}}
        engine = DiffusersEngine.from_settings(
            settings.model_copy(update=values), work_area=WORK_AREA
        )
        engine.load()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


def generate(engine: DiffusersEngine, req: GenerationRequest | None = None, inputs=None):
    clip = engine.generate(req or request(), inputs or Inputs(), JobContext())
    return np.stack(list(clip.frames)), clip


def scheduler_of(engine: DiffusersEngine):
    (model,) = engine.models._models.values()
    return next(iter(model.pipelines.values())).scheduler


def test_the_recipes_shift_reaches_the_scheduler(engine_for) -> None:
    engine = engine_for("wan_t2v")
    _, clip = generate(engine)
    # The tiny checkpoint was saved with diffusers' conversion default, 3.0.
    assert scheduler_of(engine).config.flow_shift == 5.0
    assert clip.facts["recipe"] == "wan2.1-t2v" and clip.facts["flow_shift"] == 5.0
    overridden = engine_for("wan_t2v", shift=9.0)
    generate(overridden)
    assert scheduler_of(overridden).config.flow_shift == 9.0


def test_shift_changes_the_video(engine_for) -> None:
    official, _ = generate(engine_for("wan_t2v"))
    converted, _ = generate(engine_for("wan_t2v", shift=3.0))
    assert np.abs(official.astype(int) - converted).mean() > 0.5


def test_the_official_negative_prompt_is_used_when_the_request_has_none(engine_for) -> None:
    default, clip = generate(engine_for("wan_t2v"))
    assert clip.facts["negative_prompt"] == "official default"
    explicit, _ = generate(engine_for("wan_t2v"), request(negative_prompt=r.WAN_NEGATIVE_PROMPT))
    assert np.array_equal(default, explicit)
    none, clip = generate(engine_for("wan_t2v", negative_prompt=""))
    assert clip.facts["negative_prompt"] == "none"
    assert not np.array_equal(default, none)


def test_wan_a14b_gets_guidance_scale_2(engine_for) -> None:
    _, clip = generate(engine_for("wan_a14b"))
    assert clip.facts["recipe"] == "wan2.2-t2v-a14b"
    assert (clip.facts["guidance_scale"], clip.facts["guidance_scale_2"]) == (4.0, 3.0)
    assert clip.facts["flow_shift"] == 12.0
    # At shift 12 two steps stay above the 0.875 boundary; at shift 1 and 4 steps the
    # low-noise expert denoises the last ones, with its own guidance: the video changes.
    official, _ = generate(engine_for("wan_a14b", steps=4, shift=1.0))
    other, clip = generate(engine_for("wan_a14b", steps=4, shift=1.0, guidance_2=7.0))
    assert clip.facts["guidance_scale_2"] == 7.0
    assert not np.array_equal(official, other)


def test_per_model_fps_and_steps_apply(engine_for) -> None:
    _, clip = generate(engine_for("ltx_t2v", fps=24, steps=3))
    assert (clip.facts["native_fps"], clip.facts["steps"]) == (24, 3)
    assert clip.facts["native_frames"] == 25  # 1 s at 24 fps (the tiny VAE packs 4 frames)


def test_long_clips_are_segments_continuing_the_last_frame(engine_for) -> None:
    engine = engine_for("wan_ti2v", max_frames=9)
    frames, clip = generate(engine, request(duration_seconds=1))
    # 1 s at 24 fps: 25 native frames from three passes of 9 sharing their joins.
    assert clip.facts["segments"] == [9, 9, 9]
    assert clip.facts["native_frames"] == 25
    assert frames.shape[0] == 24
    single, clip = generate(engine_for("wan_ti2v", max_frames=25), request(duration_seconds=1))
    assert "segments" not in clip.facts and clip.facts["native_frames"] == 25
    assert not np.array_equal(frames, single)


def test_text_only_checkpoints_refuse_clips_past_one_pass(engine_for) -> None:
    engine = engine_for("wan_t2v")
    with pytest.raises(EngineError, match=r"at most 5 s in one pass \(81 frames at 16 fps\)"):
        engine.generate(request(duration_seconds=8), Inputs(), JobContext())
    assert engine.models.loads == 0  # refused before any weights were loaded


def test_distilled_ltx_runs_eight_steps_of_its_own_schedule(settings, tmp_path) -> None:
    directory = tmp_path / "LTX-Video-0.9.7-distilled"
    tiny_pipelines.BUILDERS["ltx_t2v"]().save_pretrained(directory)
    entry = DiffusersModel(checkpoint=str(directory))
    values = {"diffusers_models": {"veo2": entry}, "diffusers_steps": None}
    engine = DiffusersEngine.from_settings(settings.model_copy(update=values), work_area=WORK_AREA)
    try:
        for inputs in (Inputs(), Inputs(image=Image.new("RGB", (96, 64), "orange"))):
            frames, clip = generate(engine, inputs=inputs)
            assert clip.facts["recipe"] == "ltx-video-distilled"
            assert (clip.facts["steps"], clip.facts["guidance_scale"]) == (8, 1.0)
            assert frames.shape == (24, 48, 64, 3)
            model = next(iter(engine.models._models.values()))
            pipe = model.pipelines["image" if inputs.image else "text"]
            assert type(pipe).__name__ == "LTXConditionPipeline"
            used = pipe.scheduler.timesteps.tolist()
            assert used == pytest.approx(list(r.LTX_DISTILLED_TIMESTEPS), abs=0.01)
    finally:
        engine.close()


def test_a_configured_resolution_picks_the_480p_recipe(engine_for) -> None:
    image = Inputs(image=Image.new("RGB", (96, 64), "orange"))
    # The tiny I2V transformer is narrow like Wan2.1 1.3B: read as 480p from its config.
    _, clip = generate(engine_for("wan_i2v"), request(model="veo2"), image)
    assert (clip.facts["recipe"], clip.facts["flow_shift"]) == ("wan2.1-i2v-480p", 3.0)
    _, clip = generate(engine_for("wan_i2v", resolution="720p"), request(model="veo2"), image)
    assert (clip.facts["recipe"], clip.facts["flow_shift"]) == ("wan2.1-i2v-720p", 5.0)
    assert clip.facts["negative_prompt"] == "official default"
