"""Google's Veo requests to reelforge's, and back: model ids, inputs and parameters.

A Google model id stands for several catalogue models (the reverse of
``engines.google_models.DEFAULT_MODELS``); the inputs pick one: a video makes an
extension, reference images the reference-to-video model, a first and a last frame the
first-last model, one image the image-to-video model, none the text-to-video model.
A parameter the chosen model does not publish is a 400 naming it, except the two that
only restate Google's default (``personGeneration: allow_adult``, ``enhancePrompt:
true``), which are dropped. A resolution left out is Google's default, 720p.
"""

from __future__ import annotations

import re
from typing import Any

from reelforge.catalog import MODELS, ModelSpec
from reelforge.doors.google.protocol import Instance, Media, PredictRequest
from reelforge.engines.google_models import DEFAULT_MODELS
from reelforge.errors import InputError, InvalidRequest, NotFound

GOOGLE_MODELS: dict[str, tuple[str, ...]] = {}
"""Catalogue models by Google model id, in the catalogue's order."""
for _published, _google in DEFAULT_MODELS.items():
    GOOGLE_MODELS.setdefault(_google, ())
    GOOGLE_MODELS[_google] += (_published,)

INPUT_FIELDS = ("image_url", "last_image_url", "tail_image_url", "image_urls", "video_url")
"""Catalogue fields that carry inputs."""
PARAMETER_FIELDS = {
    "aspect_ratio": "aspectRatio",
    "duration_seconds": "durationSeconds",
    "resolution": "resolution",
    "negative_prompt": "negativePrompt",
    "person_generation": "personGeneration",
    "seed": "seed",
    "generate_audio": "generateAudio",
    "enhance_prompt": "enhancePrompt",
}
"""Google parameter (snake_case in ``Parameters``) by its wire name."""
CATALOGUE_FIELDS = {
    "aspect_ratio": "aspect_ratio",
    "duration_seconds": "duration",
    "resolution": "resolution",
    "negative_prompt": "negative_prompt",
    "person_generation": "person_generation",
    "seed": "seed",
    "generate_audio": "generate_audio",
    "enhance_prompt": "enhance_prompt",
}
GOOGLE_DEFAULT_RESOLUTION = "720p"
"""Google's default, where some published models default to 1080p."""
DEFAULTS_THAT_MAY_DROP = {"person_generation": "allow_adult", "enhance_prompt": True}
GOOGLE_NAMES = {
    **{CATALOGUE_FIELDS[name]: f"parameters.{wire}" for name, wire in PARAMETER_FIELDS.items()},
    "prompt": "instances[0].prompt",
    "image_url": "instances[0].image",
    "last_image_url": "instances[0].lastFrame",
    "tail_image_url": "instances[0].lastFrame",
    "image_urls": "instances[0].referenceImages",
    "video_url": "instances[0].video",
}
"""Where a catalogue field came from in Google's request, for error messages."""


def google_model_id(name: str) -> str:
    """``veo-3.1-generate-preview`` -> ``veo-3.1-generate-001`` where only the GA id is
    in the table; ``NOT_FOUND`` for a model reelforge does not serve."""
    if name in GOOGLE_MODELS:
        return name
    general = name.removesuffix("-preview") + "-001"
    if name.endswith("-preview") and general in GOOGLE_MODELS:
        return general
    raise NotFound(
        f"Publisher Model `publishers/google/models/{name[:100]}` is not served here; "
        f"reelforge serves {', '.join(GOOGLE_MODELS)} (and their -preview ids)"
    )


def _media_url(media: Media, where: str, kind: str) -> str:
    data, mime = media.bytes_base64_encoded, media.mime_type
    if media.inline_data is not None:
        data, mime = media.inline_data.data, media.inline_data.mime_type or mime
    if data:
        mime = mime or ("video/mp4" if kind == "video" else "image/png")
        return f"data:{mime};base64,{data}"
    if media.gcs_uri:
        raise InvalidRequest(
            f"{where}.gcsUri: reelforge cannot read Cloud Storage; send the {kind} inline "
            "as bytesBase64Encoded",
            where,
        )
    raise InvalidRequest(f"{where}: give bytesBase64Encoded (or inlineData)", where)


def _inputs(instance: Instance) -> dict[str, Any]:
    """The instance's inputs, by the role they play (catalogue field names; a last frame
    is ``last_image_url`` here and renamed for models that call it ``tail_image_url``)."""
    found: dict[str, Any] = {}
    if instance.image is not None:
        found["image_url"] = _media_url(instance.image, "instances[0].image", "image")
    if instance.last_frame is not None:
        found["last_image_url"] = _media_url(instance.last_frame, "instances[0].lastFrame", "image")
    if instance.reference_images:
        for index, reference in enumerate(instance.reference_images):
            if reference.reference_type.upper() != "ASSET":
                raise InvalidRequest(
                    f"instances[0].referenceImages[{index}].referenceType: only ASSET "
                    "references are offered (as on Veo 3.1)",
                    "instances[0].referenceImages",
                )
        found["image_urls"] = [
            _media_url(item.image, f"instances[0].referenceImages[{index}].image", "image")
            for index, item in enumerate(instance.reference_images)
        ]
    if instance.video is not None:
        found["video_url"] = _media_url(instance.video, "instances[0].video", "video")
    return found


def _fits(spec: ModelSpec, given: dict[str, Any]) -> dict[str, Any] | None:
    """``given`` under ``spec``'s field names, or ``None`` if it takes other inputs."""
    placed = dict(given)
    if "last_image_url" in placed and not spec.field("last_image_url"):
        placed["tail_image_url"] = placed.pop("last_image_url")
    offered = {name for name in INPUT_FIELDS if spec.field(name)}
    required = set(spec.params_type.model_json_schema().get("required", []))
    if not set(placed) <= offered or not (required & offered) <= set(placed):
        return None
    return placed


def catalogue_request(google_model: str, request: PredictRequest) -> tuple[ModelSpec, dict]:
    """The catalogue model and the ``Generations.submit`` body for one sample."""
    instance = request.instances[0]
    given = _inputs(instance)
    for name in GOOGLE_MODELS[google_model]:
        spec = MODELS[name]
        placed = _fits(spec, given)
        if placed is not None:
            break
    else:
        asked = ", ".join(GOOGLE_NAMES[name] for name in given) or "a prompt alone"
        raise InvalidRequest(f"{google_model} does not take {asked} on reelforge", None)
    if not instance.prompt or not instance.prompt.strip():
        raise InvalidRequest(
            f"instances[0].prompt is required (reelforge's {spec.name} needs one)",
            "instances[0].prompt",
        )
    parameters = request.parameters
    if parameters.storage_uri:
        raise InvalidRequest(
            "parameters.storageUri: reelforge keeps videos itself and answers them inline "
            "(or by download URI); leave storageUri out",
            "parameters.storageUri",
        )
    body: dict[str, Any] = {"model": spec.name, "prompt": instance.prompt, **placed}
    for name, field in CATALOGUE_FIELDS.items():
        value = getattr(parameters, name)
        if value is None:
            continue
        if not spec.field(field):
            if DEFAULTS_THAT_MAY_DROP.get(name) == value:
                continue
            raise InvalidRequest(
                f"parameters.{PARAMETER_FIELDS[name]} is not offered by {google_model} for "
                f"this input (reelforge model {spec.name})",
                f"parameters.{PARAMETER_FIELDS[name]}",
            )
        if name == "resolution":
            value = _in_models_case(spec, str(value))
        body[field] = value
    if "resolution" not in body and spec.field("resolution"):
        body["resolution"] = _in_models_case(spec, GOOGLE_DEFAULT_RESOLUTION)
    if request.webhook_config is not None and request.webhook_config.uris:
        body["webhook_url"] = request.webhook_config.uris[0]
    return spec, body


def _in_models_case(spec: ModelSpec, value: str) -> str:
    """Google writes ``720p``; some published models spell it ``720P``."""
    schema = spec.params_type.model_json_schema()["properties"].get("resolution", {})
    choices = schema.get("enum") or [
        choice for option in schema.get("anyOf", []) for choice in option.get("enum", [])
    ]
    for choice in choices:
        if str(choice).lower() == value.lower():
            return str(choice)
    return value


def google_message(error: InvalidRequest) -> InvalidRequest:
    """A catalogue validation error, naming Google's parameter instead of reelforge's."""
    field = error.field or ""
    google = GOOGLE_NAMES.get(field)
    if google is None:
        return error
    message = error.message.removeprefix("Body validation error: ")
    message = message.removeprefix(f"{field}: ")
    return InvalidRequest(f"{google}: {message}", google)


def google_input_message(error: InputError) -> InvalidRequest:
    """An input refused at submit (``image_url is not a supported image...``), naming
    where it was in Google's request."""
    field = re.match(r"[a-z_]+", error.message)
    google = GOOGLE_NAMES.get(field.group()) if field else None
    if field is None or google is None:
        return InvalidRequest(error.message, None)
    return InvalidRequest(google + error.message[field.end() :], google)
