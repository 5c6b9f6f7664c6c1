"""The request bodies of Veo's ``predictLongRunning``, as Vertex AI and the Gemini API
publish them (camelCase on the wire). Unknown names are refused, as Google does."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

MAX_SAMPLES = 4
"""Google's largest ``sampleCount`` for Veo."""
MAX_REFERENCE_IMAGES = 3


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


MIME_PATTERN = r"^[A-Za-z0-9.+-]{1,50}/[A-Za-z0-9.+-]{1,50}$"
INLINE_MARKERS = (b"bytesBase64Encoded", b"inlineData")
"""Names under which inline images and videos arrive (a large body must hold one)."""


class InlineData(_Wire):
    """The Gemini API's ``{inlineData: {mimeType, data}}`` form of inline bytes."""

    mime_type: str | None = Field(default=None, pattern=MIME_PATTERN)
    data: str


class Media(_Wire):
    """An image or video: inline bytes (Base64, either spelling) or a Cloud Storage URI."""

    bytes_base64_encoded: str | None = None
    inline_data: InlineData | None = None
    gcs_uri: str | None = None
    mime_type: str | None = Field(default=None, pattern=MIME_PATTERN)


class ReferenceImage(_Wire):
    image: Media
    reference_type: Literal["ASSET", "asset", "STYLE", "style"] = "ASSET"


class Instance(_Wire):
    prompt: str | None = None
    image: Media | None = None
    last_frame: Media | None = None
    video: Media | None = None
    reference_images: Annotated[list[ReferenceImage], Field(max_length=MAX_REFERENCE_IMAGES)] = []


class Parameters(_Wire):
    aspect_ratio: str | None = None
    duration_seconds: int | None = None
    resolution: str | None = None
    negative_prompt: str | None = None
    person_generation: str | None = None
    seed: int | None = None
    sample_count: Annotated[int, Field(ge=1, le=MAX_SAMPLES)] = 1
    generate_audio: bool | None = None
    enhance_prompt: bool | None = None
    storage_uri: str | None = None


class WebhookConfig(_Wire):
    uris: Annotated[list[str], Field(max_length=1)] = []
    user_metadata: dict[str, object] | None = None


class PredictRequest(_Wire):
    instances: Annotated[list[Instance], Field(min_length=1, max_length=1)]
    parameters: Parameters = Parameters()
    webhook_config: WebhookConfig | None = None


class FetchRequest(_Wire):
    operation_name: Annotated[str, Field(max_length=500)]
