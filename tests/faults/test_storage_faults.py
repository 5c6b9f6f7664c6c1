"""Fault injection: the S3 endpoint down and hung while jobs finish.

moto's S3 server behind a loopback ``FaultProxy``. A short storage outage used to fail
jobs for good (8 of 36 in ``error`` after 20 s) and leave a ``thumbnail.jpg`` behind.
Now a finished clip waits for storage and is stored when it returns; at the end jobs,
objects and credits are reconciled: nothing lost, duplicated, left behind or mis-billed."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator

import boto3
import httpx
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from fakes.proxy import FaultProxy
from support import LiveServer, wait_until

pytestmark = pytest.mark.faults

BUCKET = "faults"
CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
JOBS = 4
VIDEO_FILES = {"output.mp4", "thumbnail.jpg", "spritesheet.jpg"}


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[object, FaultProxy]]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    client = boto3.client(
        "s3",
        endpoint_url=f"http://{host}:{port}",
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
        **CREDENTIALS,
    )
    client.create_bucket(Bucket=BUCKET)
    proxy = FaultProxy((host, port)).start()
    yield client, proxy
    proxy.stop()
    server.stop()


@pytest.fixture(scope="module")
def api(s3, tmp_path_factory) -> Iterator[LiveServer]:
    _, proxy = s3
    live = LiveServer(
        home=tmp_path_factory.mktemp("storage-faults"),
        env={
            "REELFORGE_WORKERS": "2",
            "REELFORGE_STORAGE_URL": f"s3://{BUCKET}/live",
            "REELFORGE_S3_ENDPOINT_URL": f"http://{proxy.address}",
            "REELFORGE_S3_REGION": "us-east-1",
            "REELFORGE_S3_ACCESS_KEY_ID": "test",
            "REELFORGE_S3_SECRET_ACCESS_KEY": "test",
            "REELFORGE_S3_TIMEOUT_SECONDS": "1",
            "REELFORGE_STORAGE_OUTAGE_SECONDS": "90",
        },
    ).start()
    made = subprocess.run(
        [sys.executable, "-m", "reelforge", "keys", "create", "--credits", "100000000"],
        env={**os.environ, "REELFORGE_HOME": str(live.home)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    live.billed_key = made.stdout.strip()
    yield live
    live.stop()


def objects(client) -> dict[str, int]:
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix="live/")
    return {item["Key"]: item["Size"] for item in listed.get("Contents", [])}


@pytest.mark.parametrize("mode", ["down", "hang"])
def test_jobs_outlast_an_s3_outage_and_reconcile(api: LiveServer, s3, mode: str) -> None:
    client, proxy = s3
    key = api.billed_key
    before = httpx.get(f"{api.url}/v2/account", headers=api.headers(key)).json()["credits"]
    ids = []
    for n in range(JOBS):
        body = {"model": "veo2", "prompt": f"a harbour at dawn {mode} {n}", "duration": 5}
        answer = api.create(body, key=key)
        assert answer.status_code == 200, answer.text
        ids.append(answer.json()["id"])
    proxy.set(mode)
    try:

        def waiting() -> int:
            stages = [api.get(job, key=key).json().get("stage") for job in ids]
            return stages.count("waiting for storage")

        wait_until(lambda: waiting() >= 2, timeout=90, interval=0.2)  # both workers stuck
    finally:
        proxy.set("forward")
    done = [api.wait(job, timeout=180, key=key) for job in ids]
    assert [job["status"] for job in done] == ["completed"] * JOBS, done

    stored = objects(client)
    for job in done:
        token = job["video"]["url"].split("/files/videos/")[1].split("/")[0]
        files = {name.rsplit("/", 1)[1]: size for name, size in stored.items() if token in name}
        assert set(files) == VIDEO_FILES, files
        assert files["output.mp4"] == job["video"]["file_size"]
    listed = httpx.get(
        f"{api.url}/v2/video/generations", headers=api.headers(key), params={"limit": 100}
    ).json()["data"]
    tokens = {
        item["video"]["url"].split("/files/videos/")[1].split("/")[0]
        for item in listed
        if item.get("video")
    }
    orphans = [name for name in stored if name.split("/")[2] not in tokens]
    assert not orphans, f"objects of no job: {orphans}"
    after = httpx.get(f"{api.url}/v2/account", headers=api.headers(key)).json()["credits"]
    charged = sum(job["meta"]["usage"]["credits_used"] for job in done)
    assert after["reserved"] == 0
    assert after["spent"] - before["spent"] == charged
    assert before["balance"] - after["balance"] == charged
