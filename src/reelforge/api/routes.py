"""Generation endpoints: the universal path and the legacy vendor path, same behaviour."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse, ServerSentEvent

from reelforge.api.deps import CreatorDep, ReaderDep, Services, ServicesDep
from reelforge.api.files import video_urls
from reelforge.api.limits import parse_json_body
from reelforge.api.schemas import (
    ApiError,
    Generation,
    GenerationCreated,
    GenerationList,
    present,
)
from reelforge.catalog import MODELS
from reelforge.catalog.validation import closest_parameter
from reelforge.errors import InvalidRequest
from reelforge.generations import MAX_WAIT_SECONDS
from reelforge.jobs import JobRecord

PATHS = ("/v2/video/generations", "/v2/generate/video/google/generation")
MAX_GENERATION_ID_CHARS = 300
KEEP_ALIVE_SECONDS = 15
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
"""Proxies must pass events on at once, not buffer them."""

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ApiError, "description": text}
    for code, text in {
        400: "Invalid request (the message names the field)",
        401: "Missing or invalid API key",
        404: "No such generation for this key",
        408: "The request body did not arrive in time",
        413: "Request body too large",
        503: "Busy (database, or too much data arriving at once); retry after Retry-After",
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
    principal: CreatorDep,
    idempotency_key: Annotated[
        str | None,
        Header(description="Makes retries safe: a repeated key (same body) returns the same task."),
    ] = None,
) -> GenerationCreated:
    """Create a generation task; poll it with GET and the returned id."""
    body = parse_json_body(await request.body(), services.settings.max_text_request_bytes)
    submitted = await run_in_threadpool(
        lambda: services.generations.submit(body, principal, idempotency_key=idempotency_key)
    )
    if submitted.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    warnings = list(submitted.warnings) or None
    if warnings:
        response.headers[WARNING_HEADER] = " | ".join(warnings)
    return GenerationCreated(id=submitted.job.id, status=submitted.job.status, warnings=warnings)


WARNING_HEADER = "X-Reelforge-Warning"
"""What a request had that was accepted but ignored (unknown fields or parameters)."""
GET_PARAMETERS = ("generation_id", "wait", "limit", "after", "status", "model")


def _unknown_parameters(request: Request, listing: bool) -> list[str]:
    """Query parameters the GET does not know. Listing (no ``generation_id``), a near
    miss is refused: ``?id=`` would otherwise answer a list as if it were the job."""
    notes = []
    for name in dict.fromkeys(request.query_params.keys()):
        if name in GET_PARAMETERS:
            continue
        guess = closest_parameter(name, GET_PARAMETERS)
        hint = f"; did you mean '{guess}'?" if guess else ""
        shown = name if name.isascii() and name.isprintable() and len(name) <= 60 else "a name"
        if listing and guess:
            raise InvalidRequest(
                f"'{shown}' is not a query parameter here (without generation_id this GET "
                f"lists your generations){hint}",
                shown,
            )
        notes.append(f"query parameter '{shown}' was ignored{hint}")
    return notes


StatusFilter = Annotated[
    list[str] | None,
    Query(description="Only generations in these states (repeatable; list only)."),
]


async def get_generation(
    request: Request,
    response: Response,
    services: ServicesDep,
    principal: ReaderDep,
    generation_id: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_GENERATION_ID_CHARS,
            description="The generation to fetch; without it, the caller's generations "
            "are listed (reelforge extension).",
        ),
    ] = None,
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
    limit: Annotated[int, Query(description="Page size of a list, 1-100.")] = 20,
    after: Annotated[
        str | None, Query(max_length=400, description="`next_cursor` of the previous page.")
    ] = None,
    status: StatusFilter = None,
    model: Annotated[list[str] | None, Query(description="Only these models (list only).")] = None,
) -> Generation | GenerationList:
    """The state of a generation; when completed, ``video.url`` is ready to download.

    Without ``generation_id``: the caller's generations, newest first, ``limit`` at a
    time, with ``next_cursor`` for the next page (reelforge extension).
    """
    ignored = _unknown_parameters(request, listing=generation_id is None)
    if ignored:
        response.headers[WARNING_HEADER] = " | ".join(ignored)
    if generation_id is None:
        page = await run_in_threadpool(
            lambda: services.generations.list(
                principal, limit=limit, after=after, statuses=status or (), models=model or ()
            )
        )
        documents = [await _document(request, services, job) for job in page.jobs]
        return GenerationList(data=documents, has_more=page.has_more, next_cursor=page.next_cursor)
    job = await services.generations.read(generation_id, principal)
    if wait is not None:
        response.headers["X-Reelforge-Wait"] = f"{wait:g}"
        job = await _unless_disconnected(
            request, services.generations.wait_for_change(job, wait), job
        )
    return await _document(request, services, job)


async def _unless_disconnected(
    request: Request, waiting: Awaitable[JobRecord], job: JobRecord
) -> JobRecord:
    """``waiting``'s result, or ``job`` at once if the client hangs up first: a
    long-poll nobody waits for must not hold the server (nor its shutdown) for its
    remaining seconds."""
    wait_task = asyncio.ensure_future(waiting)
    gone_task = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({wait_task, gone_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone_task.cancel()
        if not wait_task.done():
            wait_task.cancel()
    return wait_task.result() if not wait_task.cancelled() else job


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _document(request: Request, services: Services, job: JobRecord) -> Generation:
    settings = services.settings
    if settings.video_urls == "presigned" and job.video_key is not None:
        # Presigning may look up cloud credentials (blocking) the first time.
        url, thumbnail = await run_in_threadpool(
            video_urls, request, settings, services.storage, job
        )
    else:  # an HMAC over the path: cheaper than a hop to a thread
        url, thumbnail = video_urls(request, settings, services.storage, job)
    return present(job, url, services.settings.retention_hours, thumbnail)


GenerationIdQuery = Annotated[
    str, Query(min_length=1, max_length=MAX_GENERATION_ID_CHARS, description="The generation.")
]


async def cancel_generation(
    request: Request,
    services: ServicesDep,
    principal: ReaderDep,
    generation_id: GenerationIdQuery,
) -> Generation:
    """Cancel (reelforge extension): a queued generation never starts; a running one stops
    within seconds. It then reports ``status: "error"`` with ``error.name: "Cancelled"`` and
    uses no credits. A finished generation cannot be cancelled (409)."""
    job = await run_in_threadpool(services.generations.cancel, generation_id, principal)
    return await _document(request, services, job)


class Deleted(BaseModel):
    id: str
    deleted: bool = True


async def delete_generation(
    services: ServicesDep, principal: ReaderDep, generation_id: GenerationIdQuery
) -> Deleted:
    """Delete (reelforge extension): cancels it if needed, then removes the video, the
    staged inputs and the record; the id and the video URL answer 404 afterwards."""
    await run_in_threadpool(services.generations.delete, generation_id, principal)
    return Deleted(id=generation_id)


async def generation_events(
    request: Request,
    services: ServicesDep,
    principal: ReaderDep,
    generation_id: GenerationIdQuery,
    last_event_id: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> EventSourceResponse:
    """Live events (reelforge extension): Server-Sent Events carrying the GET document
    on every change of status, stage or progress; a keep-alive comment every 15 s; the
    stream ends after the final state. ``Last-Event-ID`` resumes (event ids are the job's
    revision)."""
    job = await services.generations.read(generation_id, principal)
    seen = int(last_event_id) if last_event_id and last_event_id.isdigit() else None

    async def events() -> AsyncIterator[ServerSentEvent]:
        async for current in services.generations.follow(job, seen):
            document = await _document(request, services, current)
            yield ServerSentEvent(data=document.model_dump_json(), id=str(current.revision))

    return EventSourceResponse(events(), ping=KEEP_ALIVE_SECONDS, headers=SSE_HEADERS)


router = APIRouter(tags=["generations"])
for _path in PATHS:
    router.add_api_route(
        _path,
        create_generation,
        methods=["POST"],
        response_model=GenerationCreated,
        response_model_exclude_none=True,
        responses=ERROR_RESPONSES,
        openapi_extra=_request_body_schema(),
        summary="Create a video generation task",
    )
    router.add_api_route(
        _path,
        get_generation,
        methods=["GET"],
        response_model=Generation | GenerationList,
        responses=ERROR_RESPONSES,
        summary="Fetch a video generation (or list them)",
    )
    router.add_api_route(
        _path,
        delete_generation,
        methods=["DELETE"],
        response_model=Deleted,
        responses=ERROR_RESPONSES,
        summary="Delete a generation and its video",
    )
    router.add_api_route(
        f"{_path}/cancel",
        cancel_generation,
        methods=["POST"],
        response_model=Generation,
        responses={**ERROR_RESPONSES, 409: {"model": ApiError, "description": "Already finished"}},
        summary="Cancel a generation",
    )
    router.add_api_route(
        f"{_path}/events",
        generation_events,
        methods=["GET"],
        response_class=EventSourceResponse,
        responses={
            **ERROR_RESPONSES,
            200: {"content": {"text/event-stream": {}}, "description": "GET documents"},
        },
        summary="Follow a generation live (Server-Sent Events)",
    )


class WebhookSecret(BaseModel):
    secret: str = Field(description="`whsec_...`: verify deliveries with it.")


@router.get(
    "/v2/webhooks/secret",
    response_model=WebhookSecret,
    responses=ERROR_RESPONSES,
    summary="The calling key's webhook signing secret",
)
async def webhook_secret(services: ServicesDep, principal: ReaderDep) -> WebhookSecret:
    """The secret that signs this key's webhook deliveries (made on first use;
    reelforge extension). Rotate it with ``reelforge keys webhook-secret KEY --rotate``."""
    if principal.key_id is None:
        raise InvalidRequest(
            "fixed keys from REELFORGE_API_KEYS have no webhook secret; use a key made with "
            "`reelforge keys create`"
        )
    secret = await run_in_threadpool(services.database.keys.webhook_secret, principal.key_id)
    return WebhookSecret(secret=secret)


class AccountLimits(BaseModel):
    rpm: int | None = Field(description="Creates per minute (null: unlimited).")
    read_rpm: int | None = Field(description="Reads per minute (null: unlimited).")
    max_queued: int | None = Field(description="Generations waiting at once.")
    max_running: int | None = Field(description="Generations running at once.")
    priority: int = Field(description="Weight in fair scheduling.")


class AccountCredits(BaseModel):
    balance: int | None = Field(description="Credits left (null: unlimited).")
    reserved: int = Field(description="Held by unfinished generations.")
    available: int | None = Field(description="What a new generation may use.")
    spent: int


class Account(BaseModel):
    key_id: str | None = Field(description="Null for fixed keys from REELFORGE_API_KEYS.")
    limits: AccountLimits
    credits: AccountCredits
    generations: dict[str, int] = Field(description="Your generations by status.")


@router.get(
    "/v2/account",
    response_model=Account,
    responses=ERROR_RESPONSES,
    tags=["account"],
    summary="The calling key's limits, credits and usage",
)
async def account(services: ServicesDep, principal: ReaderDep) -> Account:
    """What the calling key may do and has used (reelforge extension)."""
    usage = await run_in_threadpool(services.database.keys.usage, principal.owner)
    limits = principal.limits
    return Account(
        key_id=principal.key_id,
        limits=AccountLimits(
            rpm=limits.rpm,
            read_rpm=limits.read_rpm,
            max_queued=limits.max_queued,
            max_running=limits.max_running,
            priority=limits.priority,
        ),
        credits=AccountCredits(
            balance=usage.balance,
            reserved=usage.reserved,
            available=usage.available,
            spent=usage.spent,
        ),
        generations={
            "queued": usage.queued,
            "generating": usage.running,
            "completed": usage.completed,
            "error": usage.failed,
        },
    )
