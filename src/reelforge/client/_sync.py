"""``Client``: the blocking SDK, performing the core's actions with ``httpx.Client``."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx

from reelforge.client._core import (
    Action,
    ClientCore,
    Emit,
    Notify,
    Operation,
    ReadChunk,
    Send,
    Sleep,
    as_list,
)
from reelforge.client.models import Generation, GenerationCreated, GenerationPage

T = TypeVar("T")


class Client:
    """A client of the reelforge / AI/ML API video endpoints.

    ``api_key`` defaults to ``$REELFORGE_API_KEY``; ``base_url`` to ``$REELFORGE_BASE_URL``
    or ``http://127.0.0.1:8000`` (``https://api.aimlapi.com/v2`` works too). ``timeout`` is
    per request (long-polls get their ``wait`` on top); ``max_retries`` bounds retries of
    transient failures; ``poll_interval`` is the first pause between polls on servers that
    cannot long-poll (default 1 s, growing x1.5 up to 10 s). Safe to share between
    threads; close it (or use ``with``) to release connections.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float | httpx.Timeout | None = 60.0,
        max_retries: int = 4,
        transport: httpx.BaseTransport | None = None,
        poll_interval: float | None = None,
    ) -> None:
        self._core = ClientCore(
            api_key,
            base_url,
            timeout=timeout,
            max_retries=max_retries,
            poll_interval=poll_interval,
        )
        self._http = httpx.Client(transport=transport, **self._core.http_options())
        self._sleep: Callable[[float], Any] = time.sleep

    @property
    def base_url(self) -> str:
        return self._core.base_url

    def __repr__(self) -> str:
        return f"Client(base_url={self.base_url!r})"

    def create(
        self, model: str, prompt: str, *, idempotency_key: str | None = None, **params: Any
    ) -> GenerationCreated:
        """Start a generation. ``image_url``/``tail_image_url`` may be paths or bytes.

        Sent with an ``Idempotency-Key`` (a new UUID unless given), so retries after
        ambiguous failures cannot create a second video on servers that honour it.
        """
        return self._run(self._core.create(model, prompt, idempotency_key, params))

    def get(self, generation_id: str, *, wait: float | None = None) -> Generation:
        """The current state; ``wait`` (seconds, at most 30) long-polls on reelforge."""
        return self._run(self._core.get(generation_id, wait))

    def wait(
        self,
        generation_id: str,
        *,
        timeout: float = 900.0,
        on_progress: Callable[[Generation], Any] | None = None,
    ) -> Generation:
        """The completed generation; raises ``GenerationFailed`` or ``WaitTimeout``.

        Long-polls on reelforge (completion is seen at once), otherwise polls at growing
        intervals. ``on_progress`` gets each new state; with it, long-polls return at least
        every 2 s so ``progress`` moves.
        """
        return self._run(self._core.wait(generation_id, timeout, on_progress))

    def generate(
        self,
        model: str,
        prompt: str,
        *,
        timeout: float = 900.0,
        on_progress: Callable[[Generation], Any] | None = None,
        idempotency_key: str | None = None,
        **params: Any,
    ) -> Generation:
        """``create`` then ``wait``: the completed generation, ready to ``download``."""
        operation = self._core.generate(
            model, prompt, idempotency_key, timeout, on_progress, params
        )
        return self._run(operation)

    def download(
        self,
        generation_or_url: Generation | str,
        path: str | os.PathLike[str],
        *,
        on_progress: Callable[[int, int | None], Any] | None = None,
    ) -> Path:
        """Save the video of a generation (a ``Generation``, or its id) or at a URL to
        ``path`` (via ``path.part``, resumed if present); returns it."""
        return self._run(self._core.download(generation_or_url, path, on_progress))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def list(
        self,
        *,
        status: str | list[str] | None = None,
        model: str | list[str] | None = None,
        page_size: int = 20,
    ) -> Iterator[GenerationPage]:
        """The caller's generations, newest first, one page at a time (reelforge).

        Pages are fetched as the iteration reaches them; ``status`` and ``model`` filter.
        """
        return self._iterate(self._core.list_pages(page_size, as_list(status), as_list(model)))

    def cancel(self, generation_id: str) -> Generation:
        """Stop a generation (reelforge): it ends in ``error`` with ``error.name ==
        "Cancelled"``. ``ConflictError`` when it already finished."""
        return self._run(self._core.cancel(generation_id))

    def delete(self, generation_id: str) -> None:
        """Delete a generation, its video and its inputs (reelforge); cancels it first."""
        self._run(self._core.delete(generation_id))

    def events(self, generation_id: str) -> Iterator[Generation]:
        """The generation on every change of status, stage or progress, until it is done
        (reelforge live events; a dropped connection is resumed where it left off)."""
        return self._iterate(self._core.events(generation_id))

    def _run(self, operation: Operation[T]) -> T:
        """Drive a core operation to its result, performing each action it yields."""
        outcome: list[T] = []
        for _ in self._steps(operation, outcome):
            pass
        return outcome[0]

    def _iterate(self, operation: Operation[Any]) -> Iterator[Any]:
        """Drive a streaming operation, yielding what it emits."""
        yield from self._steps(operation, [])

    def _steps(self, operation: Operation[T], outcome: list[T]) -> Iterator[Any]:
        streams: dict[int, tuple[httpx.Response, Iterator[bytes]]] = {}
        result: Any = None
        error: httpx.HTTPError | None = None
        try:
            while True:
                try:
                    action = operation.send(result) if error is None else operation.throw(error)
                except StopIteration as stop:
                    outcome.append(stop.value)
                    return
                result, error = None, None
                if isinstance(action, Emit):
                    yield action.item
                    continue
                try:
                    result = self._perform(action, streams)
                except httpx.HTTPError as failure:
                    error = failure
        finally:
            operation.close()
            for response, _ in streams.values():
                response.close()

    def _perform(
        self, action: Action, streams: dict[int, tuple[httpx.Response, Iterator[bytes]]]
    ) -> Any:
        if isinstance(action, Send):
            request = self._http.build_request(
                action.method,
                action.url,
                params=action.params,
                json=action.json,
                headers=action.headers,
                timeout=action.timeout or httpx.USE_CLIENT_DEFAULT,
            )
            response = self._http.send(
                request, stream=action.stream, follow_redirects=action.follow_redirects
            )
            if action.stream:
                streams[id(response)] = (response, _chunks(response))
            return response
        if isinstance(action, ReadChunk):
            response, chunks = streams[id(action.response)]
            chunk = next(chunks, b"")
            if not chunk:
                response.close()
            return chunk
        if isinstance(action, Sleep):
            self._sleep(action.seconds)
            return None
        if isinstance(action, Notify):
            action.callback(*action.args)
            return None
        raise TypeError(f"unknown action {action!r}")


def _chunks(response: httpx.Response) -> Iterator[bytes]:
    """Raw chunks; a response built in memory (e.g. by MockTransport) is already read."""
    if response.is_stream_consumed:
        yield response.content
        return
    yield from response.iter_raw()
