"""FastAPI dependencies: the services on ``app.state`` and the calling key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from reelforge.errors import Unauthorized
from reelforge.generations import Generations
from reelforge.jobs import Principal
from reelforge.openai_videos import OpenAIVideos
from reelforge.ratelimits import FailedAuthBudget, Kind, RateLimiter
from reelforge.runtime import Database
from reelforge.settings import Settings
from reelforge.storage import Storage

UNAUTHORIZED_MESSAGE = (
    "This request requires a valid API key. Send it as 'Authorization: Bearer <KEY>'; "
    "an operator creates keys with `reelforge keys create`."
)


@dataclass
class Services:
    """Everything a request may use; built once per process (``app.build_services``)."""

    settings: Settings
    database: Database
    storage: Storage
    generations: Generations
    limiter: RateLimiter
    openai: OpenAIVideos
    auth_failures: FailedAuthBudget


async def get_services(request: Request) -> Services:
    # async: FastAPI runs a plain ``def`` dependency in a thread, a hop per request.
    return request.app.state.services


_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <KEY>`")


async def get_principal(
    request: Request,
    services: Annotated[Services, Depends(get_services)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or not credentials.credentials:
        raise Unauthorized(UNAUTHORIZED_MESSAGE)
    keys = services.database.keys
    # Fixed keys are checked in memory; only keys in the database cost a thread.
    principal = keys.authenticate_fixed(credentials.credentials)
    if principal is not None:
        return principal
    client = request.client.host if request.client else "unknown"
    services.auth_failures.check(client)  # 429 before a query for a client guessing keys
    principal = await run_in_threadpool(keys.authenticate, credentials.credentials)
    if principal is None:
        services.auth_failures.failed(client)
        raise Unauthorized(UNAUTHORIZED_MESSAGE)
    return principal


ServicesDep = Annotated[Services, Depends(get_services)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def _counted(
    kind: Kind, response: Response, services: Services, principal: Principal
) -> Principal:
    limits = principal.limits
    per_minute = limits.rpm if kind == "create" else limits.read_rpm
    limiter = services.limiter
    if limiter.needs_thread:  # a network round trip to Redis: not on the event loop
        headers = await run_in_threadpool(limiter.check, principal.owner, kind, per_minute)
    else:
        headers = limiter.check(principal.owner, kind, per_minute)
    response.headers.update(headers)
    return principal


async def creating_principal(
    response: Response,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
) -> Principal:
    """The caller, counted against its creates-per-minute limit."""
    return await _counted("create", response, services, principal)


async def reading_principal(
    response: Response,
    services: Annotated[Services, Depends(get_services)],
    principal: Annotated[Principal, Depends(get_principal)],
) -> Principal:
    """The caller, counted against its reads-per-minute limit."""
    return await _counted("read", response, services, principal)


CreatorDep = Annotated[Principal, Depends(creating_principal)]
ReaderDep = Annotated[Principal, Depends(reading_principal)]
