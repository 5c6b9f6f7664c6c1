"""What clients see of a job: the documents of the API, of webhooks and live events.

Published fields (``id``, ``status``, ``video``, ``error``, ``meta``) keep their names
and meaning. Additions (``model``, timestamps, ``progress``, ``stage``, ``seed``) are
extra fields, which the published schema permits. One place builds them, so a GET, a
list entry, a live event and a webhook always say the same thing about a job.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from reelforge.catalog import CREDITS_PER_USD
from reelforge.errors import ServiceUnavailable
from reelforge.jobs import JobRecord, JobStatus
from reelforge.settings import Settings
from reelforge.storage import Storage
from reelforge.storage.layout import THUMBNAIL_FILE_NAME, beside_video
from reelforge.storage.signing import UrlSigner

log = logging.getLogger(__name__)

FILES_PREFIX = "/files/"


class Video(BaseModel):
    url: str = Field(description="Absolute URL of the MP4; supports HTTP Range.")
    content_type: str = "video/mp4"
    file_name: str
    file_size: int = Field(description="Size in bytes, equal to the bytes served.")
    width: int | None = None
    height: int | None = None
    duration: int | float | None = Field(
        default=None,
        description="Seconds; an extension's video holds its input followed by the new seconds.",
    )
    thumbnail_url: str | None = Field(
        default=None,
        description="A JPEG of the first frame (reelforge extension), served like the video.",
    )


class ErrorInfo(BaseModel):
    name: str
    message: str


class Usage(BaseModel):
    credits_used: int
    usd_spent: float = Field(
        description="credits_used in US dollars, at the AI/ML API's 2,000,000 credits per dollar."
    )


class Meta(BaseModel):
    usage: Usage | None = None
    engine: str | None = Field(
        default=None,
        description="The engine that made the video (reelforge extension; a route's name "
        "for the instance that completed it).",
    )


class GenerationCreated(BaseModel):
    id: str = Field(description="Generation id, `<uuid>:<model>`.")
    status: JobStatus
    warnings: list[str] | None = Field(
        default=None,
        description="What was accepted but ignored, e.g. an unknown field and the closest "
        "known one (reelforge extension; absent when nothing was).",
    )


class Generation(BaseModel):
    id: str
    status: JobStatus
    video: Video | None = None
    error: ErrorInfo | None = None
    meta: Meta | None = None
    model: str
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    progress: float = Field(description="Percent done, 0-100.")
    stage: str | None = None
    seed: int = Field(description="Seed used; reuse it to reproduce the video.")
    prompt: str | None = Field(
        default=None, description="The prompt as the request gave it (reelforge extension)."
    )
    prompt_used: str | None = Field(
        default=None, description="The prompt the engine received (after enhancement)."
    )
    engine: str | None = Field(default=None, description="The engine that made the video.")
    expires_at: datetime | None = Field(
        default=None,
        description="When the video is (or was) deleted; its URL answers 410 Gone after.",
    )
    video_expired: bool = Field(
        default=False,
        description="True once retention deleted the video: `video` is then null (the "
        "status stays `completed`); generate it again for a new one.",
    )


class GenerationList(BaseModel):
    """A page of the caller's generations (reelforge extension), newest first."""

    data: list[Generation]
    has_more: bool
    next_cursor: str | None = Field(
        default=None, description="Pass as `after` to get the next page."
    )


def present(
    job: JobRecord,
    video_url: str | None,
    retention_hours: float = 0.0,
    thumbnail_url: str | None = None,
) -> Generation:
    """The GET document; ``retention_hours`` says when a finished video expires."""
    video = None
    expired = job.video_expired_at is not None
    if job.status is JobStatus.COMPLETED and job.video_key and video_url and not expired:
        video = Video(
            url=video_url,
            file_name=job.video_key.rsplit("/", 1)[-1],
            file_size=job.video_size or 0,
            width=job.info.get("width"),
            height=job.info.get("height"),
            duration=job.info.get("duration"),
            thumbnail_url=thumbnail_url,
        )
    error = None
    if job.status is JobStatus.ERROR:
        error = ErrorInfo(name=job.error_name or "Error", message=job.error_message or "")
    meta = None
    if job.status.is_final:
        charged = job.credits if job.status is JobStatus.COMPLETED else 0
        meta = Meta(usage=Usage(credits_used=charged, usd_spent=charged / CREDITS_PER_USD))
        if job.status is JobStatus.COMPLETED:
            meta.engine = job.info.get("engine")
    return Generation(
        id=job.id,
        status=job.status,
        video=video,
        error=error,
        meta=meta,
        model=job.model,
        created_at=job.created_at,
        started_at=job.started_at,
        completed_at=job.completed_at,
        progress=round(job.progress * 100, 1),
        stage=job.stage,
        seed=job.seed,
        prompt=_text(job.params.get("prompt")),
        prompt_used=job.info.get("prompt_used"),
        engine=job.info.get("engine"),
        expires_at=expiry(job, retention_hours),
        video_expired=expired,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def expiry(job: JobRecord, retention_hours: float) -> datetime | None:
    if job.video_expired_at is not None:
        return job.video_expired_at
    if job.status is JobStatus.COMPLETED and job.completed_at and retention_hours > 0:
        return job.completed_at + timedelta(hours=retention_hours)
    return None


def video_url(
    base_url: str,
    settings: Settings,
    storage: Storage,
    job: JobRecord,
    signer: UrlSigner | None = None,
) -> str | None:
    """Where a client downloads ``job``'s video, or ``None`` before there is one.

    ``base_url`` is this service's external root (``REELFORGE_PUBLIC_URL``, or what the
    request came to); ``signer`` (``storage.signing``) makes the URL expire. With
    ``settings.video_urls == "presigned"`` this is a fresh presigned URL of the object
    store, valid ``settings.presign_seconds``. Backends that cannot presign (local storage)
    fall back to the API URL, as does a store that fails to sign (a warning is logged), so
    a completed job always has a working URL.
    """
    if job.video_key is None:
        return None
    return stored_file_url(base_url, settings, storage, job.video_key, signer)


def thumbnail_url(
    base_url: str,
    settings: Settings,
    storage: Storage,
    job: JobRecord,
    signer: UrlSigner | None = None,
) -> str | None:
    """Like ``video_url``, for the video's thumbnail (``None`` for videos made before
    reelforge made posters, or whose posters failed)."""
    if job.video_key is None or not job.info.get("posters"):
        return None
    key = beside_video(job.video_key, THUMBNAIL_FILE_NAME)
    return stored_file_url(base_url, settings, storage, key, signer)


def stored_file_url(
    base_url: str, settings: Settings, storage: Storage, key: str, signer: UrlSigner | None
) -> str:
    """A client's URL of a file in the public area (see ``video_url``)."""
    if settings.video_urls == "presigned":
        try:
            url = storage.presigned_url(key, settings.presign_seconds)
        except ServiceUnavailable:
            url = None
            log.warning("presigning failed; serving through the API", extra={"key": key})
        if url is not None:
            return url
    path = f"{FILES_PREFIX}{key}"
    query = f"?{signer.sign(path)}" if signer is not None else ""
    return f"{base_url.rstrip('/')}{path}{query}"


def service_base_url(settings: Settings) -> str:
    """This service's root when no request says it (webhooks): ``REELFORGE_PUBLIC_URL``,
    else the address ``serve`` binds."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = settings.host if settings.host not in ("0.0.0.0", "::") else "127.0.0.1"  # noqa: S104
    return f"http://{host}:{settings.port}"


def generation_document(
    job: JobRecord,
    base_url: str,
    settings: Settings,
    storage: Storage,
    signer: UrlSigner | None = None,
) -> dict[str, Any]:
    """The GET document of ``job`` as JSON-able data (webhooks)."""
    url = video_url(base_url, settings, storage, job, signer)
    thumbnail = thumbnail_url(base_url, settings, storage, job, signer)
    return present(job, url, settings.retention_hours, thumbnail).model_dump(mode="json")
