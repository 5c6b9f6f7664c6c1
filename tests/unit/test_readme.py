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


def test_readme_says_what_the_default_engine_makes_on_its_first_screen() -> None:
    first_screen = README.read_text()[:1500]
    assert "`preview` engine" in first_screen and "placeholder" in first_screen
    assert "(#engines)" in first_screen  # and where real video comes from


def test_readme_install_commands_work_from_a_clone() -> None:
    """reelforge is not on PyPI: every extra is installed from the clone."""
    text = README.read_text()
    assert not re.findall(r"pip install '?reelforge\[", text)
    assert "pip install -e '.[postgres,s3]'" in text


def test_readme_postgres_steps_create_a_role_owning_its_database() -> None:
    text = README.read_text()
    assert "CREATE ROLE reelforge LOGIN" in text
    assert "createdb -h db.internal -U postgres --owner reelforge reelforge" in text


def test_readme_says_what_the_test_command_needs_next_to_it() -> None:
    text = README.read_text()
    after = text[text.index("<!-- test-command -->") :][:2500]
    for need in ("PostgreSQL", "Redis", "Chromium", "torch 2.13.0", "pytest -m unit"):
        assert need in after, need


def test_readme_openai_section_says_how_to_install_the_sdk() -> None:
    text = README.read_text()
    section = text[text.index("## OpenAI Videos API") :][:1200]
    assert "pip install openai" in section
