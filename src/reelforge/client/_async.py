"""``AsyncClient``: the asyncio SDK, performing the core's actions with ``httpx.AsyncClient``."""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import AsyncIterator, Awaitable, Callable
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


class AsyncClient:
    """The awaitable twin of ``Client``: same arguments, same methods, same errors.

    ``transport`` is an ``httpx.AsyncBaseTransport``; ``close()`` is awaitable.

    ``on_progress`` callbacks may be plain functions or coroutine functions.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float | httpx.Timeout | None = 60.0,
        max_retries: int = 4,
        transport: httpx.AsyncBaseTransport | None = None,
        poll_interval: float | None = None,
    ) -> None:
        self._core = ClientCore(
            api_key,
            base_url,
            timeout=timeout,
            max_retries=max_retries,
            poll_interval=poll_interval,
        )
        self._http = httpx.AsyncClient(transport=transport, **self._core.http_options())
        self._sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep

    @property
    def base_url(self) -> str:
        return self._core.base_url

    def __repr__(self) -> str:
        return f"AsyncClient(base_url={self.base_url!r})"

    async def create(
        self, model: str, prompt: str, *, idempotency_key: str | None = None, **params: Any
    ) -> GenerationCreated:
        """Start a generation; see ``Client.create``."""
        return await self._run(self._core.create(model, prompt, idempotency_key, params))

    async def get(self, generation_id: str, *, wait: float | None = None) -> Generation:
        """The current state; ``wait`` (seconds, at most 30) long-polls on reelforge."""
        return await self._run(self._core.get(generation_id, wait))

    async def wait(
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
        return await self._run(self._core.wait(generation_id, timeout, on_progress))

    async def generate(
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
        return await self._run(operation)

    async def download(
        self,
        generation_or_url: Generation | str,
        path: str | os.PathLike[str],
        *,
        on_progress: Callable[[int, int | None], Any] | None = None,
    ) -> Path:
        """Save the video of a generation (a ``Generation``, or its id) or at a URL to
        ``path`` (via ``path.part``, resumed if present); returns it."""
        return await self._run(self._core.download(generation_or_url, path, on_progress))

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def list(
        self,
        *,
        status: str | list[str] | None = None,
        model: str | list[str] | None = None,
        page_size: int = 20,
    ) -> AsyncIterator[GenerationPage]:
        """``async for page in client.list(...)``: see ``Client.list``."""
        return self._iterate(self._core.list_pages(page_size, as_list(status), as_list(model)))

    async def cancel(self, generation_id: str) -> Generation:
        return await self._run(self._core.cancel(generation_id))

    async def delete(self, generation_id: str) -> None:
        await self._run(self._core.delete(generation_id))

    def events(self, generation_id: str) -> AsyncIterator[Generation]:
        """``async for generation in client.events(id)``: see ``Client.events``."""
        return self._iterate(self._core.events(generation_id))

    async def _run(self, operation: Operation[T]) -> T:
        """Drive a core operation to its result, performing each action it yields."""
        outcome: list[T] = []
        async for _ in self._steps(operation, outcome):
            pass
        return outcome[0]

    async def _iterate(self, operation: Operation[Any]) -> AsyncIterator[Any]:
        async for item in self._steps(operation, []):
            yield item

    async def _steps(self, operation: Operation[T], outcome: list[T]) -> AsyncIterator[Any]:
        streams: dict[int, tuple[httpx.Response, AsyncIterator[bytes]]] = {}
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
                    result = await self._perform(action, streams)
                except httpx.HTTPError as failure:
                    error = failure
        finally:
            operation.close()
            for response, _ in streams.values():
                await response.aclose()

    async def _perform(
        self, action: Action, streams: dict[int, tuple[httpx.Response, AsyncIterator[bytes]]]
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
            response = await self._http.send(
                request, stream=action.stream, follow_redirects=action.follow_redirects
            )
            if action.stream:
                streams[id(response)] = (response, _chunks(response))
            return response
        if isinstance(action, ReadChunk):
            response, chunks = streams[id(action.response)]
            chunk = await anext(chunks, b"")
            if not chunk:
                await response.aclose()
            return chunk
        if isinstance(action, Sleep):
            await self._sleep(action.seconds)
            return None
        if isinstance(action, Notify):
            outcome = action.callback(*action.args)
            if inspect.isawaitable(outcome):
                await outcome
            return None
        raise TypeError(f"unknown action {action!r}")


async def _chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    """Raw chunks; a response built in memory (e.g. by MockTransport) is already read."""
    if response.is_stream_consumed:
        yield response.content
        return
    async for chunk in response.aiter_raw():
        yield chunk
