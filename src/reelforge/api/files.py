"""Serving stored videos.

Video URLs are capability URLs (``/files/videos/<random token>/output.mp4``): like the
upstream CDN links, they work without the API key (browsers, players, ``curl``) and are
unguessable. Only the ``videos/`` area is served; staged inputs never are.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from reelforge.api.deps import ServicesDep
from reelforge.errors import NotFound
from reelforge.jobs import JobRecord
from reelforge.settings import Settings
from reelforge.storage import check_key

FILES_PREFIX = "/files/"
PUBLIC_AREA = "videos/"


def base_url(request: Request, settings: Settings) -> str:
    return (settings.public_url or str(request.base_url)).rstrip("/")


def video_url(request: Request, settings: Settings, job: JobRecord) -> str | None:
    if job.video_key is None:
        return None
    return f"{base_url(request, settings)}{FILES_PREFIX}{job.video_key}"


router = APIRouter(tags=["files"])


@router.api_route("/files/{key:path}", methods=["GET", "HEAD"], summary="Download a video")
def get_file(key: str, services: ServicesDep) -> FileResponse:
    """The video bytes; supports ``Range`` (single and multiple ranges) and ``If-Range``."""
    if not key.startswith(PUBLIC_AREA):
        raise NotFound("no such file")
    path = services.storage.local_path(check_key(key))
    if path is None:
        raise NotFound("no such file")
    return FileResponse(
        path,
        media_type="video/mp4",
        filename=path.name,
        content_disposition_type="inline",
        headers={"Cache-Control": "private, max-age=86400"},
    )
