"""Lifecycle commands over the SDK: ``list``, ``cancel``, ``delete``, ``watch``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import typer

from reelforge.cli._app import ApiKeyOption, BaseUrlOption, app, console, err_console, print_table
from reelforge.cli.generation import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    StatusDisplay,
    fail,
    open_client,
    percent_of,
)
from reelforge.client import Client, ReelforgeClientError

T = TypeVar("T")

GenerationIdArgument = Annotated[str, typer.Argument(help="The generation id.")]


@app.command("list")
def list_generations(
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
    status: Annotated[
        list[str] | None,
        typer.Option("--status", envvar="REELFORGE_LIST_STATUS", help="Only this status (repeat)."),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", envvar="REELFORGE_LIST_MODEL", help="Only this model."),
    ] = None,
    limit: Annotated[
        int,
        typer.Option(
            "--limit", "-n", envvar="REELFORGE_LIST_LIMIT", min=1, help="At most this many."
        ),
    ] = 20,
    as_json: Annotated[
        bool, typer.Option("--json", envvar="REELFORGE_JSON", help="One JSON document a line.")
    ] = False,
) -> None:
    """Your generations, newest first."""
    rows: list[list[str]] = []
    with open_client(base_url, api_key) as client:
        try:
            for page in client.list(status=status, model=model, page_size=min(limit, 100)):
                for generation in page.data:
                    if len(rows) >= limit:
                        break
                    if as_json:
                        console.file.write(generation.model_dump_json() + "\n")
                    percent = percent_of(generation)
                    created = (
                        f"{generation.created_at:%Y-%m-%d %H:%M:%S}"
                        if generation.created_at
                        else ""
                    )
                    rows.append(
                        [
                            generation.id,
                            generation.model or "",
                            generation.status,
                            f"{percent:.0f}%" if percent is not None else "",
                            created,
                            generation.error.name if generation.error else "",
                        ]
                    )
                if len(rows) >= limit:
                    break
        except ReelforgeClientError as error:
            fail(str(error))
    if not as_json:
        print_table(["id", "model", "status", "progress", "created", "error"], rows)


def _with_client(base_url: str | None, api_key: str | None, call: Callable[[Client], T]) -> T:
    """``call`` with a client; an SDK error is one clean line and exit status 1."""
    with open_client(base_url, api_key) as client:
        try:
            return call(client)
        except ReelforgeClientError as error:
            fail(str(error))
    raise AssertionError("unreachable")  # pragma: no cover


@app.command()
def cancel(
    generation_id: GenerationIdArgument,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Cancel a generation: a queued one never starts, a running one stops."""
    generation = _with_client(base_url, api_key, lambda client: client.cancel(generation_id))
    if generation.status == "error":
        console.print(f"cancelled {generation_id}", highlight=False)
    else:
        console.print(f"cancelling {generation_id} (it stops within seconds)", highlight=False)


@app.command()
def delete(
    generation_id: GenerationIdArgument,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Delete a generation, its video and its inputs (cancelling it if it runs)."""
    _with_client(base_url, api_key, lambda client: client.delete(generation_id))
    console.print(f"deleted {generation_id}", highlight=False)


@app.command()
def watch(
    generation_id: GenerationIdArgument,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", envvar="REELFORGE_JSON", help="Print each state as JSON.")
    ] = False,
) -> None:
    """Follow a generation live until it is done (exit 0 completed, 1 failed)."""
    display = StatusDisplay(generation_id)
    last = None
    with open_client(base_url, api_key) as client:
        try:
            with display.shown():
                for generation in client.events(generation_id):
                    last = generation
                    if as_json:
                        console.file.write(generation.model_dump_json() + "\n")
                        console.file.flush()
                    else:
                        display.update(generation)
        except KeyboardInterrupt:
            err_console.print("\nStopped watching; the generation goes on.", highlight=False)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except ReelforgeClientError as error:
            fail(str(error))
    if last is None:
        fail("the server sent no state for this generation")
    if last.status == "completed":
        if not as_json and last.video is not None:
            console.print(f"completed: {last.video.url}", highlight=False)
        return
    if not as_json and last.error is not None:
        err_console.print(f"failed: {last.error.name}: {last.error.message}", highlight=False)
    raise typer.Exit(EXIT_FAILED)


__all__ = ["cancel", "delete", "list_generations", "watch"]
