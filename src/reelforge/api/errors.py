"""The API edge: every error leaves in the shape its front door publishes.

The AI/ML API shape ``{message, path, requestId, statusCode, timestamp}`` everywhere but
under ``/v1/`` (the OpenAI Videos API), where it is OpenAI's ``{"error": {message, type,
param, code}}`` so the ``openai`` SDK raises its own typed errors, and on Google's paths
(``doors.google``), where it is ``{"error": {code, message, status}}``. The request id is also
in the ``x-request-id`` header, so a user can quote it and an operator can find the log
line.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reelforge import __version__
from reelforge.catalog.fields import describe
from reelforge.doors import google
from reelforge.errors import ReelforgeError, snake_case
from reelforge.jobs.db import unavailable
from reelforge.logs import throttle

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
VERSION_HEADER = "x-reelforge-version"
"""Sent on every response, so clients can tell reelforge from the upstream API."""


def request_id(request: Request) -> str:
    return getattr(request.state, "request_id", None) or str(uuid.uuid4())


OPENAI_PREFIX = "/v1/"
_OPENAI_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_error",
}


def error_response(
    request: Request,
    status_code: int,
    message: str,
    headers: dict[str, str] | None = None,
    *,
    param: str | None = None,
    code: str | None = None,
) -> JSONResponse:
    rid = request_id(request)
    body: dict[str, object]
    if google.is_google_path(request.url.path):
        body = google.error_body(status_code, message)
    elif request.url.path.startswith(OPENAI_PREFIX):
        kind = "server_error" if status_code >= 500 else "invalid_request_error"
        body = {
            "error": {
                "message": message,
                "type": _OPENAI_TYPES.get(status_code, kind),
                "param": param,
                "code": code,
            }
        }
    else:
        body = {
            "message": message,
            "path": request.url.path,
            "requestId": rid,
            "statusCode": status_code,
            "timestamp": datetime.now(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
        }
    return JSONResponse(
        body, status_code=status_code, headers={REQUEST_ID_HEADER: rid, **(headers or {})}
    )


async def _domain_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ReelforgeError)
    headers = dict(getattr(error, "headers", None) or {})
    retry_after = getattr(error, "retry_after_seconds", None)
    if retry_after is not None:  # RateLimited, ServiceUnavailable
        headers["Retry-After"] = str(max(1, round(retry_after)))
    if error.status_code >= 500:
        # A full disk or a busy database fails every request alike: one line a minute.
        throttle.log(
            log,
            logging.ERROR,
            f"request failed: {error.name}: {error.message}",
            f"request failed: {error.message}",
            extra={"request_id": request_id(request)},
        )
    return error_response(
        request,
        error.status_code,
        error.message,
        headers,
        param=getattr(error, "field", None),
        code=snake_case(error.name),
    )


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    parts = []
    for item in error.errors():
        where = item["loc"][0] if item["loc"] else "request"
        field = ".".join(str(part) for part in item["loc"][1:])
        received = "undefined" if item["type"] == "missing" else describe(item.get("input"))
        parts.append(f"{field}: {item['msg']}, received {received}")
        kind = {"query": "Query", "body": "Body", "header": "Header"}.get(str(where), "Request")
    message = f"{kind} validation error: " + "; ".join(parts)
    first = error.errors()[0]["loc"] if error.errors() else ()
    param = ".".join(str(part) for part in first[1:]) or None
    return error_response(request, 400, message, param=param, code="invalid_request")


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 404:
        message = f"Cannot {request.method} {request.url.path}"
    elif error.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}"
    else:
        message = str(error.detail)
    return error_response(request, error.status_code, message, dict(error.headers or {}))


async def _database_error(request: Request, error: Exception) -> JSONResponse:
    """A locked, slow, unreachable or full database: 503/507 with Retry-After, one line."""
    return await _domain_error(request, unavailable(error))


async def _client_gone(request: Request, error: Exception) -> Response:
    """A client that hangs up mid-body is routine: one line, no traceback, no answer."""
    log.info(
        "client disconnected before sending the whole request",
        extra={"request_id": request_id(request), "path": request.url.path},
    )
    return Response(status_code=400)


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled error", extra={"request_id": request_id(request)})
    return error_response(request, 500, "Internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ReelforgeError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(OperationalError, _database_error)
    app.add_exception_handler(SQLAlchemyTimeoutError, _database_error)
    app.add_exception_handler(Exception, _unexpected)


class RequestContextMiddleware:
    """Gives each request an id and marks every response with reelforge's version."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == REQUEST_ID_HEADER.encode() for name, _ in headers):
                    headers.append((REQUEST_ID_HEADER.encode(), rid.encode()))
                headers.append((VERSION_HEADER.encode(), __version__.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)
