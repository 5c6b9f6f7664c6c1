"""The official sampling recipe of each checkpoint, and how configuration overrides it.

diffusers' converted checkpoints carry a generic scheduler (Wan: ``flow_shift`` 3.0) and
its pipelines generic defaults (50 steps, guidance 5 or 3, no negative prompt), which make
visibly worse video than the code the models were published with. The values here are
those of the official repositories (tests/unit/test_diffusers_recipes.py asserts each one
against the file and line it comes from):

* Wan 2.1 ``generate.py`` and ``wan/configs/`` (github.com/Wan-Video/Wan2.1): 50 steps
  for text (40 for image-to-video), guidance 5, ``sample_shift`` 5.0, 3.0 for 480p
  image-to-video, 16 for FLF2V and VACE; 81 frames at 16 fps; the Chinese negative prompt
  of ``shared_config.py`` (image-to-video adds "camera shake", FLF2V "shot change").
* Wan 2.2 ``wan/configs/`` (github.com/Wan-Video/Wan2.2): T2V-A14B shift 12, 40 steps,
  guidance 4.0 (high noise) / 3.0 (low noise); I2V-A14B shift 5, 40 steps, 3.5 / 3.5;
  TI2V-5B shift 5, 50 steps, guidance 5, 121 frames at 24 fps.
* LTX-2 ``packages/ltx-pipelines/src/ltx_pipelines/utils/constants.py``
  (github.com/Lightricks/LTX-2): 40 steps, video guidance 3, audio guidance 7, 24 fps, its
  long negative prompt.
* HunyuanVideo 1.5 ``README.md`` (github.com/Tencent-Hunyuan/HunyuanVideo-1.5): CFG 6,
  50 steps, flow shift 5 at 480p, 9 / 7 for 720p text / image, 121 frames at 24 fps.
* LTX-Video ``configs/*.yaml`` and ``ltx_video/inference.py``
  (github.com/Lightricks/LTX-Video): 40 steps at guidance 3, 8 steps at guidance 1 with
  the distilled timesteps for distilled checkpoints, decode timestep 0.05 and noise 0.025,
  30 fps, its recommended negative prompt.

In diffusers, Wan 2.2 A14B's ``guidance_scale`` drives ``transformer`` (the high-noise
expert) and ``guidance_scale_2`` drives ``transformer_2`` (low noise).

Precedence, per value: the model's table in ``diffusers_models`` (:class:`DiffusersModel`),
then the global ``diffusers_steps`` / ``diffusers_guidance_scale``, then the recipe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from reelforge.settings import DiffusersModel, Settings

WAN_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，"
    "低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，"
    "形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)
"""``sample_neg_prompt`` of Wan's ``wan/configs/shared_config.py`` (Wan 2.1 and 2.2 alike)."""
WAN_I2V_NEGATIVE_PREFIX = "镜头晃动，"
"""Wan 2.1 ``wan_i2v_14B.py`` puts "camera shake" in front for image-to-video."""
WAN_FLF2V_NEGATIVE_PREFIX = "镜头切换，"
"""Wan 2.1 ``configs/__init__.py`` puts "shot change" in front for first-last frame."""
LTX_NEGATIVE_PROMPT = "worst quality, inconsistent motion, blurry, jittery, distorted"
"""``negative_prompt`` default of LTX-Video's ``ltx_video/inference.py``."""
LTX2_NEGATIVE_PROMPT = (
    "has_subtitles, has_blurbox, transition from black, transition to black, speech_ending_short, "
    "blurry, out of focus, overexposed, underexposed, low contrast, washed out colors, excessive "
    "noise, grainy texture, poor lighting, flickering, motion blur, distorted proportions, "
    "unnatural skin tones, deformed facial features, asymmetrical face, missing facial features, "
    "extra limbs, disfigured hands, wrong hand count, artifacts around text, inconsistent "
    "perspective, camera shake, incorrect depth of field, background too sharp, background "
    "clutter, distracting reflections, harsh shadows, inconsistent lighting direction, color "
    "banding, cartoonish rendering, 3D CGI look, unrealistic materials, uncanny valley effect, "
    "incorrect ethnicity, wrong gender, exaggerated expressions, wrong gaze direction, mismatched "
    "lip sync, silent or muted audio, distorted voice, robotic voice, echo, background noise, "
    "off-sync audio, incorrect dialogue, added dialogue, repetitive speech, jittery movement, "
    "awkward pauses, incorrect timing, unnatural transitions, inconsistent framing, tilted camera, "
    "flat lighting, inconsistent tone, cinematic oversaturation, stylized filters, or AI artifacts."
)
"""``DEFAULT_NEGATIVE_PROMPT`` of LTX-2's ``ltx_pipelines/utils/constants.py``."""
LTX_DISTILLED_TIMESTEPS = (1000.0, 993.7, 987.5, 981.2, 975.0, 909.4, 725.0, 421.9)
"""LTX 0.9.8 distilled's first-pass timesteps and the last of its second pass, in
diffusers' 0-1000 scale: the single-pass schedule of 8 steps."""


@dataclass(frozen=True)
class Recipe:
    """How one checkpoint is sampled: the values its authors publish."""

    name: str
    """Which official configuration this is, e.g. ``wan2.2-t2v-a14b``."""
    steps: int
    guidance: float
    fps: int
    max_frames: int
    """Frames of the clips the checkpoint was trained on: one pass never runs past it."""
    shift: float | None = None
    """Flow shift for the scheduler; ``None`` keeps the checkpoint's (LTX shifts by size)."""
    guidance_2: float | None = None
    """Guidance of the low-noise transformer (Wan 2.2 A14B)."""
    negative_prompt: str = ""
    timesteps: tuple[float, ...] | None = None
    """Distilled schedules; only pipelines that take custom timesteps receive them."""
    call_args: tuple[tuple[str, Any], ...] = ()
    """Further fixed pipeline arguments (LTX's decode timestep and noise)."""


LTX_DECODE = (("decode_timestep", 0.05), ("decode_noise_scale", 0.025))

WAN21_T2V = Recipe(
    "wan2.1-t2v", steps=50, guidance=5.0, fps=16, max_frames=81, shift=5.0,
    negative_prompt=WAN_NEGATIVE_PROMPT,
)  # fmt: skip
WAN21_I2V_720P = Recipe(
    "wan2.1-i2v-720p", steps=40, guidance=5.0, fps=16, max_frames=81, shift=5.0,
    negative_prompt=WAN_I2V_NEGATIVE_PREFIX + WAN_NEGATIVE_PROMPT,
)  # fmt: skip
WAN21_I2V_480P = replace(WAN21_I2V_720P, name="wan2.1-i2v-480p", shift=3.0)
WAN21_FLF2V = Recipe(
    "wan2.1-flf2v", steps=50, guidance=5.0, fps=16, max_frames=81, shift=16.0,
    negative_prompt=WAN_FLF2V_NEGATIVE_PREFIX + WAN_I2V_NEGATIVE_PREFIX + WAN_NEGATIVE_PROMPT,
)  # fmt: skip
WAN21_VACE = Recipe(
    "wan2.1-vace", steps=50, guidance=5.0, fps=16, max_frames=81, shift=16.0,
    negative_prompt=WAN_NEGATIVE_PROMPT,
)  # fmt: skip
WAN22_T2V_A14B = Recipe(
    "wan2.2-t2v-a14b", steps=40, guidance=4.0, guidance_2=3.0, fps=16, max_frames=81,
    shift=12.0, negative_prompt=WAN_NEGATIVE_PROMPT,
)  # fmt: skip
WAN22_I2V_A14B = Recipe(
    "wan2.2-i2v-a14b", steps=40, guidance=3.5, guidance_2=3.5, fps=16, max_frames=81,
    shift=5.0, negative_prompt=WAN_NEGATIVE_PROMPT,
)  # fmt: skip
WAN22_TI2V_5B = Recipe(
    "wan2.2-ti2v-5b", steps=50, guidance=5.0, fps=24, max_frames=121, shift=5.0,
    negative_prompt=WAN_NEGATIVE_PROMPT,
)  # fmt: skip
LTX_DEV = Recipe(
    "ltx-video", steps=40, guidance=3.0, fps=30, max_frames=257,
    negative_prompt=LTX_NEGATIVE_PROMPT, call_args=LTX_DECODE,
)  # fmt: skip
LTX_DISTILLED = Recipe(
    "ltx-video-distilled", steps=8, guidance=1.0, fps=30, max_frames=257,
    negative_prompt=LTX_NEGATIVE_PROMPT, timesteps=LTX_DISTILLED_TIMESTEPS,
    call_args=LTX_DECODE,
)  # fmt: skip

LTX2 = Recipe(
    "ltx-2", steps=40, guidance=3.0, fps=24, max_frames=257,
    negative_prompt=LTX2_NEGATIVE_PROMPT, call_args=(("audio_guidance_scale", 7.0),),
)  # fmt: skip
"""LTX-2.0's ``PipelineParams`` (40 steps, video CFG 3, audio CFG 7, 24 fps). One pass is
held to 257 frames as for LTX-Video (the official code sets no limit; it defaults to 121)."""

HUNYUAN15_480P = Recipe(
    "hunyuanvideo-1.5-480p", steps=50, guidance=6.0, fps=24, max_frames=121, shift=5.0
)
HUNYUAN15_720P_T2V = replace(HUNYUAN15_480P, name="hunyuanvideo-1.5-720p-t2v", shift=9.0)
HUNYUAN15_720P_I2V = replace(HUNYUAN15_480P, name="hunyuanvideo-1.5-720p-i2v", shift=7.0)
"""HunyuanVideo 1.5's "optimal inference configurations" (README): CFG 6, 50 steps, shift
5 at 480p, 9 (text) or 7 (image) at 720p; 121 frames at 24 fps; no default negative prompt."""

RECIPES = {
    recipe.name: recipe
    for recipe in (
        WAN21_T2V,
        WAN21_I2V_720P,
        WAN21_I2V_480P,
        WAN21_FLF2V,
        WAN21_VACE,
        WAN22_T2V_A14B,
        WAN22_I2V_A14B,
        WAN22_TI2V_5B,
        LTX_DEV,
        LTX_DISTILLED,
        LTX2,
        HUNYUAN15_480P,
        HUNYUAN15_720P_T2V,
        HUNYUAN15_720P_I2V,
    )
}


@dataclass(frozen=True)
class Sampling:
    """The values one job runs with, after configuration: what the engine passes on."""

    recipe: str
    steps: int
    guidance: float
    guidance_2: float | None
    shift: float | None
    fps: int
    max_frames: int
    negative_prompt: str
    timesteps: tuple[float, ...] | None
    call_args: tuple[tuple[str, Any], ...]


def resolve(
    recipe: Recipe,
    entry: DiffusersModel | None,
    settings: Settings,
    adapter: Mapping[str, Any] | None = None,
) -> Sampling:
    """The recipe with configuration applied over it, value by value.

    Precedence: the model's table (``entry``), then ``adapter`` (the recipe of a
    step-distilled LoRA configured for the model: ``steps``, ``guidance``, ``guidance_2``,
    ``shift``), then the global ``diffusers_steps`` / ``diffusers_guidance_scale``, then the
    official recipe. Custom timesteps belong to the recipe's step count: other steps drop
    them.
    """
    table = entry or DiffusersModel(checkpoint="")
    lora = adapter or {}
    steps = _first(table.steps, lora.get("steps"), settings.diffusers_steps, recipe.steps)
    guidance = _first(
        table.guidance, lora.get("guidance"), settings.diffusers_guidance_scale, recipe.guidance
    )
    guidance_2 = _first(table.guidance_2, lora.get("guidance_2"))
    if guidance_2 is None and recipe.guidance_2 is not None:
        # An overridden guidance applies to both experts unless the second one is set.
        guidance_2 = recipe.guidance_2 if guidance == recipe.guidance else guidance
    return Sampling(
        recipe=recipe.name,
        steps=steps,
        guidance=guidance,
        guidance_2=guidance_2,
        shift=_first(table.shift, lora.get("shift"), recipe.shift),
        fps=_first(table.fps, recipe.fps),
        max_frames=_first(table.max_frames, recipe.max_frames),
        negative_prompt=_first(table.negative_prompt, recipe.negative_prompt),
        timesteps=recipe.timesteps if steps == recipe.steps else None,
        call_args=recipe.call_args,
    )


def _first(*values: Any) -> Any:
    return next((value for value in values if value is not None), None)
