"""Pickup (created to started) and notice (completed to the client) on the embedded setup."""

from __future__ import annotations

import time
from datetime import datetime

import httpx

from benchmarks.core import HEADERS, Result, Scale, median, reelforge_server


def _when(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def pickup_and_notice(scale: Scale) -> list[Result]:
    jobs = int(scale.pick(20, 2))
    pickups, notices = [], []
    with reelforge_server() as server, httpx.Client(headers=HEADERS, timeout=60) as client:
        body = {"model": "veo2", "prompt": "a kite", "duration": 5}
        for _ in range(jobs):
            job = client.post(f"{server.url}/v2/video/generations", json=body).json()["id"]
            state = {"status": "queued"}
            while state["status"] not in ("completed", "error"):
                state = client.get(
                    f"{server.url}/v2/video/generations",
                    params={"generation_id": job, "wait": 30},
                ).json()
            noticed = time.time()
            pickups.append((_when(state["started_at"]) - _when(state["created_at"])) * 1000)
            notices.append((noticed - _when(state["completed_at"])) * 1000)
    pickup, notice = median(pickups), median(notices)
    return [
        Result(
            f"pickup, created to started ({jobs} jobs)",
            f"p50 {pickup:.1f} ms",
            "-",
            None,
            "p50 < 50 ms",
            pickup < 50,
        ),
        Result(
            f"notice, completed to a long-polling client ({jobs} jobs)",
            f"p50 {notice:.1f} ms",
            "-",
            None,
            "p50 < 100 ms",
            notice < 100,
        ),
    ]
