"""The benchmark suite runs (a smoke run with tiny sizes): it asserts that every
benchmark produces its row, never what the timings are."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parents[2]
NAMES = (
    "status GET",
    "create (POST)",
    "preview engine, 1 s 720p text-to-video",
    "preview engine, 1 s 720p image-to-video",
    "pickup",
    "notice",
    "1 -> 2 worker processes on PostgreSQL",
    "concurrent downloads",
    "open long-polls and event streams",
    "diffusers engine",
)


def test_every_benchmark_runs_and_writes_its_row(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = out.read_text()
    assert report.startswith("# Benchmarks") and "--quick" in report
    assert "CPUs" in report and "Python" in report  # the machine is described
    rows = [line for line in report.splitlines() if line.startswith("| ") and "---" not in line]
    for name in NAMES:
        assert any(name in row for row in rows), (name, rows)
    assert all(row.count("|") == 7 for row in rows)
