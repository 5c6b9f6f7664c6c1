"""How the ``google`` engine maps each published model onto Google's Veo (Vertex AI).

=============================================  ==============================
published model                                Google model (default)
=============================================  ==============================
``veo2``, ``veo2/image-to-video``              ``veo-2.0-generate-001``
``google/veo3``, ``google/veo-3.0-i2v``        ``veo-3.0-generate-001``
``google/veo-3.0-fast``, ``-i2v-fast``         ``veo-3.0-fast-generate-001``
``google/veo-3.1-t2v``, ``-i2v``,              ``veo-3.1-generate-001``
first-last, reference-to-video, extend
the same ``-fast`` models                      ``veo-3.1-fast-generate-001``
``google/veo-3-1-lite-generate-preview``       ``veo-3.1-lite-generate-preview``
``veo-3.1-lite-generate-001``                  ``veo-3.1-lite-generate-001``
=============================================  ==============================

Parameters (google-genai ``GenerateVideosSource`` / ``GenerateVideosConfig``):
``prompt``; ``image_url`` -> ``source.image``; ``last_image_url`` / ``tail_image_url`` ->
``config.last_frame``; ``image_urls`` -> ``config.reference_images`` (``ASSET``
references); ``video_url`` -> ``source.video`` (the fetched bytes); ``duration`` ->
``duration_seconds``; ``aspect_ratio`` (left to Google for an extension with ``auto``);
``negative_prompt``, ``seed``; ``enhance_prompt`` only for models that publish it;
``generate_audio`` and ``resolution`` (``720p``/``1080p``) for Veo 3 and later;
``person_generation``. ``auto_fix`` and ``provider`` are the AI/ML API's own routing and
rewriting switches: Google has no such thing, and they are not sent.

What Google does not offer is refused before anything is paid for: reference images on
any model but Veo 3.1 (not Fast, not Lite); extension on Veo 2, 3.0 and Lite; a last
frame on Veo 3.0, or without a first frame; an input video longer than 30 s (Vertex AI
extends videos of 1 to 30 seconds).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reelforge.catalog import MODELS
from reelforge.engines.base import INPUT_KINDS, GenerationRequest, Inputs
from reelforge.engines.upstream import encode_image
from reelforge.errors import EngineError
from reelforge.media.videos import video_mime

if TYPE_CHECKING:
    from google.genai import types as genai_types

VEO_31 = "veo-3.1-generate-001"
VEO_31_FAST = "veo-3.1-fast-generate-001"
DEFAULT_MODELS: dict[str, str] = {
    "veo2": "veo-2.0-generate-001",
    "veo2/image-to-video": "veo-2.0-generate-001",
    "google/veo-3.0-i2v": "veo-3.0-generate-001",
    "google/veo3": "veo-3.0-generate-001",
    "google/veo-3.0-fast": "veo-3.0-fast-generate-001",
    "google/veo-3.0-i2v-fast": "veo-3.0-fast-generate-001",
    "google/veo-3.1-t2v": VEO_31,
    "google/veo-3.1-t2v-fast": VEO_31_FAST,
    "google/veo-3.1-i2v": VEO_31,
    "google/veo-3.1-i2v-fast": VEO_31_FAST,
    "google/veo-3.1-first-last-image-to-video": VEO_31,
    "google/veo-3.1-first-last-image-to-video-fast": VEO_31_FAST,
    "google/veo-3.1-reference-to-video": VEO_31,
    "google/veo3-1-extend-video": VEO_31,
    "google/veo3-1-fast-extend-video": VEO_31_FAST,
    "google/veo-3-1-lite-generate-preview": "veo-3.1-lite-generate-preview",
    "veo-3.1-lite-generate-001": "veo-3.1-lite-generate-001",
}
"""Google model id by published model (``REELFORGE_GOOGLE_MODELS`` overrides any)."""

MAX_EXTEND_SECONDS = 30.0
"""Longest video Vertex AI extends."""

_FAMILY_INPUTS: tuple[tuple[str, frozenset[str]], ...] = (
    ("veo-2.", frozenset({"text", "image", "last_frame"})),
    ("veo-3.0-", frozenset({"text", "image"})),
    ("veo-3.1-lite-", frozenset({"text", "image", "last_frame"})),
    ("veo-3.1-fast-", frozenset({"text", "image", "last_frame", "video"})),
    ("veo-3.1-", frozenset(INPUT_KINDS)),
)
"""What each Veo generation takes on Vertex AI, by model id prefix (longest first)."""


def inputs_for(google_model: str | None) -> frozenset[str]:
    """Input kinds Google offers on ``google_model``; an id we do not know gets every
    kind (the operator chose it; Google's answer will say what it refuses)."""
    name = (google_model or "").rsplit("/", 1)[-1]
    for prefix, kinds in _FAMILY_INPUTS:
        if name.startswith(prefix):
            return kinds
    return frozenset(INPUT_KINDS)


def is_veo3_or_later(google_model: str) -> bool:
    """Veo 3 and later take ``generateAudio`` and ``resolution``; Veo 2 refuses them."""
    name = google_model.rsplit("/", 1)[-1]
    return name.startswith("veo-") and not name.startswith("veo-2")


def request_parts(
    request: GenerationRequest, inputs: Inputs, google_model: str
) -> tuple[genai_types.GenerateVideosSource, genai_types.GenerateVideosConfig]:
    """The SDK's ``source`` and ``config`` for ``request`` on ``google_model``."""
    from google.genai import types

    _refuse_what_google_lacks(request, inputs, google_model)

    def image(picture: Any) -> types.Image:
        data, mime = encode_image(picture)
        return types.Image(image_bytes=data, mime_type=mime)

    spec = MODELS.get(request.model)
    published = spec.fields if spec is not None else frozenset()
    params = request.params
    veo3 = is_veo3_or_later(google_model)
    extending = inputs.video is not None
    aspect: str | None = request.aspect_ratio
    if extending and params.get("aspect_ratio", "auto") == "auto":
        aspect = None  # Google follows the input video
    references = [
        types.VideoGenerationReferenceImage(image=image(picture), reference_type="ASSET")
        for picture in inputs.references
    ]
    person = params.get("person_generation")
    config = types.GenerateVideosConfig(
        number_of_videos=1,
        duration_seconds=request.duration_seconds,
        aspect_ratio=aspect,
        negative_prompt=request.negative_prompt or None,
        seed=request.seed,
        enhance_prompt=request.enhance_prompt if "enhance_prompt" in published else None,
        generate_audio=request.generate_audio if veo3 else None,
        resolution=request.resolution.lower() if veo3 else None,
        person_generation=str(person) if person else None,
        last_frame=image(inputs.last_frame) if inputs.last_frame is not None else None,
        reference_images=references or None,
    )
    video = None
    if inputs.video is not None:
        path = inputs.video.path
        video = types.Video(video_bytes=path.read_bytes(), mime_type=video_mime(path))
    source = types.GenerateVideosSource(
        prompt=request.original_prompt or request.prompt,
        image=image(inputs.image) if inputs.image is not None else None,
        video=video,
    )
    return source, config


def _refuse_what_google_lacks(
    request: GenerationRequest, inputs: Inputs, google_model: str
) -> None:
    if inputs.last_frame is not None and inputs.image is None:
        raise EngineError(
            f"Google's {google_model} needs a first frame to use a last frame; send "
            "image_url with last_image_url, or the operator can route "
            f"'{request.model}' to another engine"
        )
    video = inputs.video
    if video is not None and video.duration_seconds > MAX_EXTEND_SECONDS:
        raise EngineError(
            f"Google extends videos of at most {MAX_EXTEND_SECONDS:g} seconds; video_url is "
            f"{video.duration_seconds:.1f} s"
        )
