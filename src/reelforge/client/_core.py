"""The SDK's shared core: every decision, none of the waiting.

``Client`` and ``AsyncClient`` run the same operations. Each operation is a generator
that yields *actions* (send this request, read the next chunk, sleep, call back) and
receives their results; the sync client performs them with ``httpx.Client`` and
``time.sleep``, the async one with ``httpx.AsyncClient`` and ``asyncio.sleep``. Transport
errors are thrown back into the generator, so retries, idempotency detection, long-poll
fallback and download resume are written once, here. The only I/O done here is local:
reading an image file to inline it and writing the ``.part`` file of a download.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import time
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ValidationError

from reelforge import __version__
from reelforge.client._images import IMAGE_FIELDS, image_to_data_uri
from reelforge.client.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    DownloadError,
    GenerationFailed,
    InvalidRequestError,
    ReelforgeClientError,
    WaitTimeout,
    error_from_response,
)
from reelforge.client.models import Generation, GenerationCreated, GenerationPage
from reelforge.retrying import (
    RETRYABLE_STATUSES,
    SAFE_CREATE_RETRY_STATUSES,
    Backoff,
    never_sent,
    parse_retry_after,
)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

log = logging.getLogger("reelforge.client")
"""Retries and their waits are logged (a warning), so a wait is never silent."""

API_KEY_ENV = "REELFORGE_API_KEY"
BASE_URL_ENV = "REELFORGE_BASE_URL"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
USER_AGENT = f"reelforge-python/{__version__}"

GENERATIONS_PATH = "/v2/video/generations"
CANCEL_PATH = GENERATIONS_PATH + "/cancel"
EVENTS_PATH = GENERATIONS_PATH + "/events"
HEALTH_PATH = "/health"
VERSION_HEADER = "x-reelforge-version"
"""Sent by reelforge on every response: the server honours Idempotency-Key and ``wait``."""
WAIT_HEADER = "x-reelforge-wait"
"""Present when the server held a GET for ``wait``; absent when it ignored the parameter."""
IDEMPOTENCY_HEADER = "Idempotency-Key"

MAX_RETRY_AFTER_SECONDS = 60.0
"""A longer Retry-After is raised to the caller rather than slept through."""
PROBE_TIMEOUT_SECONDS = 5.0
MAX_LONG_POLL_SECONDS = 30.0
PROGRESS_LONG_POLL_SECONDS = 2.0
"""Long-polls wake only on status changes; with ``on_progress`` they return this often."""
FIRST_POLL_SECONDS = 1.0
POLL_GROWTH = 1.5
MAX_POLL_SECONDS = 10.0

MAX_URL_REFRESHES = 2
"""Fresh video URLs fetched by one download when the server says the URL expired."""
_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)")


@dataclass(frozen=True)
class Send:
    """Send a request; the result is the ``httpx.Response`` (headers only if ``stream``)."""

    method: str
    url: str
    headers: dict[str, str]
    params: dict[str, str] | None = None
    json: Any = None
    timeout: httpx.Timeout | None = None
    stream: bool = False
    follow_redirects: bool = False


@dataclass(frozen=True)
class ReadChunk:
    """The next raw chunk of a streamed response; ``b""`` at its end (it is then closed)."""

    response: httpx.Response


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Notify:
    """Call a user callback (awaited by the async client when it returns an awaitable)."""

    callback: Callable[..., Any]
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Emit:
    """Hand one item to the caller of a streaming operation (``list``, ``events``)."""

    item: Any


Action = Send | ReadChunk | Sleep | Notify | Emit
Operation = Generator[Action, Any, T]


def normalize_base_url(url: str) -> str:
    """The server root without a trailing ``/`` or ``/v2``, as the examples spell it."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"base_url must be an http(s) URL such as {DEFAULT_BASE_URL}: {url!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"base_url must not have a query or fragment: {url!r}")
    path = parts.path.rstrip("/")
    path = path.removesuffix("/v2")
    return f"{parts.scheme}://{parts.netloc}{path}"


def same_origin(url: str, other: str) -> bool:
    a, b = httpx.URL(url), httpx.URL(other)
    default = {"http": 80, "https": 443}
    return (a.scheme, a.host, a.port or default.get(a.scheme)) == (
        b.scheme,
        b.host,
        b.port or default.get(b.scheme),
    )


def parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """``(first byte, total size)`` from ``Content-Range``; ``None`` where not stated."""
    match = _CONTENT_RANGE.fullmatch((value or "").strip())
    if not match:
        return None, None
    first, _, total = match.groups()
    return (int(first) if first else None), (int(total) if total and total != "*" else None)


LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def connection_error(error: httpx.HTTPError, what: str, base_url: str) -> APIConnectionError:
    """Names the server that could not be reached, and how to start a local one."""
    kind = APITimeoutError if isinstance(error, httpx.TimeoutException) else APIConnectionError
    detail = f"{what}: {type(error).__name__}: {str(error) or 'no details'}"
    if not isinstance(error, httpx.ConnectError | httpx.ConnectTimeout):
        return kind(f"the API at {base_url} did not answer ({detail})")
    message = f"cannot connect to the API at {base_url} ({detail})"
    if httpx.URL(base_url).host in LOCAL_HOSTS:
        message += (
            "; is reelforge running? `reelforge serve` starts it; --base-url or "
            "REELFORGE_BASE_URL points elsewhere"
        )
    return kind(message)


def parse_model(model: type[M], response: httpx.Response) -> M:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as error:
        raise ReelforgeClientError(
            f"unexpected response from {response.request.url.path}: {error.errors()[0]['msg']}",
            status_code=response.status_code,
            request_id=response.headers.get("x-request-id"),
        ) from None


class ClientCore:
    """Configuration, what is known about the server, and the operations."""

    def __init__(
        self,
        api_key: str | None,
        base_url: str | None,
        *,
        timeout: float | httpx.Timeout | None,
        max_retries: int,
        poll_interval: float | None,
    ) -> None:
        api_key = api_key or os.environ.get(API_KEY_ENV)
        if not api_key:
            raise AuthenticationError(
                f"no API key: pass api_key=... or set {API_KEY_ENV} "
                "(`reelforge keys create` makes one)"
            )
        if max_retries < 0 or (poll_interval is not None and poll_interval <= 0):
            raise ValueError("max_retries must be >= 0 and poll_interval > 0")
        self.api_key = api_key
        self.base_url = normalize_base_url(
            base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        )
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.max_retries = max_retries
        self.poll_interval = poll_interval
        self.backoff = Backoff()
        self.clock: Callable[[], float] = time.monotonic
        self.is_reelforge: bool | None = None
        """True once a response carried ``x-reelforge-version``; False if the probe found none."""
        self.long_poll: bool | None = None
        """Whether GET honours ``wait``; None until a long-poll was tried."""

    def http_options(self) -> dict[str, Any]:
        return {"headers": {"User-Agent": USER_AGENT}, "timeout": self.timeout}

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def _observe(self, response: httpx.Response) -> None:
        if VERSION_HEADER in response.headers:
            self.is_reelforge = True

    # -- requests with retries ---------------------------------------------------------

    def _call(self, send: Send, *, create: bool = False) -> Operation[httpx.Response]:
        """Send with retries: any GET on transient failures; a create only when safe."""
        what = f"{send.method} {httpx.URL(send.url).path}"
        attempt, maybe_created = 0, False
        while True:
            retry_after = None
            try:
                response = yield send
            except httpx.HTTPError as error:
                failure: ReelforgeClientError = connection_error(error, what, self.base_url)
                ambiguous = not never_sent(error)
            else:
                self._observe(response)
                if response.is_success:
                    return response
                failure = error_from_response(
                    response.status_code,
                    response.headers,
                    response.content,
                    reason=response.reason_phrase,
                )
                if response.status_code not in RETRYABLE_STATUSES:
                    raise failure
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                ambiguous = response.status_code not in SAFE_CREATE_RETRY_STATUSES
            if create and ambiguous:
                maybe_created = True
                if not (yield from self._honours_idempotency()):
                    failure.may_have_been_created = True
                    failure.message += (
                        "; the generation may have been created anyway, and the request was not"
                        " retried because this server does not confirm Idempotency-Key support"
                        " (a retry could create, and charge, a second video)"
                    )
                    raise failure
            if attempt >= self.max_retries or (retry_after or 0) > MAX_RETRY_AFTER_SECONDS:
                if maybe_created:
                    failure.may_have_been_created = True
                    key = send.headers[IDEMPOTENCY_HEADER]
                    failure.message += (
                        f"; the generation may have been created: retrying with"
                        f" idempotency_key={key!r} is safe"
                    )
                raise failure
            delay = self.backoff.delay(attempt, retry_after)
            log.warning(
                "%s: %s; retrying in %.1f s%s (retry %d of %d)",
                what,
                _short(failure),
                delay,
                " as the server's Retry-After asks" if retry_after else "",
                attempt + 1,
                self.max_retries,
            )
            yield Sleep(delay)
            attempt += 1

    def _honours_idempotency(self) -> Operation[bool]:
        """Whether a repeated create is safe; probes ``/health`` once if nothing is known."""
        if self.is_reelforge is None:
            probe = Send(
                "GET",
                self._url(HEALTH_PATH),
                {},
                timeout=httpx.Timeout(min(self.timeout.read or math.inf, PROBE_TIMEOUT_SECONDS)),
            )
            with contextlib.suppress(httpx.HTTPError):
                self._observe((yield probe))
            self.is_reelforge = bool(self.is_reelforge)
        return self.is_reelforge

    def _may_long_poll(self) -> bool:
        return self.long_poll is not False and self.is_reelforge is not False

    # -- operations ----------------------------------------------------------------------

    def build_body(self, model: str, prompt: str, params: dict[str, Any]) -> dict[str, Any]:
        """The create body; ``None`` values are left out so the server applies its defaults."""
        body: dict[str, Any] = {"model": model, "prompt": prompt}
        for name, value in params.items():
            if value is not None:
                body[name] = image_to_data_uri(value, name) if name in IMAGE_FIELDS else value
        return body

    def create(
        self, model: str, prompt: str, idempotency_key: str | None, params: dict[str, Any]
    ) -> Operation[GenerationCreated]:
        body = self.build_body(model, prompt, params)
        headers = {**self._auth(), IDEMPOTENCY_HEADER: idempotency_key or str(uuid.uuid4())}
        send = Send("POST", self._url(GENERATIONS_PATH), headers, json=body)
        response = yield from self._call(send, create=True)
        created = parse_model(GenerationCreated, response)
        for warning in created.warnings or ():
            log.warning("the server ignored part of the request: %s", warning)
        return created

    def get(self, generation_id: str, wait: float | None = None) -> Operation[Generation]:
        generation, _ = yield from self._get(generation_id, wait)
        return generation

    def _get(self, generation_id: str, wait: float | None) -> Operation[tuple[Generation, bool]]:
        """The generation, and whether the server honoured ``wait`` (long-polled)."""
        params = {"generation_id": generation_id}
        timeout = self.timeout
        if wait is not None:
            wait = min(max(wait, 0.001), MAX_LONG_POLL_SECONDS)
            params["wait"] = f"{wait:.3f}".rstrip("0").rstrip(".")
            base = self.timeout
            read = None if base.read is None else base.read + wait
            timeout = httpx.Timeout(
                connect=base.connect, read=read, write=base.write, pool=base.pool
            )
        send = Send("GET", self._url(GENERATIONS_PATH), self._auth(), params, timeout=timeout)
        response = yield from self._call(send)
        return parse_model(Generation, response), WAIT_HEADER in response.headers

    def wait(
        self, generation_id: str, timeout: float, on_progress: Callable[..., Any] | None
    ) -> Operation[Generation]:
        try:
            return (yield from self._wait(generation_id, timeout, on_progress))
        except ReelforgeClientError as error:
            error.generation_id = error.generation_id or generation_id
            raise

    def _wait(
        self, generation_id: str, timeout: float, on_progress: Callable[..., Any] | None
    ) -> Operation[Generation]:
        """Long-poll while the server honours ``wait``, else poll at growing intervals."""
        deadline = self.clock() + timeout
        interval = self.poll_interval or FIRST_POLL_SECONDS
        ceiling = max(MAX_POLL_SECONDS, interval)
        slice_seconds = PROGRESS_LONG_POLL_SECONDS if on_progress else MAX_LONG_POLL_SECONDS
        last: Generation | None = None
        while True:
            remaining = deadline - self.clock()
            wait = None
            if last is not None and self._may_long_poll():
                wait = max(min(remaining, slice_seconds), 0.001)
            started = self.clock()
            try:
                generation, honoured = yield from self._get(generation_id, wait)
            except InvalidRequestError:
                if wait is None:
                    raise
                self.long_poll = False  # a server that refuses the parameter: poll instead
                continue
            if wait is not None:
                self.long_poll = honoured
            if on_progress and (last is None or _state(generation) != _state(last)):
                yield Notify(on_progress, (generation,))
            previous, last = last, generation
            if generation.failed:
                raise GenerationFailed(generation)
            if generation.is_done:
                return generation
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise WaitTimeout(generation, generation_id, timeout)
            if wait is not None and honoured:
                unchanged = previous is not None and previous.status == generation.status
                if not (unchanged and self.clock() - started < wait / 2):
                    continue  # the long-poll did the waiting (a server that answers early
                    # without a change is polled at intervals instead of in a hot loop)
            elif wait is None and previous is None and self._may_long_poll():
                continue  # the first look was immediate; the next one long-polls
            yield Sleep(min(interval, remaining))
            interval = min(interval * POLL_GROWTH, ceiling)

    def generate(
        self,
        model: str,
        prompt: str,
        idempotency_key: str | None,
        timeout: float,
        on_progress: Callable[..., Any] | None,
        params: dict[str, Any],
    ) -> Operation[Generation]:
        started = self.clock()
        created = yield from self.create(model, prompt, idempotency_key, params)
        remaining = max(0.0, timeout - (self.clock() - started))
        return (yield from self.wait(created.id, remaining, on_progress))

    def download(
        self,
        target: Generation | str,
        path: str | os.PathLike[str],
        on_progress: Callable[[int, int | None], Any] | None,
    ) -> Operation[Path]:
        is_url = isinstance(target, str) and target.startswith(("http://", "https://"))
        if not isinstance(target, (Generation, str)):
            raise TypeError("download() takes a Generation, a generation id or a video URL")
        generation_id = target.id if isinstance(target, Generation) else None
        if isinstance(target, str) and not is_url:
            generation_id = target
        try:
            if generation_id is not None and not isinstance(target, Generation):
                target, _ = yield from self._get(generation_id, None)
            if isinstance(target, Generation):
                if target.video is None:
                    raise DownloadError(_no_video(target))
                url, expected = target.video.url, target.video.file_size
            else:
                url, expected = target, None
            destination = Path(path)
            if destination.is_dir():
                raise ValueError(f"{destination} is a directory; pass the file to write")
            refresh = self._fresh_video_url(generation_id) if generation_id else None
            return (yield from self._download(url, destination, expected, on_progress, refresh))
        except ReelforgeClientError as error:
            error.generation_id = error.generation_id or generation_id
            raise

    def _fresh_video_url(self, generation_id: str) -> Callable[[], Operation[str | None]]:
        def refresh() -> Operation[str | None]:
            generation, _ = yield from self._get(generation_id, None)
            return generation.video.url if generation.video is not None else None

        return refresh

    def _download(
        self,
        url: str,
        path: Path,
        expected: int | None,
        on_progress: Callable[[int, int | None], Any] | None,
        refresh: Callable[[], Operation[str | None]] | None = None,
    ) -> Operation[Path]:
        """Stream to ``<path>.part``, resuming with Range, then rename into place.

        Video URLs may expire (signed URLs of reelforge, presigned ones of a bucket): a
        403 with ``refresh`` (a download of a generation) fetches the generation again
        for a fresh URL and resumes where it stopped.
        """
        part = path.with_name(path.name + ".part")
        total, attempt, refreshes = expected, 0, 0
        while True:
            headers = {"Accept-Encoding": "identity"}
            if same_origin(url, self.base_url):
                headers.update(self._auth())  # never to a CDN or any other host
            offset = part.stat().st_size if part.exists() else 0
            if total is not None and offset >= total:
                if offset == total:
                    break
                part.unlink()
                offset = 0
            ranged = {**headers, "Range": f"bytes={offset}-"} if offset else headers
            send = Send(
                "GET", url, ranged, timeout=self.timeout, stream=True, follow_redirects=True
            )
            received = 0
            try:
                response = yield send
                status = response.status_code
                first, size = parse_content_range(response.headers.get("content-range"))
                if status == 416 and offset and size == offset:
                    yield from _drain(response)
                    total = total or size
                    break
                if status == 200 or (status == 206 and first == offset):
                    if status == 200:
                        offset = 0  # a full answer: start over, cleanly
                        length = response.headers.get("content-length")
                        size = int(length) if length and length.isdigit() else None
                    if total is not None and size is not None and size != total:
                        raise DownloadError(f"the server has {size} bytes, expected {total}")
                    total = total if total is not None else size
                    with part.open("ab" if offset else "wb") as sink:
                        while chunk := (yield ReadChunk(response)):
                            sink.write(chunk)
                            received += len(chunk)
                            if on_progress:
                                yield Notify(on_progress, (offset + received, total))
                    break
                said = yield from _error_message(response)
                if status == 403 and refresh is not None and refreshes < MAX_URL_REFRESHES:
                    refreshes += 1
                    url = (yield from refresh()) or url  # the URL expired: get a fresh one
                    continue
                if status in (206, 416):  # not the range asked for: start over
                    part.unlink(missing_ok=True)
                    failure = DownloadError(
                        f"GET {_bare(url)}: unexpected range", status_code=status
                    )
                elif status in RETRYABLE_STATUSES:
                    failure = DownloadError(
                        f"GET {_bare(url)}: {said or f'HTTP {status}'}", status_code=status
                    )
                else:
                    # The server's explanation, not the signed URL's secrets.
                    raise DownloadError(
                        said or f"GET {_bare(url)}: {response.reason_phrase}",
                        status_code=status,
                        request_id=response.headers.get("x-request-id"),
                    )
                retry_after = parse_retry_after(response.headers.get("retry-after"))
            except httpx.HTTPError as error:
                failure = DownloadError(f"GET {url} failed: {type(error).__name__}: {error}")
                retry_after = None
            if received:
                attempt = 0  # progress was made: a flaky link still finishes
            if attempt >= self.max_retries:
                raise failure
            yield Sleep(self.backoff.delay(attempt, retry_after))
            attempt += 1
        size = part.stat().st_size if part.exists() else 0
        if total is not None and size != total:
            part.unlink(missing_ok=True)
            raise DownloadError(f"downloaded {size} bytes, expected {total}")
        os.replace(part, path)
        return path

    # -- reelforge extensions: list, cancel, delete, live events ----------------------

    def list_pages(
        self, limit: int, status: list[str] | None, model: list[str] | None
    ) -> Operation[None]:
        """Emit each page of the caller's generations, newest first, until the last."""
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": str(limit)}
            if status:
                params["status"] = status
            if model:
                params["model"] = model
            if cursor:
                params["after"] = cursor
            send = Send("GET", self._url(GENERATIONS_PATH), self._auth(), params)
            page = parse_model(GenerationPage, (yield from self._call(send)))
            yield Emit(page)
            if not page.has_more or not page.next_cursor:
                return
            cursor = page.next_cursor

    def cancel(self, generation_id: str) -> Operation[Generation]:
        params = {"generation_id": generation_id}
        send = Send("POST", self._url(CANCEL_PATH), self._auth(), params)
        return parse_model(Generation, (yield from self._call(send)))

    def delete(self, generation_id: str) -> Operation[None]:
        params = {"generation_id": generation_id}
        send = Send("DELETE", self._url(GENERATIONS_PATH), self._auth(), params)
        yield from self._call(send)

    def events(self, generation_id: str) -> Operation[None]:
        """Emit the generation on every change until it is done; a dropped stream is
        resumed with ``Last-Event-ID`` (after a backoff) so nothing is missed."""
        last_id: str | None = None
        failures = 0
        while True:
            headers = {**self._auth(), "Accept": "text/event-stream"}
            if last_id is not None:
                headers["Last-Event-ID"] = last_id
            send = Send(
                "GET",
                self._url(EVENTS_PATH),
                headers,
                {"generation_id": generation_id},
                timeout=httpx.Timeout(self.timeout.connect, read=None),
                stream=True,
            )
            try:
                response = yield send
                if not response.is_success:
                    content = b"".join((yield from _read_all(response)))
                    raise error_from_response(
                        response.status_code,
                        response.headers,
                        content,
                        reason=response.reason_phrase,
                    )
                decoder = _EventDecoder()
                while chunk := (yield ReadChunk(response)):
                    for event_id, data in decoder.feed(chunk):
                        last_id = event_id or last_id
                        generation = Generation.model_validate_json(data)
                        failures = 0
                        yield Emit(generation)
                        if generation.is_done:
                            yield from _drain(response)
                            return
                return  # the server ended the stream: the generation is final
            except httpx.HTTPError as error:
                failures += 1
                if failures > self.max_retries:
                    raise connection_error(error, f"GET {EVENTS_PATH}", self.base_url) from None
                yield Sleep(self.backoff.delay(failures - 1))


class _EventDecoder:
    """Server-Sent Events from bytes as they come: ``(id, data)`` per event."""

    def __init__(self) -> None:
        self._buffer = b""
        self._id: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[tuple[str | None, str]]:
        self._buffer += chunk
        events = []
        while True:
            line, found, rest = self._buffer.partition(b"\n")
            if not found:
                return events
            self._buffer = rest
            text = line.rstrip(b"\r").decode("utf-8", "replace")
            if not text:
                if self._data:
                    events.append((self._id, "\n".join(self._data)))
                self._data = []
                continue
            field, _, value = text.partition(":")
            value = value.removeprefix(" ")
            if field == "data":
                self._data.append(value)
            elif field == "id":
                self._id = value


def _read_all(response: httpx.Response) -> Operation[list[bytes]]:
    chunks = []
    while chunk := (yield ReadChunk(response)):
        chunks.append(chunk)
    return chunks


def _drain(response: httpx.Response) -> Operation[None]:
    while (yield ReadChunk(response)):
        pass


MAX_ERROR_BODY_BYTES = 64 * 2**10


def _error_message(response: httpx.Response) -> Operation[str]:
    """The server's message in an error answer to a download (read to its end, at most
    ``MAX_ERROR_BODY_BYTES`` kept); empty when it has none."""
    body = b""
    while chunk := (yield ReadChunk(response)):
        if len(body) < MAX_ERROR_BODY_BYTES:
            body += chunk
    error = error_from_response(response.status_code, response.headers, body[:MAX_ERROR_BODY_BYTES])
    return (
        ""
        if error.message in (response.reason_phrase, f"HTTP {response.status_code}")
        else error.message
    )


def _bare(url: str) -> str:
    """``url`` without its query: a signed URL's signature is a secret of sorts."""
    return url.split("?", 1)[0]


def _short(error: ReelforgeClientError) -> str:
    status = f"HTTP {error.status_code}: " if error.status_code is not None else ""
    return f"{status}{error.message}"


def _no_video(generation: Generation) -> str:
    if generation.video_expired:
        when = f" at {generation.expires_at:%Y-%m-%d %H:%M} UTC" if generation.expires_at else ""
        return (
            f"the video of this generation expired{when}: the server deleted it after its "
            "retention period; generate it again"
        )
    return f"the generation has no video (status {generation.status})"


def _state(generation: Generation) -> tuple[Any, ...]:
    return generation.status, generation.progress, generation.stage


def as_list(value: str | list[str] | None) -> list[str] | None:
    """A filter given as one value or several."""
    return [value] if isinstance(value, str) else value
