"""The GPU probe (``python -m benchmarks.gpu``) runs its CPU smoke path: every section
writes its rows into the JSON file and the table; options this machine cannot run (SAGE,
FP8 without CUDA) are recorded with the reason instead of stopping the probe."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("family", "offload", "attention", "cache", "compile", "fp8", "wan-1.3b-shaped")


def test_the_probe_runs_on_the_cpu_and_records_every_section(tmp_path: Path) -> None:
    out = tmp_path / "gpu-probe.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu", "--device", "cpu", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["quick"] is True and report["environment"]["device"] == "cpu"
    checks = {(row["section"], row["name"]): row for row in report["checks"]}
    assert {section for section, _ in checks} == set(SECTIONS)
    cache = checks[("cache", "first_block wan_t2v")]
    assert cache["ok"] is True and cache["hooked_modules"] > 0 and cache["skipped_calls"] > 0
    compiled = checks[("compile", "wan_t2v")]
    assert compiled["ok"] is True and compiled["second_shape_seconds"] > 0
    shaped = checks[("wan-1.3b-shaped", "bf16")]
    assert shaped["ok"] is True and shaped["engine_seconds_per_step"] > 0
    assert shaped["bare_seconds_per_step"] > 0
    for refused in (("attention", "sage"), ("fp8", "wan_t2v")):
        assert checks[refused]["ok"] is False
        assert "needs a CUDA GPU" in checks[refused]["error"]
    table = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert len(table) == len(report["checks"]) + 1  # and the header (the rule starts "|-")
