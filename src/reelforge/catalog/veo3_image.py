"""``google/veo-3.0-i2v``: image-to-video with audio (shared/specs/veo-3.0-i2v.json)."""

from __future__ import annotations

from typing import Literal

from reelforge.catalog.base import GenerationParams, ModelSpec
from reelforge.catalog.fields import AspectRatio, ImageRef, Resolution, StrictBool, Veo3Duration


class Veo3ImageParams(GenerationParams):
    model: Literal["google/veo-3.0-i2v"] = "google/veo-3.0-i2v"
    image_url: ImageRef
    duration: Veo3Duration = 8
    aspect_ratio: AspectRatio = "16:9"
    resolution: Resolution = "720P"
    generate_audio: StrictBool = True

    @property
    def resolution_name(self) -> str:
        return self.resolution

    @property
    def wants_audio(self) -> bool:
        return self.generate_audio

    def image_refs(self) -> dict[str, str]:
        return {"image_url": self.image_url}


SPEC = ModelSpec(
    name="google/veo-3.0-i2v",
    title="Veo 3 (image-to-video, with audio)",
    params_type=Veo3ImageParams,
    input_kind="image",
    credits_per_second=168_000,
    silent_credits_per_second=105_000,
)
