"""Serving stored videos.

Video URLs are capability URLs (``/files/videos/<random token>/output.mp4``): like the
upstream CDN links, they work without the API key (browsers, players, ``curl``) and are
unguessable. They are also signed and expire (``api.signing``; each GET of a generation
hands out a fresh one) unless ``REELFORGE_VIDEO_URL_TTL=0``. Only the ``videos/`` area
is served; staged inputs never are.

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

from reelforge import documents
from reelforge.api.deps import ServicesDep
from reelforge.api.errors import error_response
from reelforge.api.ranges import RangeNotSatisfiable, parse_range
from reelforge.documents import FILES_PREFIX
from reelforge.errors import NotFound
from reelforge.jobs import JobRecord
from reelforge.settings import Settings
from reelforge.storage import Storage, check_key
from reelforge.storage.signing import EXPIRES_PARAM, SIGNATURE_PARAM, UrlSigner

log = logging.getLogger(__name__)

PUBLIC_AREA = "videos/"
VIDEO_TYPE = "video/mp4"
CACHE_SECONDS = 86400
CACHE_CONTROL = f"private, max-age={CACHE_SECONDS}"


def base_url(request: Request, settings: Settings) -> str:
    """``REELFORGE_PUBLIC_URL``, else the request's own (its ``Host`` was vetted by
    ``security.TrustedHostMiddleware``)."""
    return (settings.public_url or str(request.base_url)).rstrip("/")


def url_signer(request: Request) -> UrlSigner | None:
    return getattr(request.app.state, "url_signer", None)


def video_url(request: Request, settings: Settings, storage: Storage, job: JobRecord) -> str | None:
    """``documents.video_url`` for the service as this request reached it (signed)."""
    return documents.video_url(
        base_url(request, settings), settings, storage, job, url_signer(request)
    )


def video_urls(
    request: Request, settings: Settings, storage: Storage, job: JobRecord
) -> tuple[str | None, str | None]:
    """The video's and its thumbnail's URLs for the service as this request reached it."""
    root, signer = base_url(request, settings), url_signer(request)
    return (
        documents.video_url(root, settings, storage, job, signer),
        documents.thumbnail_url(root, settings, storage, job, signer),
    )


def media_type(key: str) -> str:
    """Videos and their JPEG posters are all the public area holds."""
    return "image/jpeg" if key.endswith(".jpg") else VIDEO_TYPE


router = APIRouter(tags=["files"])


@router.get("/files/{key:path}", summary="Download a video", operation_id="download_video")
def get_file(key: str, request: Request, services: ServicesDep) -> Response:
    """The video bytes; supports ``Range`` (and, for local storage, several ranges and
    ``If-Range``). Signed URLs answer 403 once expired or if changed."""
    if not key.startswith(PUBLIC_AREA):
        raise NotFound("no such file")
    cache_control = CACHE_CONTROL
    signer = url_signer(request)
    if signer is not None:
        remaining = signer.verify(
            f"{FILES_PREFIX}{key}",
            request.query_params.get(EXPIRES_PARAM),
            request.query_params.get(SIGNATURE_PARAM),
        )
        cache_control = f"private, max-age={min(remaining, CACHE_SECONDS)}"
    storage = services.storage
    try:
        path = storage.local_path(check_key(key))
        if path is None and storage.size(key) is None:
            raise NotFound("no such file")
    except NotFound:
        services.generations.check_video_expired(key)  # 410 Gone if retention took it
        raise
    if path is not None:
        return FileResponse(
            path,
            media_type=media_type(key),
            filename=path.name,
            content_disposition_type="inline",
            headers={"Cache-Control": cache_control},
        )
    return stream_object(request, storage, key, cache_control)


router.add_api_route(
    "/files/{key:path}",
    get_file,
    methods=["HEAD"],
    summary="Size and type of a video",
    operation_id="head_video",
)


def stream_object(
    request: Request, storage: Storage, key: str, cache_control: str = "private, max-age=86400"
) -> Response:
    """Stream an object through the API: 200, 206 for one satisfiable range, else 416.

    Without validators from the store, a request carrying ``If-Range`` gets the whole
    video (always a correct answer), never a range of a possibly different version.
    """
    size = storage.size(key)
    if size is None:
        raise NotFound("no such file")
    kind = media_type(key)
    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": cache_control,
        "Content-Disposition": f'inline; filename="{key.rsplit("/", 1)[-1]}"',
    }
    if request.method == "HEAD":
        headers["Content-Length"] = str(size)
        return Response(status_code=200, headers=headers, media_type=kind)
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
        media_type=kind,
        background=BackgroundTask(read.chunks.close),
    )
