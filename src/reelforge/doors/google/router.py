"""Google's Veo API: Vertex AI's and the Gemini API's long-running predict routes.

Thin: take the key (``x-goog-api-key``, ``?key=`` or a Bearer token), parse, call
``GoogleVideos`` (on ``app.state.google``), answer JSON. Errors leave in Google's shape
(``errors.error_body``, applied by the API's one error handler for these paths).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from reelforge.doors.edge import Kind, edge_of
from reelforge.doors.google.protocol import FetchRequest
from reelforge.doors.google.videos import GoogleVideos, parse, validated
from reelforge.errors import InvalidRequest, Unauthorized
from reelforge.jobs import Principal

VERTEX_VERSIONS = ("v1", "v1beta1")
GEMINI_VERSION = "v1beta"
PREDICT_SUFFIX = ":predictLongRunning"
"""The create routes end so; their bodies may carry inline images and videos."""
MISSING_KEY = (
    "Method doesn't allow unregistered callers. Send a reelforge API key as "
    "'x-goog-api-key: <KEY>' (or '?key=', or 'Authorization: Bearer <KEY>')"
)

router = APIRouter(tags=["google"])


def _token(request: Request) -> str:
    token = request.headers.get("x-goog-api-key") or request.query_params.get("key") or ""
    if not token:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else ""
    if not token:
        raise Unauthorized(MISSING_KEY)
    return token


def _caller(kind: Kind):  # noqa: ANN202 - a FastAPI dependency
    async def principal(request: Request, response: Response) -> Principal:
        return await edge_of(request).principal(_token(request), kind, response)

    return principal


Creator = Annotated[Principal, Depends(_caller("create"))]
Reader = Annotated[Principal, Depends(_caller("read"))]


def _videos(request: Request) -> GoogleVideos:
    return request.app.state.google


def _base_url(request: Request) -> str:
    return (_videos(request).settings.public_url or str(request.base_url)).rstrip("/")


def _body_limit(request: Request) -> int:
    return _videos(request).settings.max_text_request_bytes


async def _create(
    request: Request, principal: Principal, model: str, prefix: str
) -> dict[str, Any]:
    videos = _videos(request)
    body = parse(await request.body(), _body_limit(request))
    google_model, operation = await run_in_threadpool(videos.create, model, body, principal)
    return {"name": f"{prefix}models/{google_model}/operations/{operation}"}


def _operation_id(name: str) -> str:
    _, found, operation = name.rpartition("/operations/")
    if not found or "/" in operation:
        raise InvalidRequest("operationName must end in /operations/<id>", "operationName")
    return operation


async def _vertex_create(
    request: Request, principal: Creator, model: str, project: str = "", location: str = ""
) -> dict[str, Any]:
    """Vertex AI: ``instances[0]`` (prompt, image, lastFrame, video, referenceImages) and
    ``parameters``; answers the operation's ``name``."""
    scope = f"projects/{project}/locations/{location}/" if project else ""
    return await _create(request, principal, model, f"{scope}publishers/google/")


async def _vertex_fetch(request: Request, principal: Reader) -> dict[str, Any]:
    """Vertex AI: the operation named in ``operationName``, the videos inline when done."""
    body = parse(await request.body(), _body_limit(request))
    name = validated(FetchRequest, body).operation_name
    return await run_in_threadpool(
        _videos(request).operation,
        name,
        _operation_id(name),
        principal,
        "vertex",
        _base_url(request),
    )


for _version in VERTEX_VERSIONS:
    for _scope in ("", "projects/{project}/locations/{location}/"):
        _models = f"/{_version}/{_scope}publishers/google/models/{{model}}"
        router.add_api_route(
            _models + PREDICT_SUFFIX,
            _vertex_create,
            methods=["POST"],
            summary="Start a video (Vertex AI predictLongRunning)",
        )
        router.add_api_route(
            _models + ":fetchPredictOperation",
            _vertex_fetch,
            methods=["POST"],
            summary="Read a video operation (Vertex AI fetchPredictOperation)",
        )


@router.post(
    f"/{GEMINI_VERSION}/models/{{model}}{PREDICT_SUFFIX}",
    summary="Start a video (Gemini API predictLongRunning)",
)
async def gemini_create(request: Request, principal: Creator, model: str) -> dict[str, Any]:
    """The Gemini API's form; ``webhookConfig.uris[0]`` becomes the job's webhook."""
    return await _create(request, principal, model, "")


@router.get(
    f"/{GEMINI_VERSION}/models/{{model}}/operations/{{operation}}",
    summary="Read a video operation (Gemini API)",
)
async def gemini_operation(
    request: Request, principal: Reader, model: str, operation: str
) -> dict[str, Any]:
    """Done operations list ``generateVideoResponse.generatedSamples[].video.uri``."""
    name = f"models/{model}/operations/{operation}"
    return await run_in_threadpool(
        _videos(request).operation, name, operation, principal, "gemini", _base_url(request)
    )


@router.get(f"/{GEMINI_VERSION}/files/{{file}}:download", summary="Download a video (Gemini API)")
def gemini_download(
    request: Request,
    response: Response,
    principal: Reader,
    file: str,
    alt: Annotated[str, Query(max_length=20)] = "media",
) -> Response:
    """The MP4 of one sample (``alt=media``), with ``Range``."""
    if alt != "media":
        raise InvalidRequest("alt must be media", "alt")
    key = _videos(request).file_key(file, principal)
    streamed = edge_of(request).stream(request, key)
    for name, value in response.headers.items():  # the key's RateLimit-* headers
        if name.lower().startswith("ratelimit-"):
            streamed.headers[name] = value
    return streamed
