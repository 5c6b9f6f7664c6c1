"""The OpenAI Videos API (``/v1/videos``) as a second front door on the same jobs.

Each request is translated into the AI/ML API request of a reelforge model and goes
through ``Generations`` like any other, so keys, limits, credits, validation, engines and
storage are shared, and one generation is visible through both APIs:

* ids: a job ``<uuid>:<model>`` is the video ``video_<uuid as 32 hex digits>``; the model
  is found again among the catalogue's (one indexed query);
* ``model``: a reelforge model id, or an OpenAI name mapped by ``REELFORGE_OPENAI_MODELS``
  (default ``sora-2=google/veo-3.1-t2v-fast,sora-2-pro=google/veo-3.1-t2v``: Veo 3.1
  makes 4, 6 and 8 s, so Sora's ``"4"`` and ``"8"`` work as sent); with an
  ``input_reference`` a text-to-video model is swapped for its image-to-video sibling;
* ``seconds`` and ``size`` become ``duration``, ``aspect_ratio`` and ``resolution``;
  left out, they are OpenAI's defaults (``"4"``, ``"720x1280"``) where the model makes
  them. Sora Pro's ``1024x1792`` and ``1792x1024`` are made as the model's 1080p frame of
  the same orientation; a value the model cannot make (Sora's ``"12"`` on Veo 3.1, whose
  longest is 8 s) is a 400 naming the values it can, never a silently shorter video.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from reelforge.catalog import MODELS, ModelSpec
from reelforge.catalog.base import FRAME_SIZES
from reelforge.documents import expiry
from reelforge.errors import ConfigurationError, InvalidRequest, NotFound, snake_case
from reelforge.generations import Generations, Submitted
from reelforge.jobs import JobRecord, JobStatus, Principal
from reelforge.jobs.store import Page, encode_cursor
from reelforge.settings import Settings
from reelforge.storage.layout import SPRITESHEET_FILE_NAME, THUMBNAIL_FILE_NAME, beside_video

VIDEO_ID_PREFIX = "video_"
OPENAI_FLAVOUR = "openai"
"""``info["api"]`` of jobs made here: their webhooks are OpenAI's thin events."""
DEFAULT_MODEL = "sora-2"
DEFAULT_SECONDS = 4
DEFAULT_SIZE = "720x1280"
"""OpenAI's defaults for ``seconds`` and ``size``, used where the model makes them."""
SIZE_STAND_INS = {"1024x1792": "1080x1920", "1792x1024": "1920x1080"}
"""Sora Pro's tall and wide sizes, made as the 1080p frame of the same orientation."""
IMAGE_SIBLINGS = {
    "veo2": "veo2/image-to-video",
    "google/veo3": "google/veo-3.0-i2v",
    "google/veo-3.0-fast": "google/veo-3.0-i2v-fast",
    "google/veo-3.1-t2v": "google/veo-3.1-i2v",
    "google/veo-3.1-t2v-fast": "google/veo-3.1-i2v-fast",
}
"""Text-to-video models and the image-to-video model that takes an ``input_reference``."""

STATUSES = {
    JobStatus.QUEUED: "queued",
    JobStatus.GENERATING: "in_progress",
    JobStatus.COMPLETED: "completed",
    JobStatus.ERROR: "failed",
}
Variant = Literal["video", "thumbnail", "spritesheet"]
VARIANT_FILES: dict[str, str | None] = {
    "video": None,
    "thumbnail": THUMBNAIL_FILE_NAME,
    "spritesheet": SPRITESHEET_FILE_NAME,
}


@dataclass(frozen=True)
class Reference:
    """An ``input_reference``: uploaded bytes or an image URL."""

    data: bytes | None = None
    mime: str | None = None
    url: str | None = None

    def as_image_url(self) -> str:
        if self.url is not None:
            return self.url
        encoded = base64.b64encode(self.data or b"").decode("ascii")
        return f"data:{self.mime or 'image/png'};base64,{encoded}"


def video_id(job_id: str) -> str:
    return VIDEO_ID_PREFIX + uuid.UUID(job_id.split(":", 1)[0]).hex


def job_ids(video: str) -> list[str]:
    """The job ids ``video`` may stand for (one per model); ``NotFound`` if malformed."""
    try:
        job_uuid = uuid.UUID(hex=video.removeprefix(VIDEO_ID_PREFIX))
    except ValueError:
        raise NotFound(f"Video {video[:80]} not found") from None
    if not video.startswith(VIDEO_ID_PREFIX):
        raise NotFound(f"Video {video[:80]} not found")
    return [f"{job_uuid}:{model}" for model in MODELS]


def check_model_map(mapping: Mapping[str, str]) -> None:
    """At start-up: every mapped name must lead to a catalogue model."""
    for name, target in mapping.items():
        if target not in MODELS:
            raise ConfigurationError(
                f"REELFORGE_OPENAI_MODELS maps {name} to {target}, which is not a model; "
                f"choose one of {', '.join(MODELS)}"
            )


def _enum(spec: ModelSpec, field: str) -> list[Any]:
    schema = spec.params_type.model_json_schema()["properties"].get(field, {})
    if "enum" in schema:
        return list(schema["enum"])
    for option in schema.get("anyOf", []):
        if "enum" in option:
            return list(option["enum"])
    return []


def sizes(spec: ModelSpec) -> dict[str, dict[str, str]]:
    """``WxH`` sizes the model makes, each with the request fields that ask for it."""
    aspects = [a for a in _enum(spec, "aspect_ratio") if a != "auto"] or ["16:9"]
    resolutions = _enum(spec, "resolution") or [None]
    found: dict[str, dict[str, str]] = {}
    for resolution in resolutions:
        for aspect in aspects:
            width, height = FRAME_SIZES[((resolution or "720P").upper(), aspect)]
            fields = {"aspect_ratio": aspect} if spec.field("aspect_ratio") else {}
            if resolution is not None:
                fields["resolution"] = resolution
            found.setdefault(f"{width}x{height}", fields)
    return found


def durations(spec: ModelSpec) -> list[int]:
    return [int(value) for value in _enum(spec, "duration")]


class OpenAIVideos:
    def __init__(self, settings: Settings, generations: Generations) -> None:
        check_model_map(settings.openai_models)
        self._models = dict(settings.openai_models)
        self._generations = generations
        self._settings = settings

    def model_for(self, name: object, with_reference: bool) -> ModelSpec:
        if name is None:
            name = DEFAULT_MODEL
        if not isinstance(name, str) or not (name in self._models or name in MODELS):
            known = ", ".join([*self._models, *MODELS])
            raise InvalidRequest(f"model must be one of {known}", "model")
        target = self._models.get(name, name)
        if with_reference:
            target = IMAGE_SIBLINGS.get(target, target)
            if not MODELS[target].field("image_url"):
                raise InvalidRequest(f"model {name} does not take an input_reference", "model")
        return MODELS[target]

    def create(
        self,
        fields: Mapping[str, object],
        reference: Reference | None,
        principal: Principal,
        *,
        idempotency_key: str | None = None,
    ) -> Submitted:
        """Queue a video from the OpenAI request ``fields`` (a repeated ``idempotency_key``
        replays the first, as on ``/v2``); raises ``InvalidRequest`` naming the OpenAI
        parameter."""
        prompt = fields.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise InvalidRequest("prompt is required", "prompt")
        requested = fields.get("model")
        spec = self.model_for(requested, reference is not None)
        body: dict[str, Any] = {"model": spec.name, "prompt": prompt}
        seconds = fields.get("seconds")
        if seconds is None and DEFAULT_SECONDS in durations(spec):
            seconds = str(DEFAULT_SECONDS)
        if seconds is not None:
            allowed = durations(spec)
            text = str(seconds).strip()
            if not text.isdigit() or (allowed and int(text) not in allowed):
                choices = ", ".join(f'"{value}"' for value in allowed)
                made_by = (
                    f" (made by {spec.name}, whose longest video is {max(allowed)} s)"
                    if allowed and spec.name != (requested or DEFAULT_MODEL)
                    else ""
                )
                raise InvalidRequest(
                    f"seconds must be one of {choices} for model "
                    f"{requested or DEFAULT_MODEL}{made_by}",
                    "seconds",
                )
            body["duration"] = int(text)
        size = fields.get("size")
        made = sizes(spec)
        if size is None and DEFAULT_SIZE in made:
            size = DEFAULT_SIZE
        if size is not None:
            if isinstance(size, str) and size not in made:
                size = SIZE_STAND_INS.get(size, size)
            if not isinstance(size, str) or size not in made:
                raise InvalidRequest(
                    f"size must be one of {', '.join(made)} for model {requested or DEFAULT_MODEL}",
                    "size",
                )
            body.update(made[size])
        if reference is not None:
            body["image_url"] = reference.as_image_url()
        info = {"openai_model": requested or DEFAULT_MODEL, "api": OPENAI_FLAVOUR}
        try:
            return self._generations.submit(
                body, principal, idempotency_key=idempotency_key, info=info
            )
        except InvalidRequest as error:
            raise InvalidRequest(error.message, _openai_param(error.field)) from None

    def get(self, video: str, principal: Principal) -> JobRecord:
        return self._generations.get_one_of(job_ids(video), principal, f"Video {video[:80]}")

    def list(self, principal: Principal, *, after: str | None, limit: int, order: str) -> Page:
        if order not in ("asc", "desc"):
            raise InvalidRequest("order must be one of 'asc', 'desc'", "order")
        cursor = encode_cursor(self.get(after, principal)) if after else None
        return self._generations.list(
            principal, limit=limit, after=cursor, oldest_first=order == "asc"
        )

    def delete(self, video: str, principal: Principal) -> str:
        job = self.get(video, principal)
        self._generations.delete(job.id, principal)
        return job.id

    def remix(
        self,
        video: str,
        prompt: object,
        principal: Principal,
        *,
        idempotency_key: str | None = None,
    ) -> Submitted:
        source = self.get(video, principal)
        if not isinstance(prompt, str) or not prompt.strip():
            raise InvalidRequest("prompt is required", "prompt")
        info = {
            "openai_model": source.info.get("openai_model", source.model),
            "api": OPENAI_FLAVOUR,
        }
        try:
            return self._generations.remix(
                source, prompt, principal, info, idempotency_key=idempotency_key
            )
        except InvalidRequest as error:
            raise InvalidRequest(error.message, _openai_param(error.field)) from None

    def content_key(self, video: str, variant: str, principal: Principal) -> str:
        """The storage key of a finished video's ``variant``."""
        if variant not in VARIANT_FILES:
            raise InvalidRequest(f"variant must be one of {', '.join(VARIANT_FILES)}", "variant")
        job = self.get(video, principal)
        if job.status is not JobStatus.COMPLETED or job.video_key is None:
            raise InvalidRequest(
                f"video {video} is {STATUSES[job.status]}; its content is available once "
                "it is completed",
                "video_id",
            )
        name = VARIANT_FILES[variant]
        if name is None:
            return job.video_key
        if not job.info.get("posters"):
            raise NotFound(f"video {video} has no {variant} (it was made without posters)")
        return beside_video(job.video_key, name)

    def present(self, job: JobRecord) -> dict[str, Any]:
        """The OpenAI video object of ``job``."""
        spec = MODELS[job.model]
        width, height = job.info.get("width"), job.info.get("height")
        if not (width and height):
            params = spec.params_type.model_validate(job.params)
            width, height = spec.frame_size(params) if params.aspect != "auto" else (0, 0)
        error = None
        if job.status is JobStatus.ERROR:
            error = {
                "code": snake_case(job.error_name or "Error"),
                "message": job.error_message or "",
            }
        expires = expiry(job, self._settings.retention_hours)
        remixed_from = job.info.get("remixed_from")
        return {
            "id": video_id(job.id),
            "object": "video",
            "model": job.info.get("openai_model", job.model),
            "status": STATUSES[job.status],
            "progress": 100 if job.status is JobStatus.COMPLETED else int(job.progress * 100),
            "created_at": int(job.created_at.timestamp()),
            "completed_at": int(job.completed_at.timestamp()) if job.completed_at else None,
            "expires_at": int(expires.timestamp()) if expires else None,
            "seconds": str(job.params.get("duration", "")),
            "size": f"{width}x{height}" if width else None,
            "prompt": job.params.get("prompt"),
            "remixed_from_video_id": video_id(remixed_from) if remixed_from else None,
            "error": error,
        }


def _openai_param(field: str | None) -> str | None:
    """A reelforge field named in an error, as the OpenAI parameter it came from."""
    return {
        "duration": "seconds",
        "aspect_ratio": "size",
        "resolution": "size",
        "image_url": "input_reference",
    }.get(field or "", field)
