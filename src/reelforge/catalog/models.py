"""The published Veo models, as data: one declaration per model, fields in the order of
its published schema (``tests/specs/<model>.json``; ``tests/unit/test_catalog_specs.py``
checks every declaration against its spec, so the two cannot drift).

Adding a model is one entry here. A field that is new to the catalogue gets a descriptor
below (its type in ``fields.py``); a new kind of input also needs a ``role`` the worker
loads (``worker/inputs.py``) and engines that declare it in their ``capabilities``.

Differences between the specs that matter: Veo 3.1 spells ``resolution`` lower-case
(``720p``) and defaults to ``1080p``, except ``veo-3.1-lite-generate-001`` (``720P``);
``veo-3.1-i2v`` and the first-last models have no ``seed``, ``negative_prompt`` or
``enhance_prompt``; reference-to-video has no ``aspect_ratio`` and only 8 s; extension
only 7 s at ``720p`` with ``aspect_ratio`` ``auto`` by default; ``auto_fix`` defaults to
true for text-to-video and false for extension.
"""

from __future__ import annotations

from reelforge.catalog.base import REQUIRED, DurationWhen, FieldSpec, ModelSpec, Price, declare
from reelforge.catalog.fields import (
    ImageRef,
    ImageRefs,
    NegativePrompt,
    Prompt,
    Provider,
    Seed,
    StrictBool,
    VideoRef,
    enum_of,
    int_enum_of,
)


def duration(*allowed: int, default: int) -> FieldSpec:
    return FieldSpec("duration", int_enum_of(*allowed), default)


def aspect_ratio(*allowed: str, default: str) -> FieldSpec:
    return FieldSpec("aspect_ratio", enum_of(*allowed), default)


def resolution(*allowed: str, default: str) -> FieldSpec:
    return FieldSpec("resolution", enum_of(*allowed), default)


PROMPT = FieldSpec("prompt", Prompt)
NEGATIVE_PROMPT = FieldSpec("negative_prompt", NegativePrompt | None, None)
SEED = FieldSpec("seed", Seed | None, None)
ENHANCE_PROMPT = FieldSpec("enhance_prompt", StrictBool, True, hint=True)
GENERATE_AUDIO = FieldSpec("generate_audio", StrictBool, True)
AUTO_FIX = FieldSpec("auto_fix", StrictBool, True, hint=True)
PROVIDER = FieldSpec("provider", Provider | None, None, hint=True)
PERSON_GENERATION = FieldSpec(
    "person_generation", enum_of("dont_allow", "allow_adult"), "allow_adult"
)
IMAGE_URL = FieldSpec("image_url", ImageRef, REQUIRED, role="image")
TAIL_IMAGE_URL = FieldSpec("tail_image_url", ImageRef | None, None, role="last_frame")
LAST_IMAGE_URL = FieldSpec("last_image_url", ImageRef, REQUIRED, role="last_frame")
IMAGE_URLS = FieldSpec("image_urls", ImageRefs, REQUIRED, role="references")
VIDEO_URL = FieldSpec("video_url", VideoRef, REQUIRED, role="video")

ASPECT = aspect_ratio("16:9", "9:16", default="16:9")
VEO2_DURATION = duration(5, 6, 7, 8, default=5)
VEO3_DURATION = duration(4, 6, 8, default=8)
UPPER_720 = resolution("720P", "1080P", default="720P")
LOWER_1080 = resolution("720p", "1080p", default="1080p")

VEO2_FIELDS = (PROMPT, VEO2_DURATION, ASPECT, NEGATIVE_PROMPT, SEED, ENHANCE_PROMPT)
VEO3_TEXT = (
    PROMPT,
    VEO3_DURATION,
    ASPECT,
    UPPER_720,
    NEGATIVE_PROMPT,
    SEED,
    ENHANCE_PROMPT,
    GENERATE_AUDIO,
)
VEO3_IMAGE = (PROMPT, IMAGE_URL, *VEO3_TEXT[1:])
VEO31_TEXT = (
    PROMPT,
    ASPECT,
    VEO3_DURATION,
    LOWER_1080,
    GENERATE_AUDIO,
    SEED,
    AUTO_FIX,
    NEGATIVE_PROMPT,
    ENHANCE_PROMPT,
    PROVIDER,
)
VEO31_IMAGE = (PROMPT, IMAGE_URL, ASPECT, VEO3_DURATION, LOWER_1080, GENERATE_AUDIO, PROVIDER)
VEO31_FIRST_LAST = (
    PROMPT,
    IMAGE_URL,
    LAST_IMAGE_URL,
    ASPECT,
    VEO3_DURATION,
    LOWER_1080,
    GENERATE_AUDIO,
    PROVIDER,
)
VEO31_REFERENCE = (
    PROMPT,
    IMAGE_URLS,
    duration(8, default=8),
    LOWER_1080,
    GENERATE_AUDIO,
    PROVIDER,
)
VEO31_EXTEND = (
    PROMPT,
    VIDEO_URL,
    aspect_ratio("auto", "16:9", "9:16", default="auto"),
    duration(7, default=7),
    resolution("720p", default="720p"),
    GENERATE_AUDIO,
    AUTO_FIX.with_default(False),
    PROVIDER,
)
LITE_PREVIEW = (
    PROMPT,
    IMAGE_URL.optional(),
    LAST_IMAGE_URL.optional(),
    ASPECT,
    LOWER_1080,
    VEO3_DURATION,
    GENERATE_AUDIO,
    PROVIDER,
)
LITE_001 = (
    PROMPT,
    IMAGE_URL.optional(),
    LAST_IMAGE_URL.optional(),
    ASPECT,
    UPPER_720,
    VEO3_DURATION,
    GENERATE_AUDIO,
    PERSON_GENERATION,
)

# Prices: credits per second (README "Prices"); operators override them with `prices`.
VEO2_PRICE = Price(105_000)
VEO3_PRICE = Price(168_000, 105_000)
VEO3_FAST_PRICE = Price(84_000, 52_500)
VEO31_PRICE = Price(84_000, 42_000)
VEO31_FAST_PRICE = Price(31_500, 21_000)
VEO31_LITE_PRICE = Price(10_500)

CATALOGUE: tuple[ModelSpec, ...] = (
    declare("veo2", "Veo 2 (text-to-video)", "text", VEO2_FIELDS, VEO2_PRICE),
    declare(
        "veo2/image-to-video",
        "Veo 2 (image-to-video)",
        "image",
        # `auto` (follow the image) is accepted too, as the published request example sends.
        (
            PROMPT,
            IMAGE_URL,
            TAIL_IMAGE_URL,
            VEO2_DURATION,
            aspect_ratio("16:9", "9:16", "auto", default="16:9"),
            NEGATIVE_PROMPT,
            SEED,
            ENHANCE_PROMPT,
        ),
        VEO2_PRICE,
    ),
    declare(
        "google/veo-3.0-i2v", "Veo 3 (image-to-video, with audio)", "image", VEO3_IMAGE, VEO3_PRICE
    ),
    declare("google/veo3", "Veo 3 (text-to-video, with audio)", "text", VEO3_TEXT, VEO3_PRICE),
    declare(
        "google/veo-3.0-fast",
        "Veo 3 Fast (text-to-video, with audio)",
        "text",
        VEO3_TEXT,
        VEO3_FAST_PRICE,
    ),
    declare(
        "google/veo-3.0-i2v-fast",
        "Veo 3 Fast (image-to-video, with audio)",
        "image",
        VEO3_IMAGE,
        VEO3_FAST_PRICE,
    ),
    declare(
        "google/veo-3.1-t2v", "Veo 3.1 (text-to-video, with audio)", "text", VEO31_TEXT, VEO31_PRICE
    ),
    declare(
        "google/veo-3.1-t2v-fast",
        "Veo 3.1 Fast (text-to-video, with audio)",
        "text",
        VEO31_TEXT,
        VEO31_FAST_PRICE,
    ),
    declare(
        "google/veo-3.1-i2v",
        "Veo 3.1 (image-to-video, with audio)",
        "image",
        VEO31_IMAGE,
        VEO31_PRICE,
    ),
    declare(
        "google/veo-3.1-i2v-fast",
        "Veo 3.1 Fast (image-to-video, with audio)",
        "image",
        VEO31_IMAGE,
        VEO31_FAST_PRICE,
    ),
    declare(
        "google/veo-3.1-first-last-image-to-video",
        "Veo 3.1 (first and last frame, with audio)",
        "first-last frames",
        VEO31_FIRST_LAST,
        VEO31_PRICE,
    ),
    declare(
        "google/veo-3.1-first-last-image-to-video-fast",
        "Veo 3.1 Fast (first and last frame, with audio)",
        "first-last frames",
        VEO31_FIRST_LAST,
        VEO31_FAST_PRICE,
    ),
    declare(
        "google/veo-3.1-reference-to-video",
        "Veo 3.1 (reference images to video, with audio)",
        "reference images",
        VEO31_REFERENCE,
        VEO31_PRICE,
    ),
    declare(
        "google/veo3-1-extend-video",
        "Veo 3.1 (extend a video by 7 s, with audio)",
        "video",
        VEO31_EXTEND,
        VEO31_PRICE,
    ),
    declare(
        "google/veo3-1-fast-extend-video",
        "Veo 3.1 Fast (extend a video by 7 s, with audio)",
        "video",
        VEO31_EXTEND,
        VEO31_FAST_PRICE,
    ),
    declare(
        "google/veo-3-1-lite-generate-preview",
        "Veo 3.1 Lite preview (text, or first and/or last frame, with audio)",
        "text or frames",
        LITE_PREVIEW,
        VEO31_LITE_PRICE,
        # Its spec: "When using last_image_url, the duration can only be 8s."
        rules=(DurationWhen("last_image_url", (8,)),),
    ),
    declare(
        "veo-3.1-lite-generate-001",
        "Veo 3.1 Lite (text, or first and/or last frame, with audio)",
        "text or frames",
        LITE_001,
        VEO31_LITE_PRICE,
    ),
)
"""Every published model, in the order listings show them."""
