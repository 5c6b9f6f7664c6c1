"""Generation endpoints: the universal path and the legacy vendor path, same behaviour."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from reelforge.api.deps import PrincipalDep, ServicesDep
from reelforge.api.files import video_url
from reelforge.api.longpoll import MAX_WAIT_SECONDS, wait_for_change
from reelforge.api.schemas import ApiError, Generation, GenerationCreated, present
from reelforge.catalog import MODELS
from reelforge.catalog.validation import body_error

PATHS = ("/v2/video/generations", "/v2/generate/video/google/generation")
MAX_GENERATION_ID_CHARS = 300

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ApiError, "description": text}
    for code, text in {
        400: "Invalid request (the message names the field)",
        401: "Missing or invalid API key",
        404: "No such generation for this key",
        413: "Request body too large",
    }.items()
}


def _request_body_schema() -> dict[str, Any]:
    variants = [spec.params_type.model_json_schema() for spec in MODELS.values()]
    for variant, spec in zip(variants, MODELS.values(), strict=True):
        variant["title"] = spec.name
        variant["required"] = sorted({*variant.get("required", []), "model"})
    schema = {"oneOf": variants, "discriminator": {"propertyName": "model"}}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


async def create_generation(
    request: Request,
    response: Response,
    services: ServicesDep,
    principal: PrincipalDep,
    idempotency_key: Annotated[
        str | None,
        Header(description="Makes retries safe: a repeated key (same body) returns the same task."),
    ] = None,
) -> GenerationCreated:
    """Create a generation task; poll it with GET and the returned id."""
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        reason = getattr(error, "msg", "not UTF-8")
        raise body_error(f"the request body is not valid JSON ({reason})") from None
    submitted = await run_in_threadpool(
        lambda: services.generations.submit(body, principal, idempotency_key=idempotency_key)
    )
    if submitted.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return GenerationCreated(id=submitted.job.id, status=submitted.job.status)


async def get_generation(
    request: Request,
    response: Response,
    services: ServicesDep,
    principal: PrincipalDep,
    generation_id: Annotated[str, Query(min_length=1, max_length=MAX_GENERATION_ID_CHARS)],
    wait: Annotated[
        float | None,
        Query(
            ge=0,
            le=MAX_WAIT_SECONDS,
            description=(
                "Long-poll (reelforge extension): hold the request up to this many seconds "
                "and answer as soon as the status changes."
            ),
        ),
    ] = None,
) -> Generation:
    """The state of a generation; when completed, ``video.url`` is ready to download."""
    job = await run_in_threadpool(services.generations.get, generation_id, principal)
    if wait is not None:
        response.headers["X-Reelforge-Wait"] = f"{wait:g}"
        job = await wait_for_change(services.store, job, wait)
    # Presigning may look up cloud credentials (blocking) the first time.
    url = await run_in_threadpool(video_url, request, services.settings, services.storage, job)
    return present(job, url)


router = APIRouter(tags=["generations"])
for _path in PATHS:
    router.add_api_route(
        _path,
        create_generation,
        methods=["POST"],
        response_model=GenerationCreated,
        responses=ERROR_RESPONSES,
        openapi_extra=_request_body_schema(),
        summary="Create a video generation task",
    )
    router.add_api_route(
        _path,
        get_generation,
        methods=["GET"],
        response_model=Generation,
        responses=ERROR_RESPONSES,
        summary="Fetch a video generation",
    )
