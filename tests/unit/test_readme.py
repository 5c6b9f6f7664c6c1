"""The README's examples stay true: its TOML configuration parses into the settings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reelforge.engines import EngineRouter
from reelforge.settings import Settings

pytestmark = pytest.mark.unit
README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_toml_example_configures_routing(tmp_path, monkeypatch) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(), re.S)
    assert blocks, "the README shows a reelforge.toml"
    config = tmp_path / "reelforge.toml"
    config.write_text(blocks[0])
    monkeypatch.setenv("REELFORGE_CONFIG", str(config))
    for name in list(__import__("os").environ):
        if name.startswith("REELFORGE_") and name != "REELFORGE_CONFIG":
            monkeypatch.delenv(name)
    settings = Settings(home=tmp_path)
    router = EngineRouter(settings)
    assert router.engine_name("veo2") == "diffusers"
    assert router.engine_name("google/veo-3.0-i2v") == "aimlapi"
    assert settings.diffusers_model_path


def test_readme_test_command_is_what_ci_runs() -> None:
    text = README.read_text()
    command = re.search(r"<!-- test-command -->\n```bash\n(.*?)\n```", text, re.S)
    assert command is not None
    ci = (README.parent / ".ci" / "run").read_text()
    assert "<!-- test-command -->" in ci  # CI extracts the command from the README
    assert "pytest" in command.group(1)


def test_readme_says_how_to_run_the_cli_after_installing() -> None:
    """The install command leaves `reelforge` in .venv/bin, which is not on PATH."""
    text = README.read_text()
    after_setup = text[text.index("<!-- test-command -->") :][:1500]
    assert ".venv/bin/reelforge" in after_setup
    assert "source .venv/bin/activate" in after_setup
