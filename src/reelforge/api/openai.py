"""``/v1/videos``: OpenAI's Videos API on the same jobs (``openai_videos``).

Thin: parse JSON or multipart, call ``OpenAIVideos``, render its objects. Errors on these
paths leave in OpenAI's shape (``api.errors``), so the ``openai`` SDK raises its own types.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from reelforge.api.deps import CreatorDep, ReaderDep, Services, ServicesDep
from reelforge.api.files import media_type, stream_object
from reelforge.api.limits import parse_json_body
from reelforge.errors import InvalidRequest
from reelforge.generations import Submitted
from reelforge.jobs import JobRecord
from reelforge.media.images import sniff_image_type
from reelforge.openai_videos import Reference

PATH = "/v1/videos"
POLL_AFTER_MS = "500"
"""``openai-poll-after-ms``: how often the SDK's ``poll`` asks (its default is 1 s)."""
MAX_FORM_FIELDS = 20

router = APIRouter(tags=["openai"])


class VideoError(BaseModel):
    code: str
    message: str


class Video(BaseModel):
    """OpenAI's video object."""

    id: str = Field(description="`video_...`")
    object: str = "video"
    model: str
    status: str = Field(description="queued, in_progress, completed or failed")
    progress: int = Field(description="Percent done.")
    created_at: int
    completed_at: int | None
    expires_at: int | None
    seconds: str
    size: str | None
    prompt: str | None
    remixed_from_video_id: str | None
    error: VideoError | None


class VideoList(BaseModel):
    object: str = "list"
    data: list[Video]
    first_id: str | None
    last_id: str | None
    has_more: bool


class VideoDeleted(BaseModel):
    id: str
    object: str = "video.deleted"
    deleted: bool = True


class Remix(BaseModel):
    prompt: str = Field(min_length=1)


def _video(services: Services, job: JobRecord, response: Response | None = None) -> Video:
    if response is not None and not job.status.is_final:
        response.headers["openai-poll-after-ms"] = POLL_AFTER_MS
    return Video.model_validate(services.openai.present(job))


async def _create_fields(request: Request, max_text_bytes: int) -> tuple[dict, Reference | None]:
    """The create's fields and its ``input_reference`` from JSON, multipart or a form."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = await request.form(max_files=1, max_fields=MAX_FORM_FIELDS)
        fields: dict[str, Any] = {}
        reference = None
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if name != "input_reference":
                    raise InvalidRequest(f"{name} cannot be a file", name)
                data = await value.read()
                kind = sniff_image_type(data)
                if kind is None:
                    raise InvalidRequest(
                        "input_reference must be an image (JPEG, PNG, WebP, GIF, BMP or TIFF)",
                        "input_reference",
                    )
                reference = Reference(data=data, mime=f"image/{kind}")
            elif name == "input_reference[image_url]":
                reference = Reference(url=value)
            elif name == "input_reference[file_id]":
                raise InvalidRequest(_NO_FILES, "input_reference")
            else:
                fields[name] = value
        return fields, reference
    body = parse_json_body(await request.body(), max_text_bytes)
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object", None)
    given = body.pop("input_reference", None)
    if given is None:
        return body, None
    if isinstance(given, dict) and isinstance(given.get("image_url"), str):
        return body, Reference(url=given["image_url"])
    if isinstance(given, dict) and "file_id" in given:
        raise InvalidRequest(_NO_FILES, "input_reference")
    raise InvalidRequest(
        "input_reference must be an uploaded image or {image_url}", "input_reference"
    )


_NO_FILES = (
    "input_reference.file_id is not supported: reelforge has no Files API; upload the "
    "image itself or give {image_url}"
)


IdempotencyKey = Annotated[
    str | None,
    Header(description="Makes retries safe: a repeated key (same body) returns the same video."),
]


def _submitted(services: Services, submitted: Submitted, response: Response) -> Video:
    if submitted.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return _video(services, submitted.job, response)


@router.post(PATH, response_model=Video, summary="Create a video (OpenAI Videos API)")
async def create_video(
    request: Request,
    response: Response,
    services: ServicesDep,
    principal: CreatorDep,
    idempotency_key: IdempotencyKey = None,
) -> Video:
    """`prompt`, `model`, `seconds`, `size`, `input_reference` as OpenAI publishes them,
    as JSON or multipart."""
    fields, reference = await _create_fields(request, services.settings.max_text_request_bytes)
    submitted = await run_in_threadpool(
        lambda: services.openai.create(
            fields, reference, principal, idempotency_key=idempotency_key
        )
    )
    return _submitted(services, submitted, response)


@router.get(PATH, response_model=VideoList, summary="List videos (OpenAI Videos API)")
async def list_videos(
    services: ServicesDep,
    principal: ReaderDep,
    after: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Annotated[str, Query()] = "desc",
) -> VideoList:
    page = await run_in_threadpool(
        lambda: services.openai.list(principal, after=after, limit=limit, order=order)
    )
    data = [_video(services, job) for job in page.jobs]
    return VideoList(
        data=data,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
        has_more=page.has_more,
    )


@router.get(f"{PATH}/{{video_id}}", response_model=Video, summary="Retrieve a video")
async def retrieve_video(
    video_id: str, response: Response, services: ServicesDep, principal: ReaderDep
) -> Video:
    job = await run_in_threadpool(services.openai.get, video_id, principal)
    return _video(services, job, response)


@router.delete(f"{PATH}/{{video_id}}", response_model=VideoDeleted, summary="Delete a video")
async def delete_video(video_id: str, services: ServicesDep, principal: ReaderDep) -> VideoDeleted:
    """Cancels it if needed, then removes the video, its posters and inputs."""
    await run_in_threadpool(services.openai.delete, video_id, principal)
    return VideoDeleted(id=video_id)


@router.post(f"{PATH}/{{video_id}}/remix", response_model=Video, summary="Remix a video")
async def remix_video(
    video_id: str,
    remix: Remix,
    response: Response,
    services: ServicesDep,
    principal: CreatorDep,
    idempotency_key: IdempotencyKey = None,
) -> Video:
    """A new video from the same model, inputs and seed, with a new prompt."""
    submitted = await run_in_threadpool(
        lambda: services.openai.remix(
            video_id, remix.prompt, principal, idempotency_key=idempotency_key
        )
    )
    return _submitted(services, submitted, response)


@router.get(f"{PATH}/{{video_id}}/content", summary="Download a video, thumbnail or sprite sheet")
def video_content(
    video_id: str,
    request: Request,
    services: ServicesDep,
    principal: ReaderDep,
    variant: Annotated[str, Query()] = "video",
) -> Response:
    """The MP4 (with ``Range``), or the JPEG thumbnail or sprite sheet."""
    key = services.openai.content_key(video_id, variant, principal)
    response = stream_object(request, services.storage, key, "private, max-age=3600")
    response.headers["content-type"] = media_type(key)
    return response
