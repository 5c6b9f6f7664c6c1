"""Response models: the published schema, plus clearly additional fields.

Published fields (``id``, ``status``, ``video``, ``error``, ``meta``) keep their names
and meaning. Additions (``model``, timestamps, ``progress``, ``stage``, ``seed``) are
extra fields, which the published schema permits.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from reelforge.jobs import JobRecord, JobStatus


class Video(BaseModel):
    url: str = Field(description="Absolute URL of the MP4; supports HTTP Range.")
    content_type: str = "video/mp4"
    file_name: str
    file_size: int = Field(description="Size in bytes, equal to the bytes served.")
    width: int | None = None
    height: int | None = None
    duration: int | None = Field(default=None, description="Seconds.")


class ErrorInfo(BaseModel):
    name: str
    message: str


class Usage(BaseModel):
    credits_used: int


class Meta(BaseModel):
    usage: Usage | None = None


class GenerationCreated(BaseModel):
    id: str = Field(description="Generation id, `<uuid>:<model>`.")
    status: JobStatus


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
    prompt_used: str | None = Field(
        default=None, description="The prompt the engine received (after enhancement)."
    )
    engine: str | None = Field(default=None, description="The engine that made the video.")


class ApiError(BaseModel):
    message: str
    path: str
    requestId: str
    statusCode: int
    timestamp: str


def present(job: JobRecord, video_url: str | None) -> Generation:
    video = None
    if job.status is JobStatus.COMPLETED and job.video_key and video_url:
        video = Video(
            url=video_url,
            file_name=job.video_key.rsplit("/", 1)[-1],
            file_size=job.video_size or 0,
            width=job.info.get("width"),
            height=job.info.get("height"),
            duration=job.info.get("duration"),
        )
    error = None
    if job.status is JobStatus.ERROR:
        error = ErrorInfo(name=job.error_name or "Error", message=job.error_message or "")
    meta = None
    if job.status.is_final:
        charged = job.credits if job.status is JobStatus.COMPLETED else 0
        meta = Meta(usage=Usage(credits_used=charged))
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
        prompt_used=job.info.get("prompt_used"),
        engine=job.info.get("engine"),
    )
