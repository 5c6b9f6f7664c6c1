"""Serving stored videos.

Video URLs are capability URLs (``/files/videos/<random token>/output.mp4``): like the
upstream CDN links, they work without the API key (browsers, players, ``curl``) and are
unguessable. Only the ``videos/`` area is served; staged inputs never are.

Local storage is served by ``FileResponse`` (single and multiple ranges, ``If-Range``).
Object storage is streamed through the API with a single ``Range`` (see
``api.ranges``), or, with ``REELFORGE_VIDEO_URLS=presigned``, clients get presigned
object-store URLs and download from the store directly.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from starlette.background import BackgroundTask

from reelforge.api.deps import ServicesDep
from reelforge.api.errors import error_response
from reelforge.api.ranges import RangeNotSatisfiable, parse_range
from reelforge.errors import NotFound, ServiceUnavailable
from reelforge.jobs import JobRecord
from reelforge.settings import Settings
from reelforge.storage import Storage, check_key

log = logging.getLogger(__name__)

FILES_PREFIX = "/files/"
PUBLIC_AREA = "videos/"
VIDEO_TYPE = "video/mp4"
CACHE_CONTROL = "private, max-age=86400"


def base_url(request: Request, settings: Settings) -> str:
    return (settings.public_url or str(request.base_url)).rstrip("/")


def video_url(request: Request, settings: Settings, storage: Storage, job: JobRecord) -> str | None:
    """Where a client downloads ``job``'s video, or ``None`` before there is one.

    With ``settings.video_urls == "presigned"`` this is a fresh presigned URL of the
    object store, valid ``settings.presign_seconds``. Backends that cannot presign
    (local storage) fall back to the API URL, as does a store that fails to sign (a
    warning is logged), so a completed job always has a working URL.
    """
    if job.video_key is None:
        return None
    if settings.video_urls == "presigned":
        try:
            url = storage.presigned_url(job.video_key, settings.presign_seconds)
        except ServiceUnavailable:
            url = None
            log.warning("presigning failed; serving through the API", extra={"job_id": job.id})
        if url is not None:
            return url
    return f"{base_url(request, settings)}{FILES_PREFIX}{job.video_key}"


router = APIRouter(tags=["files"])


@router.api_route("/files/{key:path}", methods=["GET", "HEAD"], summary="Download a video")
def get_file(key: str, request: Request, services: ServicesDep) -> Response:
    """The video bytes; supports ``Range`` (and, for local storage, several ranges and
    ``If-Range``)."""
    if not key.startswith(PUBLIC_AREA):
        raise NotFound("no such file")
    storage = services.storage
    path = storage.local_path(check_key(key))
    if path is not None:
        return FileResponse(
            path,
            media_type=VIDEO_TYPE,
            filename=path.name,
            content_disposition_type="inline",
            headers={"Cache-Control": CACHE_CONTROL},
        )
    return stream_object(request, storage, key)


def stream_object(request: Request, storage: Storage, key: str) -> Response:
    """Stream an object through the API: 200, 206 for one satisfiable range, else 416.

    Without validators from the store, a request carrying ``If-Range`` gets the whole
    video (always a correct answer), never a range of a possibly different version.
    """
    size = storage.size(key)
    if size is None:
        raise NotFound("no such file")
    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": CACHE_CONTROL,
        "Content-Disposition": f'inline; filename="{key.rsplit("/", 1)[-1]}"',
    }
    if request.method == "HEAD":
        headers["Content-Length"] = str(size)
        return Response(status_code=200, headers=headers, media_type=VIDEO_TYPE)
    try:
        wanted = None
        if "if-range" not in request.headers:
            wanted = parse_range(request.headers.get("range"), size)
    except RangeNotSatisfiable as error:
        return error_response(
            request,
            416,
            f"the requested range is outside the video ({error.size} bytes)",
            {"Content-Range": f"bytes */{error.size}"},
        )
    status = 200
    if wanted is None:
        read = storage.open_range(key, None, None)
    else:
        read = storage.open_range(key, wanted.start, wanted.end)
        status = 206
        last = wanted.start + read.content_length - 1
        headers["Content-Range"] = f"bytes {wanted.start}-{last}/{read.total_size}"
    headers["Content-Length"] = str(read.content_length)
    return StreamingResponse(
        read.chunks,
        status_code=status,
        headers=headers,
        media_type=VIDEO_TYPE,
        background=BackgroundTask(read.chunks.close),
    )
