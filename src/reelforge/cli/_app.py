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


def _print_version(value: bool) -> None:
    if value:
        from reelforge import __version__

        console.print(f"reelforge {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version."
        ),
    ] = False,
) -> None:
    """reelforge: self-hosted AI/ML API-compatible video generation."""


def settings_with(**overrides: Any) -> Settings:
    """Settings from the environment, with the options the user passed on top.

    A value that does not validate is a ``ConfigurationError`` naming its variable.
    """
    from pydantic import ValidationError

    from reelforge.errors import ConfigurationError

    try:
        return Settings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as error:
        problems = "; ".join(
            f"REELFORGE_{'_'.join(str(part) for part in item['loc']).upper()}: {item['msg']}"
            for item in error.errors(include_url=False)
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from None
    except ValueError as error:  # e.g. REELFORGE_CONFIG naming a missing file
        raise ConfigurationError(str(error)) from None


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

        table = Table()
        for index, name in enumerate(columns):
            # The first column names things (model ids, key ids): never cut or wrapped.
            # Others fold instead of ending in "…", so no text is ever hidden.
            first = index == 0
            widest = max((len(row[0]) for row in rows), default=0)
            table.add_column(
                name, no_wrap=first, min_width=widest if first else None, overflow="fold"
            )
        for row in rows:
            table.add_row(*row)
        console.print(table)
        return
    # Written directly: rich would expand the tabs into spaces.
    for row in [columns, *rows]:
        # Written as is: rich would expand the tabs into spaces.
        console.file.write("\t".join(row) + "\n")
    console.file.flush()
