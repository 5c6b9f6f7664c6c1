"""``veo2/image-to-video`` (shared/specs/Veo2-Image-to-Video.json).

``aspect_ratio`` also takes ``auto`` (follow the input image), as the published request
example does.
"""

from __future__ import annotations

from typing import Literal

from reelforge.catalog.base import GenerationParams, ModelSpec
from reelforge.catalog.fields import AspectRatioOrAuto, ImageRef, Veo2Duration


class Veo2ImageParams(GenerationParams):
    model: Literal["veo2/image-to-video"] = "veo2/image-to-video"
    image_url: ImageRef
    tail_image_url: ImageRef | None = None
    duration: Veo2Duration = 5
    aspect_ratio: AspectRatioOrAuto = "16:9"

    def image_refs(self) -> dict[str, str]:
        refs = {"image_url": self.image_url}
        if self.tail_image_url is not None:
            refs["tail_image_url"] = self.tail_image_url
        return refs


SPEC = ModelSpec(
    name="veo2/image-to-video",
    title="Veo 2 (image-to-video)",
    params_type=Veo2ImageParams,
    input_kind="image",
    credits_per_second=105_000,
)
