"""The ``reelforge`` command line. Every option also reads a ``REELFORGE_*`` variable.

Output is rich on a terminal and plain (one line per event) when piped.
"""

from __future__ import annotations

from reelforge.cli import batch, generation, lifecycle, server  # noqa: F401 - registers commands
from reelforge.cli._app import app, err_console


def main() -> None:
    from rich.markup import escape

    from reelforge.errors import ReelforgeError

    try:
        app()
    except ReelforgeError as error:
        err_console.print(f"[red]error:[/] {escape(error.message)}", highlight=False)
        raise SystemExit(1) from None


__all__ = ["app", "main"]
