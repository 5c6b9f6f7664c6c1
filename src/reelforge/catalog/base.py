"""What every published model has in common: the request base and the model spec."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from reelforge.catalog.fields import NegativePrompt, Prompt, Seed, StrictBool

FRAME_SIZES: dict[tuple[str, str], tuple[int, int]] = {
    ("720P", "16:9"): (1280, 720),
    ("720P", "9:16"): (720, 1280),
    ("1080P", "16:9"): (1920, 1080),
    ("1080P", "9:16"): (1080, 1920),
}
"""Output width and height in pixels by resolution and aspect ratio."""


class GenerationParams(BaseModel):
    """Fields shared by all Veo request schemas; subclasses add the model-specific ones.

    Unknown keys are ignored, as the published schemas allow additional properties; keys
    that belong to *another* published model are refused by the validator instead.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    prompt: Prompt
    negative_prompt: NegativePrompt | None = None
    seed: Seed | None = None
    enhance_prompt: StrictBool = True

    # Uniform accessors for models whose schema lacks the field.
    duration: int
    aspect_ratio: str = "16:9"

    @property
    def resolution_name(self) -> str:
        return "720P"

    @property
    def wants_audio(self) -> bool:
        return False

    def image_refs(self) -> dict[str, str]:
        """Input image references by field name (``image_url``, ``tail_image_url``)."""
        return {}


@dataclass(frozen=True)
class ModelSpec:
    """A published model: its schema, pricing and what kind of input it takes."""

    name: str
    title: str
    params_type: type[GenerationParams]
    input_kind: Literal["text", "image"]
    credits_per_second: int
    """Price of one second of output, in credits."""
    silent_credits_per_second: int | None = None
    """Price per second when ``generate_audio`` is false, for models that make audio."""

    IMAGE_FIELDS: ClassVar[tuple[str, ...]] = ("image_url", "tail_image_url")

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(self.params_type.model_fields) | {"model"}

    def credits(self, params: GenerationParams) -> int:
        rate = self.credits_per_second
        if not params.wants_audio and self.silent_credits_per_second is not None:
            rate = self.silent_credits_per_second
        return rate * params.duration

    def frame_size(
        self, params: GenerationParams, image_aspect: str | None = None
    ) -> tuple[int, int]:
        """Output size; ``aspect_ratio: auto`` follows ``image_aspect`` (the input image)."""
        aspect = params.aspect_ratio
        if aspect == "auto":
            aspect = image_aspect or "16:9"
        return FRAME_SIZES[(params.resolution_name, aspect)]
