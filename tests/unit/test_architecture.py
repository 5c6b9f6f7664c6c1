"""The package layers of ARCHITECTURE.md hold: no module imports upward.

Read from the source (every ``import`` and ``from ... import``, lazy ones included), so a
new import that breaks the layering fails here, not in a review.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

SOURCE = Path(__file__).resolve().parents[2] / "src" / "reelforge"

LAYERS: dict[str, int] = {
    # 0: foundations, importing nothing else of reelforge
    "errors": 0,
    "settings": 0,
    "logs": 0,
    "metrics": 0,
    "webhooks": 1,
    "retrying": 0,
    # 1: libraries for one concern each
    "catalog": 1,
    "media": 1,
    "storage": 1,
    "prompts": 1,
    "client": 1,
    # 2: the job store and the engines
    "jobs": 2,
    "engines": 2,
    # 3: putting them together
    "runtime": 3,
    "generations": 3,
    "openai_videos": 3,
    "documents": 3,
    "live": 3,
    "ratelimits": 3,
    # 4: processes that run jobs
    "worker": 4,
    # 5: the HTTP edge
    "api": 5,
    "doors": 5,
    # 6: the command line
    "cli": 6,
    "__main__": 6,
}
"""Copied from ARCHITECTURE.md ("Layers"); keep both in step."""

CLIENT_MAY_IMPORT = {"client", "retrying"}
"""The SDK ships to users who never run the server: it stays an island."""


def _package(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "reelforge":
        return None
    return parts[1] if len(parts) > 1 else ""


def imports_by_package() -> dict[str, set[tuple[str, str]]]:
    """{package: {(imported package, where)}} for every reelforge import in the source."""
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for path in SOURCE.rglob("*.py"):
        relative = path.relative_to(SOURCE.parent).with_suffix("")
        package = _package(".".join(relative.parts))
        if package is None or package in ("__init__",):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                target = _package(name)
                if target not in (None, "", package):
                    found[package].add((target, f"{relative}:{node.lineno}"))
    return found


def test_every_package_has_a_layer() -> None:
    packages = {
        path.stem if path.is_file() else path.name
        for path in SOURCE.iterdir()
        if (path.suffix == ".py" and path.stem != "__init__")
        or (path.is_dir() and (path / "__init__.py").exists())
    }
    assert packages <= set(LAYERS), f"give these a layer: {sorted(packages - set(LAYERS))}"


def test_no_package_imports_upward() -> None:
    upward = [
        f"{where}: {package} (layer {LAYERS[package]}) imports {target} (layer {LAYERS[target]})"
        for package, targets in imports_by_package().items()
        for target, where in sorted(targets)
        if LAYERS[target] > LAYERS[package]
    ]
    assert upward == []


def test_packages_of_one_layer_form_no_cycle() -> None:
    graph = {
        package: {t for t, _ in targets if LAYERS[t] == LAYERS[package]}
        for package, targets in imports_by_package().items()
    }
    for package, targets in graph.items():
        for target in targets:
            assert package not in graph.get(target, set()), f"{package} <-> {target}"


def test_the_sdk_imports_nothing_of_the_server() -> None:
    outside = {
        (target, where)
        for target, where in imports_by_package()["client"]
        if target not in CLIENT_MAY_IMPORT
    }
    assert outside == set()
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, reelforge; from reelforge import Client; "
            "print(' '.join(m for m in ('av', 'numpy', 'sqlalchemy', 'PIL', 'fastapi') "
            "if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert loaded == []


def test_doors_reach_the_http_edge_only_through_its_protocol() -> None:
    """``api`` includes the doors' routers, so a door importing ``api`` would be a cycle;
    it uses ``doors.edge.Edge`` instead."""
    assert {where for target, where in imports_by_package()["doors"] if target == "api"} == set()
