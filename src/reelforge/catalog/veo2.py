"""``veo2``: text-to-video (shared/specs/veo2.json)."""

from __future__ import annotations

from typing import Literal

from reelforge.catalog.base import GenerationParams, ModelSpec
from reelforge.catalog.fields import AspectRatio, Veo2Duration


class Veo2Params(GenerationParams):
    model: Literal["veo2"] = "veo2"
    duration: Veo2Duration = 5
    aspect_ratio: AspectRatio = "16:9"


SPEC = ModelSpec(
    name="veo2",
    title="Veo 2 (text-to-video)",
    params_type=Veo2Params,
    input_kind="text",
    credits_per_second=105_000,
)
