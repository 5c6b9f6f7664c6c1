"""FastAPI dependencies: the services on ``app.state`` and the calling key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from reelforge.errors import Unauthorized
from reelforge.generations import Generations
from reelforge.jobs import JobStore, KeyStore, Principal
from reelforge.settings import Settings
from reelforge.storage import Storage

UNAUTHORIZED_MESSAGE = (
    "This request requires a valid API key. Send it as 'Authorization: Bearer <KEY>'; "
    "an operator creates keys with `reelforge keys create`."
)


@dataclass
class Services:
    settings: Settings
    store: JobStore
    keys: KeyStore
    storage: Storage
    generations: Generations


def get_services(request: Request) -> Services:
    return request.app.state.services


_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <KEY>`")


async def get_principal(
    services: Annotated[Services, Depends(get_services)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or not credentials.credentials:
        raise Unauthorized(UNAUTHORIZED_MESSAGE)
    principal = await run_in_threadpool(services.keys.authenticate, credentials.credentials)
    if principal is None:
        raise Unauthorized(UNAUTHORIZED_MESSAGE)
    return principal


ServicesDep = Annotated[Services, Depends(get_services)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
