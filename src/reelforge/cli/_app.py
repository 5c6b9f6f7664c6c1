"""The Typer app, consoles and options shared by the command modules."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from reelforge.settings import Settings

app = typer.Typer(
    help="reelforge: self-hosted AI/ML API-compatible video generation.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console(soft_wrap=True)  # never break paths or ids across lines
err_console = Console(stderr=True, soft_wrap=True)


def settings_with(**overrides: Any) -> Settings:
    """Settings from the environment, with the options the user passed on top."""
    return Settings(**{key: value for key, value in overrides.items() if value is not None})


BaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        envvar="REELFORGE_BASE_URL",
        help="API root, e.g. http://127.0.0.1:8000 or https://api.aimlapi.com.",
        show_default=False,
    ),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option("--api-key", envvar="REELFORGE_API_KEY", help="API key.", show_default=False),
]
TimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout",
        envvar="REELFORGE_WAIT_TIMEOUT",
        help="Seconds to wait for a generation to finish.",
    ),
]
DEFAULT_WAIT_TIMEOUT_SECONDS = 900.0


def print_table(columns: list[str], rows: list[list[str]]) -> None:
    """A table on a terminal; tab-separated lines with a header when piped."""
    if console.is_terminal:
        from rich.table import Table

        table = Table(*columns)
        for row in rows:
            table.add_row(*row)
        console.print(table)
        return
    for row in [columns, *rows]:
        console.print("\t".join(row), highlight=False, soft_wrap=True, markup=False)
