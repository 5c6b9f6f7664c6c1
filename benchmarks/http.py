"""The API under load, side by side with the anchor app (same uvicorn settings)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import BinaryIO

import httpx

from benchmarks.core import (
    HEADERS,
    Result,
    Scale,
    Server,
    anchor_server,
    load,
    percentile,
    reelforge_server,
)

CONNECTIONS = 64
CREATE_BODY = json.dumps({"model": "veo2", "prompt": "a lighthouse at dusk"}).encode()


def _database_key(server: Server) -> str:
    created = subprocess.run(
        [sys.executable, "-m", "reelforge", "keys", "create", "--name", "bench"],
        env={**os.environ, "REELFORGE_HOME": str(server.home)},
        capture_output=True,
        text=True,
        check=True,
    )
    return created.stdout.split()[0]  # the key alone on standard output


def _completed_job(url: str, headers: dict[str, str] = HEADERS) -> str:
    job = httpx.post(f"{url}/v2/video/generations", headers=headers, content=CREATE_BODY).json()[
        "id"
    ]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = httpx.get(
            f"{url}/v2/video/generations",
            params={"generation_id": job, "wait": 10},
            headers=headers,
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
        # The same with a key from the database (``reelforge keys create``): one read per
        # request, never cached, so that a revoked key stops at once.
        database_key = {"Authorization": f"Bearer {_database_key(server)}"}
        job = _completed_job(server.url, database_key)
        keyed = load(
            f"{server.url}/v2/video/generations?generation_id={job}",
            connections=connections,
            seconds=seconds,
            headers=database_key,
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
            f"status GET as above, with a database key ({keyed.tool})",
            f"{keyed.requests_per_second:,.0f} req/s, p99 {keyed.p99_ms:.0f} ms",
            f"bare FastAPI {anchor_get.requests_per_second:,.0f} req/s",
            keyed.requests_per_second / anchor_get.requests_per_second,
            "report",
            None,
            f"errors {keyed.errors}",
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
    """20 concurrent downloads of one big video: the API must stream, not buffer, from
    local storage and from S3 (moto's S3 server on loopback)."""
    size_mb = int(scale.pick(100, 4))
    clients = int(scale.pick(20, 4))
    results = [_downloads_from("local storage", size_mb, clients, _local_video)]
    try:
        from moto.server import ThreadedMotoServer  # noqa: F401
    except ImportError:
        results.append(
            Result(
                f"{clients} concurrent downloads of a {size_mb} MB video (S3 via moto)",
                "not run",
                "-",
                None,
                "RSS growth < 50 MB",
                None,
                "moto is not installed (pip install -e '.[test]')",
            )
        )
    else:
        results.append(_downloads_from("S3 via moto", size_mb, clients, _s3_video))
    return results


MOTO_CREDENTIALS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
"""moto's S3 accepts any credentials."""

VideoSource = Callable[[int], contextlib.AbstractContextManager[tuple[dict[str, str], str]]]


@contextlib.contextmanager
def _local_video(size_mb: int) -> Iterator[tuple[dict[str, str], str]]:
    """Settings of a local store and the storage key of a video put there once started."""
    yield {}, f"videos/{secrets.token_urlsafe(24)}/output.mp4"


@contextlib.contextmanager
def _s3_video(size_mb: int) -> Iterator[tuple[dict[str, str], str]]:
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            **MOTO_CREDENTIALS,
        )
        client.create_bucket(Bucket="reelforge-bench")
        key = f"videos/{secrets.token_urlsafe(24)}/output.mp4"
        with tempfile.TemporaryFile() as data:
            _random_bytes(data, size_mb)
            data.seek(0)
            client.upload_fileobj(data, "reelforge-bench", f"bench/{key}")
        yield (
            {
                "REELFORGE_STORAGE_URL": "s3://reelforge-bench/bench",
                "REELFORGE_S3_ENDPOINT_URL": endpoint,
                "REELFORGE_S3_REGION": "us-east-1",
                "REELFORGE_S3_ACCESS_KEY_ID": "bench",
                "REELFORGE_S3_SECRET_ACCESS_KEY": "bench",
            },
            key,
        )
    finally:
        server.stop()


def _random_bytes(out: BinaryIO, size_mb: int) -> None:
    for _ in range(size_mb):
        out.write(secrets.token_bytes(2**20))


def _downloads_from(label: str, size_mb: int, clients: int, source: VideoSource) -> Result:
    with (
        source(size_mb) as (settings, key),
        reelforge_server(REELFORGE_WORKERS="0", REELFORGE_VIDEO_URL_TTL="0", **settings) as server,
    ):
        if not settings:  # local storage: the file goes where the server keeps videos
            path = server.home / "files" / key
            path.parent.mkdir(parents=True)
            with path.open("wb") as out:
                _random_bytes(out, size_mb)
        url = f"{server.url}/files/{key}"
        httpx.get(url, timeout=120).raise_for_status()  # warm: imports, first open
        before = server.rss_mb()
        peak = before

        async def fetch_all() -> int:
            nonlocal peak
            async with httpx.AsyncClient(timeout=300) as client:

                async def one() -> int:
                    total = 0
                    async with client.stream("GET", url) as response:
                        response.raise_for_status()
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
    return Result(
        f"{clients} concurrent downloads of a {size_mb} MB video ({label})",
        f"API RSS +{growth:.0f} MB (peak {peak:.0f} MB)",
        f"RSS before {before:.0f} MB",
        None,
        "RSS growth < 50 MB",
        growth < 50,
    )


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
