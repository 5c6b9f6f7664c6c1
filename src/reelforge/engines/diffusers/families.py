"""Per-family rules: what a checkpoint can do and the shapes it generates natively.

A *family* is a kind of checkpoint that shares a pipeline, a frame rate and size rules.
It is detected from files that are read without loading any weights: the pipeline's
``model_index.json`` (``_class_name``, ``expand_timesteps``, ``transformer_2``) and the
transformer's ``config.json``.

* ``wan``: Wan 2.1 T2V/I2V/FLF2V and Wan 2.2 A14B T2V/I2V. 16 fps, ``4k + 1`` frames,
  sides multiples of 16; 832x480 for 480p checkpoints (the 1.3B, names with "480P"),
  1280x720 for the others.
* ``wan-ti2v``: Wan2.2 TI2V-5B, text and image input from one checkpoint. 24 fps,
  ``4k + 1`` frames, sides multiples of 32 (its VAE compresses 16x); 1280x704.
* ``ltx``: LTX-Video 0.9.x. 24 fps (the pipeline's ``frame_rate``), ``8k + 1`` frames,
  sides multiples of 32; 1216x704 (the model card: best under 1280x720).

Portrait requests use the swapped sizes; the frame count covers the requested duration
at the family's rate (``duration x fps`` intervals, plus the first frame) up to
``max_frames``. The frame and size steps quoted are those of the published checkpoints;
the engine takes the real ones from the loaded VAE and transformer, so tiny test
pipelines follow the same rules at their own scale.

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
from dataclasses import dataclass
from typing import Any, Literal

from reelforge.errors import ServiceUnavailable

InputKind = Literal["text", "image"]

Size = tuple[int, int]
"""Width and height in pixels."""


@dataclass(frozen=True)
class Family:
    """Generation rules shared by the checkpoints of one model family."""

    name: str
    native_fps: int
    """Frame rate the checkpoints were trained at, frames per second."""
    max_frames: int
    """Most frames generated in one pass; longer clips are slowed down to fit."""
    default_steps: int
    default_guidance: float
    text_pipeline: str
    """diffusers class for text input."""
    image_pipeline: str
    """diffusers class for image input."""
    extra_call_args: tuple[tuple[str, Any], ...] = ()
    """Fixed keyword arguments of every pipeline call (e.g. LTX's decode noise)."""


WAN = Family(
    name="wan",
    native_fps=16,
    max_frames=129,  # 8 s; the checkpoints were trained on 81 (5 s) and degrade slowly past it
    default_steps=50,
    default_guidance=5.0,
    text_pipeline="WanPipeline",
    image_pipeline="WanImageToVideoPipeline",
)
WAN_TI2V = Family(
    name="wan-ti2v",
    native_fps=24,
    max_frames=193,  # 8 s; trained on 121 (5 s)
    default_steps=50,
    default_guidance=5.0,
    text_pipeline="WanPipeline",
    image_pipeline="WanImageToVideoPipeline",
)
LTX = Family(
    name="ltx",
    native_fps=24,
    max_frames=257,  # the model card's limit
    default_steps=50,
    default_guidance=3.0,
    text_pipeline="LTXPipeline",
    image_pipeline="LTXImageToVideoPipeline",
    # Recommended for 0.9.1+ (VAEs with timestep conditioning); ignored by older VAEs.
    extra_call_args=(("decode_timestep", 0.05), ("decode_noise_scale", 0.025)),
)
FAMILIES = {family.name: family for family in (WAN, WAN_TI2V, LTX)}

WAN_480P_SIZES: tuple[Size, ...] = ((832, 480), (480, 832), (624, 624))
WAN_720P_SIZES: tuple[Size, ...] = ((1280, 720), (720, 1280), (960, 960))
WAN_TI2V_SIZES: tuple[Size, ...] = ((1280, 704), (704, 1280), (960, 960))
LTX_SIZES: tuple[Size, ...] = ((1216, 704), (704, 1216), (832, 832))

WAN_SMALL_WIDTH = 1536
"""Transformer width (heads x head size) of Wan2.1 1.3B, which was trained at 480p only."""

WAN_TEXT_CLASSES = frozenset({"WanPipeline", "WanImageToVideoPipeline"})
LTX_CLASSES = frozenset({"LTXPipeline", "LTXImageToVideoPipeline", "LTXConditionPipeline"})


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

    def supports(self, kind: InputKind) -> bool:
        return self.text if kind == "text" else self.image

    def pipeline_for(self, kind: InputKind) -> str:
        return self.family.text_pipeline if kind == "text" else self.family.image_pipeline

    @property
    def default_steps(self) -> int:
        return 40 if self.two_stage else self.family.default_steps

    @property
    def default_guidance(self) -> float:
        return 4.0 if self.two_stage else self.family.default_guidance


def detect(
    source: str,
    label: str,
    model_index: Mapping[str, Any],
    transformer_config: Mapping[str, Any] | None,
) -> ModelInfo:
    """The family and abilities of a checkpoint from its configuration files alone.

    Raises :class:`ServiceUnavailable` for pipelines this engine does not drive (so an
    operator learns at the first job, with the class name, rather than from a crash).
    """
    class_name = str(model_index.get("_class_name", ""))
    transformer = dict(transformer_config or {})
    if class_name in WAN_TEXT_CLASSES:
        return _detect_wan(source, label, class_name, model_index, transformer)
    if class_name in LTX_CLASSES:
        return ModelInfo(
            source=source,
            label=label,
            family=LTX,
            pipeline_class=class_name,
            text=True,
            image=True,
            last_frame=False,
            sizes=LTX_SIZES,
        )
    supported = ", ".join(sorted(WAN_TEXT_CLASSES | LTX_CLASSES))
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
        return ModelInfo(source, label, WAN_TI2V, class_name, text, image, False, WAN_TI2V_SIZES)
    width = int(transformer.get("num_attention_heads", 0)) * int(
        transformer.get("attention_head_dim", 0)
    )
    names = label.upper()
    small = "480P" in names or (0 < width <= WAN_SMALL_WIDTH and "720P" not in names)
    sizes = WAN_480P_SIZES if small else WAN_720P_SIZES
    return ModelInfo(source, label, WAN, class_name, text, image, last_frame, sizes, two_stage)


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
