"""What the API tells its operators: request metrics and the request id in every log line."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reelforge import metrics
from reelforge.logs import request_id_var

UNMATCHED = "unmatched"
"""The route label of requests that matched no route (so scanners cannot blow up the
number of time series)."""


class ObserveMiddleware:
    """Counts and times every HTTP request by route template; binds the request id to
    the logging context. Sits inside ``RequestContextMiddleware``, which makes the id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = request_id_var.set(scope.get("state", {}).get("request_id"))
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = _route_of(scope)
            method = scope.get("method", "GET")
            metrics.HTTP_REQUESTS.labels(route, method, str(status)).inc()
            metrics.HTTP_LATENCY.labels(route, method).observe(time.perf_counter() - started)
            request_id_var.reset(token)


def _route_of(scope: Scope) -> str:
    path = getattr(scope.get("route"), "path", None)
    return str(path) if path else UNMATCHED
