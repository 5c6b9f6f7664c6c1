"""Fault injection: a full disk that lasts a moment, on a small tmpfs (root only).

A 20 s full disk used to end 15 of 36 jobs in ``error``. Now a job that meets it waits
for room (``REELFORGE_STORAGE_OUTAGE_SECONDS``) and completes; nothing is left behind."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from support import LiveServer, wait_until

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
from test_disk_full import filled, small_disk, work_files  # noqa: F401

pytestmark = pytest.mark.faults
JOBS = 3


def test_jobs_wait_out_a_full_disk_and_complete(small_disk: Path, tmp_path: Path) -> None:  # noqa: F811
    files = small_disk / "files"
    server = LiveServer(
        home=tmp_path / "home",
        env={
            "REELFORGE_STORAGE_URL": files.as_uri(),
            "REELFORGE_STORAGE_OUTAGE_SECONDS": "90",
            "REELFORGE_WORKERS": "2",
        },
    ).start()
    try:
        ids = [
            server.create({"model": "veo2", "prompt": f"a lighthouse {n}"}).json()["id"]
            for n in range(JOBS)
        ]
        with filled(small_disk):
            wait_until(
                lambda: any(
                    server.get(job).json().get("stage") == "waiting for storage" for job in ids
                ),
                timeout=90,
                interval=0.2,
            )
        done = [server.wait(job, timeout=180) for job in ids]
        assert [job["status"] for job in done] == ["completed"] * JOBS, done
        videos = files / "videos"
        tokens = {job["video"]["url"].split("/files/videos/")[1].split("/")[0] for job in done}
        assert {path.name for path in videos.iterdir()} == tokens, "no orphans, none missing"
        for job in done:
            token = job["video"]["url"].split("/files/videos/")[1].split("/")[0]
            assert (videos / token / "output.mp4").stat().st_size == job["video"]["file_size"]
        assert work_files(files) == []
    finally:
        server.stop()
