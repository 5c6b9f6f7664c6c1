"""The API under load, side by side with the anchor app (same uvicorn settings)."""

from __future__ import annotations

import asyncio
import json
import secrets
import time

import httpx

from benchmarks.core import (
    HEADERS,
    Result,
    Scale,
    anchor_server,
    load,
    percentile,
    reelforge_server,
)

CONNECTIONS = 64
CREATE_BODY = json.dumps({"model": "veo2", "prompt": "a lighthouse at dusk"}).encode()


def _completed_job(url: str) -> str:
    job = httpx.post(f"{url}/v2/video/generations", headers=HEADERS, content=CREATE_BODY).json()[
        "id"
    ]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = httpx.get(
            f"{url}/v2/video/generations",
            params={"generation_id": job, "wait": 10},
            headers=HEADERS,
            timeout=30,
        ).json()
        if state["status"] == "completed":
            return job
    raise RuntimeError("the benchmark's job did not complete")


def status_get_and_create(scale: Scale) -> list[Result]:
    seconds = scale.pick(10, 1)
    connections = int(scale.pick(CONNECTIONS, 4))
    with anchor_server() as anchor:
        anchor_get = load(f"{anchor.url}/doc", connections=connections, seconds=seconds)
        anchor_post = load(
            f"{anchor.url}/doc",
            connections=connections,
            seconds=seconds,
            method="POST",
            body=CREATE_BODY,
            headers={"Content-Type": "application/json"},
        )
    with reelforge_server() as server:
        job = _completed_job(server.url)
        status = load(
            f"{server.url}/v2/video/generations?generation_id={job}",
            connections=connections,
            seconds=seconds,
            headers=HEADERS,
        )
    # Creates queue jobs: no workers, so the engine does not compete for the CPU.
    with reelforge_server(REELFORGE_WORKERS="0") as server:
        created = load(
            f"{server.url}/v2/video/generations",
            connections=connections,
            seconds=seconds,
            method="POST",
            body=CREATE_BODY,
            headers={**HEADERS, "Content-Type": "application/json"},
        )
    throughput = status.requests_per_second / anchor_get.requests_per_second
    tail = status.p99_ms / anchor_get.p99_ms
    return [
        Result(
            f"status GET, {connections} connections, completed job, auth on ({status.tool})",
            f"{status.requests_per_second:,.0f} req/s, p99 {status.p99_ms:.0f} ms",
            f"bare FastAPI {anchor_get.requests_per_second:,.0f} req/s, "
            f"p99 {anchor_get.p99_ms:.0f} ms",
            throughput,
            ">= 0.5x throughput, p99 <= 2x",
            throughput >= 0.5 and tail <= 2.0,
            f"p99 ratio {tail:.2f}x; errors {status.errors}",
        ),
        Result(
            f"create (POST), {connections} connections, no image ({created.tool})",
            f"{created.requests_per_second:,.0f} req/s, p99 {created.p99_ms:.0f} ms",
            f"bare FastAPI POST {anchor_post.requests_per_second:,.0f} req/s",
            created.requests_per_second / anchor_post.requests_per_second,
            "report",
            None,
            f"errors {created.errors}",
        ),
    ]


def downloads(scale: Scale) -> list[Result]:
    """20 concurrent downloads of one big video: the API must stream, not buffer."""
    size_mb = int(scale.pick(100, 4))
    clients = int(scale.pick(20, 4))
    with reelforge_server(REELFORGE_WORKERS="0", REELFORGE_VIDEO_URL_TTL="0") as server:
        token = secrets.token_urlsafe(24)
        folder = server.home / "files" / "videos" / token
        folder.mkdir(parents=True)
        with (folder / "output.mp4").open("wb") as out:
            for _ in range(size_mb):
                out.write(secrets.token_bytes(2**20))
        url = f"{server.url}/files/videos/{token}/output.mp4"
        httpx.get(url).raise_for_status()  # warm: imports, first file open
        before = server.rss_mb()
        peak = before

        async def fetch_all() -> int:
            nonlocal peak
            async with httpx.AsyncClient(timeout=120) as client:

                async def one() -> int:
                    total = 0
                    async with client.stream("GET", url) as response:
                        async for chunk in response.aiter_bytes():
                            total += len(chunk)
                    return total

                tasks = [asyncio.create_task(one()) for _ in range(clients)]
                while not all(task.done() for task in tasks):
                    peak = max(peak, server.rss_mb())
                    await asyncio.sleep(0.05)
                return sum(task.result() for task in tasks)

        received = asyncio.run(fetch_all())
    growth = peak - before
    assert received == clients * size_mb * 2**20
    return [
        Result(
            f"{clients} concurrent downloads of a {size_mb} MB video (local storage)",
            f"API RSS +{growth:.0f} MB (peak {peak:.0f} MB)",
            f"RSS before {before:.0f} MB",
            None,
            "RSS growth < 50 MB",
            growth < 50,
        )
    ]


def open_waits(scale: Scale) -> list[Result]:
    """Many open long-polls and event streams must not slow the service down."""
    waiting = int(scale.pick(1000, 20))
    samples = int(scale.pick(300, 20))
    with reelforge_server(REELFORGE_WORKERS="0", REELFORGE_MAX_CONNECTIONS="4000") as server:
        job = httpx.post(
            f"{server.url}/v2/video/generations", headers=HEADERS, content=CREATE_BODY
        ).json()["id"]

        async def health_p99() -> float:
            times = []
            async with httpx.AsyncClient(timeout=30) as client:
                for _ in range(samples):
                    started = time.perf_counter()
                    (await client.get(f"{server.url}/health")).raise_for_status()
                    times.append((time.perf_counter() - started) * 1000)
            return percentile(times, 0.99)

        async def measure() -> tuple[float, float, int]:
            idle = await health_p99()
            limits = httpx.Limits(max_connections=waiting + 10)
            async with httpx.AsyncClient(timeout=60, limits=limits, headers=HEADERS) as client:
                params = {"generation_id": job}

                async def poll() -> None:
                    await client.get(
                        f"{server.url}/v2/video/generations", params={**params, "wait": 30}
                    )

                async def stream() -> None:
                    async with client.stream(
                        "GET", f"{server.url}/v2/video/generations/events", params=params
                    ) as response:
                        async for _ in response.aiter_lines():
                            pass

                tasks = [
                    asyncio.create_task(poll() if index % 2 else stream())
                    for index in range(waiting)
                ]
                await asyncio.sleep(scale.pick(5, 1))  # let them all connect
                busy = await health_p99()
                alive = sum(not task.done() for task in tasks)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            return idle, busy, alive

        idle, busy, alive = asyncio.run(measure())
    return [
        Result(
            f"{waiting} open long-polls and event streams (half each)",
            f"/health p99 {busy:.1f} ms ({alive} still waiting)",
            f"idle server /health p99 {idle:.1f} ms",
            busy / idle if idle else None,
            "/health p99 < 100 ms",
            busy < 100 and alive == waiting,
        )
    ]
