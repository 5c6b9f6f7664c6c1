"""What a front door needs from the HTTP edge, without importing ``api``.

``api`` includes the doors' routers and maps their errors, so a door importing ``api``
would close a cycle; the app hands this interface over on ``app.state.edge`` instead.
"""

from __future__ import annotations

from typing import Literal, Protocol

from starlette.requests import Request
from starlette.responses import Response

from reelforge.jobs import Principal

Kind = Literal["create", "read"]


class Edge(Protocol):
    async def principal(self, token: str, kind: Kind, response: Response) -> Principal:
        """The key ``token`` stands for, counted against its ``kind`` of requests per
        minute (rate-limit headers go on ``response``); ``Unauthorized`` if none."""
        ...

    def stream(self, request: Request, key: str) -> Response:
        """A stored file as the answer (``Range`` honoured)."""
        ...


def edge_of(request: Request) -> Edge:
    return request.app.state.edge
