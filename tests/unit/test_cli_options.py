"""Every CLI option can also be set through a ``REELFORGE_*`` environment variable."""

from __future__ import annotations

import pytest
import typer.main

from reelforge.cli import app

pytestmark = pytest.mark.unit
TYPER_OWN = {"help", "install_completion", "show_completion", "version"}


def _options(command, path: str):
    for param in command.params:
        if param.param_type_name == "option" and param.name not in TYPER_OWN:
            yield path, param
    for name, sub in getattr(command, "commands", {}).items():
        yield from _options(sub, f"{path} {name}")


def test_every_option_has_an_environment_variable() -> None:
    options = list(_options(typer.main.get_command(app), "reelforge"))
    assert len(options) > 20
    missing = [f"{path} --{param.name}" for path, param in options if not param.envvar]
    assert missing == []
    names = [param.envvar for _, param in options]
    assert all(str(name).startswith("REELFORGE_") for name in names)
