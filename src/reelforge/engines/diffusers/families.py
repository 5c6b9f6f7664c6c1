"""Per-family rules: what a checkpoint can do and the shapes it generates natively.

A *family* is a kind of checkpoint that shares a pipeline, a frame rate and size rules.
It is detected from files that are read without loading any weights: the pipeline's
``model_index.json`` (``_class_name``, ``expand_timesteps``, ``transformer_2``) and the
transformer's ``config.json``.

* ``wan``: Wan 2.1 T2V/I2V/FLF2V and Wan 2.2 A14B T2V/I2V. 16 fps, 81 frames a pass,
  ``4k + 1`` frames, sides multiples of 16; 832x480 for 480p checkpoints (see
  :func:`wan_resolution`), 1280x720 for the others.
* ``wan-ti2v``: Wan2.2 TI2V-5B, text and image input from one checkpoint. 24 fps, 121
  frames a pass, sides multiples of 32 (its VAE compresses 16x); 1280x704.
* ``ltx``: LTX-Video 0.9.x. 30 fps (the official inference default), ``8k + 1`` frames up
  to 257, sides multiples of 32; 1216x704 (the model card: best under 1280x720).
* ``wan-vace``: Wan VACE, one checkpoint for text, known first/last frames, reference
  images and video extension (a conditioning video and mask); Wan's rates and sizes.
* ``ltx2``: LTX-2, video and audio latents denoised together; 24 fps, LTX's sizes.
* ``hunyuan1.5``: HunyuanVideo 1.5, one checkpoint per task (``task_type``) and
  resolution (``target_size``); 24 fps, 121 frames a pass, 848x480 or 1280x720.

Rates, frames a pass, steps, guidance, shift and negative prompt are the checkpoint's
official recipe (:mod:`.recipes`), chosen here from its configuration.

Portrait requests use the swapped sizes; the frame count covers the requested duration
at the recipe's rate (``duration x fps`` intervals, plus the first frame); a clip longer
than one pass is made of segments (see the engine). The frame and size steps quoted are
those of the published checkpoints; the engine takes the real ones from the loaded VAE
and transformer, so tiny test pipelines follow the same rules at their own scale.

What a checkpoint accepts follows from its transformer: a text-to-video transformer
denoises only the video latents (``in_channels == out_channels``); an image-to-video one
also reads the encoded first frame concatenated to them (``in_channels > out_channels``);
Wan2.2 TI2V-5B (``expand_timesteps``) writes the first frame into the latents instead, so
one checkpoint serves both. A Wan image checkpoint whose image embedding has a learned
position table (``pos_embed_seq_len``) is FLF2V: it also takes a last frame. LTX-Video
conditions on an image through its latents, so every LTX checkpoint serves both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from reelforge.engines.diffusers import recipes
from reelforge.engines.diffusers.recipes import Recipe
from reelforge.errors import ServiceUnavailable

InputKind = Literal["text", "image"]

Size = tuple[int, int]
"""Width and height in pixels."""


@dataclass(frozen=True)
class Family:
    """Pipelines shared by the checkpoints of one model family (their sampling values
    are per checkpoint: :mod:`.recipes`)."""

    name: str
    text_pipeline: str
    """diffusers class for text input."""
    image_pipeline: str
    """diffusers class for image input."""


WAN = Family(name="wan", text_pipeline="WanPipeline", image_pipeline="WanImageToVideoPipeline")
WAN_TI2V = Family(
    name="wan-ti2v", text_pipeline="WanPipeline", image_pipeline="WanImageToVideoPipeline"
)
LTX = Family(name="ltx", text_pipeline="LTXPipeline", image_pipeline="LTXImageToVideoPipeline")
LTX2 = Family(name="ltx2", text_pipeline="LTX2Pipeline", image_pipeline="LTX2ImageToVideoPipeline")
HUNYUAN15 = Family(
    name="hunyuan1.5",
    text_pipeline="HunyuanVideo15Pipeline",
    image_pipeline="HunyuanVideo15ImageToVideoPipeline",
)
WAN_VACE = Family(
    name="wan-vace", text_pipeline="WanVACEPipeline", image_pipeline="WanVACEPipeline"
)
FAMILIES = {family.name: family for family in (WAN, WAN_TI2V, LTX, LTX2, WAN_VACE, HUNYUAN15)}

WAN_480P_SIZES: tuple[Size, ...] = ((832, 480), (480, 832), (624, 624))
WAN_720P_SIZES: tuple[Size, ...] = ((1280, 720), (720, 1280), (960, 960))
WAN_TI2V_SIZES: tuple[Size, ...] = ((1280, 704), (704, 1280), (960, 960))
LTX_SIZES: tuple[Size, ...] = ((1216, 704), (704, 1216), (832, 832))
HUNYUAN_480P_SIZES: tuple[Size, ...] = ((848, 480), (480, 848), (640, 640))
HUNYUAN_720P_SIZES: tuple[Size, ...] = ((1280, 720), (720, 1280), (960, 960))
HUNYUAN_CLASSES = frozenset({"HunyuanVideo15Pipeline", "HunyuanVideo15ImageToVideoPipeline"})
HUNYUAN_720P_TARGET = 960
"""``target_size`` of the 720p HunyuanVideo 1.5 transformers (640 at 480p)."""

WAN_SMALL_WIDTH = 1536
"""Transformer width (heads x head size) of Wan2.1 1.3B, which was trained at 480p only."""

WAN_TEXT_CLASSES = frozenset({"WanPipeline", "WanImageToVideoPipeline"})
LTX_CLASSES = frozenset({"LTXPipeline", "LTXImageToVideoPipeline", "LTXConditionPipeline"})
LTX2_CLASSES = frozenset({"LTX2Pipeline", "LTX2ImageToVideoPipeline", "LTX2ConditionPipeline"})


@dataclass(frozen=True)
class ModelInfo:
    """What one checkpoint is and can do, known before its weights are loaded."""

    source: str
    """The configured local directory or Hugging Face repo id."""
    label: str
    """Short name reported to users: the directory name or the repo id."""
    family: Family
    pipeline_class: str
    """``_class_name`` of ``model_index.json``: the class loaded from disk."""
    text: bool
    image: bool
    last_frame: bool
    sizes: tuple[Size, ...]
    """Native sizes the checkpoint was trained at, both orientations."""
    two_stage: bool = False
    """Wan 2.2 A14B: a high-noise and a low-noise transformer."""
    recipe: Recipe = recipes.WAN21_T2V
    """The official sampling recipe of this checkpoint (:mod:`.recipes`)."""
    resolution: str = "720p"
    """Trained resolution (``480p`` or ``720p``) and where it was read: see :func:`detect`."""
    references: bool = False
    """Takes reference images (Wan VACE)."""
    extends: bool = False
    """Continues an input video from its last frames (Wan VACE)."""
    audio: bool = False
    """Generates the soundtrack with the picture, in one model (LTX-2)."""

    def supports(self, kind: InputKind) -> bool:
        return self.text if kind == "text" else self.image

    def pipeline_for(self, kind: InputKind) -> str:
        if self.family is LTX and self.recipe.timesteps is not None:
            # The one LTX pipeline that takes a custom schedule, for text and image alike.
            return "LTXConditionPipeline"
        return self.family.text_pipeline if kind == "text" else self.family.image_pipeline

    @property
    def default_steps(self) -> int:
        return self.recipe.steps

    @property
    def default_guidance(self) -> float:
        return self.recipe.guidance


def detect(
    source: str,
    label: str,
    model_index: Mapping[str, Any],
    transformer_config: Mapping[str, Any] | None,
    *,
    resolution: str | None = None,
    distilled: bool | None = None,
) -> ModelInfo:
    """The family, abilities and official recipe of a checkpoint from its configuration.

    ``resolution`` and ``distilled`` are the operator's word (``diffusers_models``) where
    the files cannot tell: see :func:`wan_resolution`; an LTX checkpoint is distilled when
    configured so, else when its name says "distilled" (the distilled and dev checkpoints
    share one architecture and configuration).

    Raises :class:`ServiceUnavailable` for pipelines this engine does not drive (so an
    operator learns at the first job, with the class name, rather than from a crash).
    """
    class_name = str(model_index.get("_class_name", ""))
    transformer = dict(transformer_config or {})
    if class_name in WAN_TEXT_CLASSES:
        return _detect_wan(source, label, class_name, model_index, transformer, resolution)
    if class_name in LTX2_CLASSES:
        return ModelInfo(
            source=source,
            label=label,
            family=LTX2,
            pipeline_class=class_name,
            text=True,
            image=True,
            last_frame=False,
            sizes=LTX_SIZES,
            recipe=recipes.LTX2,
            audio=True,
        )
    if class_name in HUNYUAN_CLASSES:
        return _detect_hunyuan(source, label, class_name, transformer, resolution)
    if class_name == "WanVACEPipeline":
        resolution = resolution or wan_resolution(label, transformer)
        two_stage = (model_index.get("transformer_2") or [None])[0] is not None
        return ModelInfo(
            source=source,
            label=label,
            family=WAN_VACE,
            pipeline_class=class_name,
            text=True,
            image=True,
            last_frame=True,
            sizes=WAN_480P_SIZES if resolution == "480p" else WAN_720P_SIZES,
            two_stage=two_stage,
            # Wan2.2's VACE-Fun A14B has no official recipe of its own: the T2V-A14B one.
            recipe=recipes.WAN22_T2V_A14B if two_stage else recipes.WAN21_VACE,
            resolution=resolution,
            references=True,
            extends=True,
        )
    if class_name in LTX_CLASSES:
        if distilled is None:
            distilled = "distilled" in label.lower()
        return ModelInfo(
            source=source,
            label=label,
            family=LTX,
            pipeline_class=class_name,
            text=True,
            image=True,
            last_frame=False,
            sizes=LTX_SIZES,
            recipe=recipes.LTX_DISTILLED if distilled else recipes.LTX_DEV,
        )
    supported = ", ".join(
        sorted(
            WAN_TEXT_CLASSES | LTX_CLASSES | LTX2_CLASSES | HUNYUAN_CLASSES | {"WanVACEPipeline"}
        )
    )
    raise ServiceUnavailable(
        f"the diffusers model '{label}' is a {class_name or 'unknown pipeline'}; "
        f"the diffusers engine runs {supported} checkpoints"
    )


def _detect_wan(
    source: str,
    label: str,
    class_name: str,
    model_index: Mapping[str, Any],
    transformer: Mapping[str, Any],
    resolution: str | None,
) -> ModelInfo:
    expand = bool(model_index.get("expand_timesteps"))
    in_channels = transformer.get("in_channels")
    out_channels = transformer.get("out_channels")
    if in_channels is not None and out_channels is not None:
        concatenates_image = in_channels > out_channels
    else:
        concatenates_image = class_name == "WanImageToVideoPipeline"
    text = expand or not concatenates_image
    image = expand or concatenates_image
    last_frame = image and not expand and transformer.get("pos_embed_seq_len") is not None
    two_stage = (model_index.get("transformer_2") or [None])[0] is not None
    if expand:
        return ModelInfo(
            source, label, WAN_TI2V, class_name, text, image, False, WAN_TI2V_SIZES,
            recipe=recipes.WAN22_TI2V_5B, resolution="720p",
        )  # fmt: skip
    resolution = resolution or wan_resolution(label, transformer)
    sizes = WAN_480P_SIZES if resolution == "480p" else WAN_720P_SIZES
    if two_stage:
        recipe = recipes.WAN22_I2V_A14B if image else recipes.WAN22_T2V_A14B
    elif last_frame:
        recipe = recipes.WAN21_FLF2V
    elif image:
        recipe = recipes.WAN21_I2V_480P if resolution == "480p" else recipes.WAN21_I2V_720P
    else:
        recipe = recipes.WAN21_T2V
    return ModelInfo(
        source, label, WAN, class_name, text, image, last_frame, sizes, two_stage,
        recipe=recipe, resolution=resolution,
    )  # fmt: skip


def _detect_hunyuan(
    source: str,
    label: str,
    class_name: str,
    transformer: Mapping[str, Any],
    resolution: str | None,
) -> ModelInfo:
    """HunyuanVideo 1.5: one checkpoint per task (``task_type`` ``t2v`` or ``i2v``) and per
    resolution (``target_size``: 640 at 480p, 960 at 720p), both in the transformer's
    configuration."""
    task = transformer.get("task_type") or (
        "i2v" if class_name == "HunyuanVideo15ImageToVideoPipeline" else "t2v"
    )
    if resolution is None:
        target = int(transformer.get("target_size") or 0)
        resolution = "720p" if target >= HUNYUAN_720P_TARGET else "480p"
    image = task == "i2v"
    if resolution == "480p":
        recipe = recipes.HUNYUAN15_480P
    else:
        recipe = recipes.HUNYUAN15_720P_I2V if image else recipes.HUNYUAN15_720P_T2V
    return ModelInfo(
        source=source,
        label=label,
        family=HUNYUAN15,
        pipeline_class=class_name,
        text=not image,
        image=image,
        last_frame=False,
        sizes=HUNYUAN_480P_SIZES if resolution == "480p" else HUNYUAN_720P_SIZES,
        recipe=recipe,
        resolution=resolution,
    )


def wan_resolution(label: str, transformer: Mapping[str, Any]) -> str:
    """``480p`` or ``720p``: the resolution a Wan checkpoint was trained at.

    From its transformer's configuration: a model as narrow as Wan2.1 1.3B
    (``num_attention_heads x attention_head_dim`` of 1536 or less) was trained at 480p only.
    The 14B image-to-video checkpoints of 480p and 720p share one architecture, so their
    configuration cannot tell them apart: the published repository's name ("...-480P-...")
    decides, and ``resolution`` in ``diffusers_models`` overrides it for renamed copies.
    """
    width = int(transformer.get("num_attention_heads", 0)) * int(
        transformer.get("attention_head_dim", 0)
    )
    names = label.upper()
    if "720P" in names:
        return "720p"
    if "480P" in names or 0 < width <= WAN_SMALL_WIDTH:
        return "480p"
    return "720p"


def native_frames(duration_seconds: float, fps: int, step: int, max_frames: int) -> int:
    """Frames to generate: ``step * k + 1`` covering the duration, at most ``max_frames``.

    Video VAEs compress ``step`` frames into one latent frame after a first frame of its
    own, so other counts are rounded by the pipeline anyway.
    """
    intervals = math.ceil(duration_seconds * fps / step) * step
    cap = (max(max_frames - 1, step) // step) * step
    return min(intervals, cap) + 1


def native_size(
    sizes: tuple[Size, ...], target: Size, multiple: int, work_area: int | None = None
) -> Size:
    """The size to generate at for an output of ``target`` size.

    Normally the trained size whose aspect ratio is closest to the target's. With
    ``work_area`` (tests, previews), a size of about that many pixels with the target's
    aspect ratio, each side a multiple of ``multiple``.
    """
    aspect = target[0] / target[1]
    if work_area is not None:
        width = max(multiple, round(math.sqrt(work_area * aspect) / multiple) * multiple)
        height = max(multiple, round(math.sqrt(work_area / aspect) / multiple) * multiple)
        return width, height
    best = min(sizes, key=lambda size: abs(math.log(size[0] / size[1] / aspect)))
    return _round_to(best[0], multiple), _round_to(best[1], multiple)


def _round_to(value: int, multiple: int) -> int:
    return max(multiple, round(value / multiple) * multiple)


def configured(info: ModelInfo, resolution: str | None, distilled: bool | None) -> ModelInfo:
    """``info`` with the operator's ``resolution`` / ``distilled`` (``diffusers_models``)
    applied where they change the sizes or the recipe."""
    if resolution and info.family in (WAN, WAN_VACE) and resolution != info.resolution:
        sizes = WAN_480P_SIZES if resolution == "480p" else WAN_720P_SIZES
        recipe = info.recipe
        if recipe in (recipes.WAN21_I2V_480P, recipes.WAN21_I2V_720P):
            recipe = recipes.WAN21_I2V_480P if resolution == "480p" else recipes.WAN21_I2V_720P
        info = replace(info, sizes=sizes, recipe=recipe, resolution=resolution)
    if distilled is not None and info.family is LTX:
        info = replace(info, recipe=recipes.LTX_DISTILLED if distilled else recipes.LTX_DEV)
    return info
