"""``doors.edge.Edge`` for the front-door packages: the same keys, limits and file
streaming as the routes in ``api`` use."""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool

from reelforge.api.deps import UNAUTHORIZED_MESSAGE, Services, _counted
from reelforge.api.files import stream_object
from reelforge.doors.edge import Kind
from reelforge.errors import Unauthorized
from reelforge.jobs import Principal


class HttpEdge:
    def __init__(self, services: Services) -> None:
        self._services = services

    async def principal(self, token: str, kind: Kind, response: Response) -> Principal:
        keys = self._services.database.keys
        principal = keys.authenticate_fixed(token) or await run_in_threadpool(
            keys.authenticate, token
        )
        if principal is None:
            raise Unauthorized(UNAUTHORIZED_MESSAGE)
        return await _counted(kind, response, self._services, principal)

    def stream(self, request: Request, key: str) -> Response:
        return stream_object(request, self._services.storage, key, "private, max-age=3600")
