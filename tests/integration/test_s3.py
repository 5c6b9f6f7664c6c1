"""S3 storage against moto's S3 server on loopback: the backend and a live service on it."""

from __future__ import annotations

import logging
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from reelforge.errors import ConfigurationError, NotFound, ServiceUnavailable
from reelforge.settings import Settings
from reelforge.storage import open_storage
from reelforge.storage.s3 import S3Storage
from support import LiveServer, data_uri, free_port, inspect_mp4, picture

pytestmark = pytest.mark.integration

BUCKET = "reelforge-test"
CREDENTIALS = {"access_key_id": "test", "secret_access_key": "test", "region": "us-east-1"}
T2V = {"model": "veo2", "prompt": "a lighthouse on a rocky coast at dusk", "seed": 3}
MiB = 2**20


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ).create_bucket(Bucket=BUCKET)
    yield url
    server.stop()


@pytest.fixture(scope="module")
def s3(endpoint: str):
    """A plain boto3 client, to look at the bucket behind the backend's back."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(s3={"addressing_style": "path"}),
    )


def make_storage(endpoint: str, tmp_path: Path, prefix: str, **options: object) -> S3Storage:
    return S3Storage(
        BUCKET, prefix, endpoint_url=endpoint, temp_root=tmp_path, **CREDENTIALS, **options
    )


@pytest.fixture
def storage(endpoint: str, tmp_path: Path) -> S3Storage:
    return make_storage(endpoint, tmp_path, f"unit/{uuid.uuid4().hex}/")


def keys_under(s3, prefix: str) -> list[str]:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(item["Key"] for item in listed.get("Contents", []))


# The backend -------------------------------------------------------------------------


def test_round_trips(storage: S3Storage, s3, tmp_path: Path) -> None:
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"v" * 1000)
    assert storage.put_file("videos/t/output.mp4", source, "video/mp4") == 1000
    assert not source.exists()  # consumed, like a local move
    name = f"{storage.prefix}/videos/t/output.mp4"
    head = s3.head_object(Bucket=BUCKET, Key=name)
    assert head["ContentLength"] == 1000 and head["ContentType"] == "video/mp4"
    assert storage.size("videos/t/output.mp4") == 1000
    assert storage.local_path("videos/t/output.mp4") is None
    assert storage.put_bytes("inputs/j/image_url", b"abc", "image/png") == 3
    assert storage.get_bytes("inputs/j/image_url") == b"abc"
    storage.delete("inputs/j/image_url")
    storage.delete("inputs/j/image_url")  # idempotent
    assert storage.size("inputs/j/image_url") is None
    with pytest.raises(NotFound):
        storage.get_bytes("inputs/j/image_url")
    with pytest.raises(NotFound):
        storage.open_range("inputs/j/image_url", None, None)
    assert keys_under(s3, storage.prefix) == [name]


def test_temp_dir_is_private_and_reused(storage: S3Storage, endpoint: str, tmp_path: Path) -> None:
    work = storage.temp_dir()
    assert work.is_dir() and work.parent == tmp_path and work.stat().st_mode & 0o077 == 0
    assert make_storage(endpoint, tmp_path, "other").temp_dir() == work


def test_prefixes_isolate_and_never_double_slash(endpoint: str, s3, tmp_path: Path) -> None:
    root = f"iso-{uuid.uuid4().hex}"
    outer = make_storage(endpoint, tmp_path, f"/{root}//a/")
    inner = make_storage(endpoint, tmp_path, f"{root}/a/b")
    assert outer.object_key("x/y") == f"{root}/a/x/y"
    assert make_storage(endpoint, tmp_path, "").object_key("x/y") == "x/y"
    outer.put_bytes("k", b"outer", "text/plain")
    inner.put_bytes("k", b"inner", "text/plain")
    assert (outer.get_bytes("k"), inner.get_bytes("k")) == (b"outer", b"inner")
    assert outer.size("b/k") == 5  # the inner store's object, seen from outside
    inner.delete("k")
    assert outer.get_bytes("k") == b"outer"
    assert keys_under(s3, root) == [f"{root}/a/k"]
    assert all("//" not in key for key in keys_under(s3, root))


@pytest.mark.parametrize("key", ["../x", "videos/../x", "/abs", "videos/.hidden", "a//b", ""])
def test_bad_keys_are_refused_before_any_request(storage: S3Storage, s3, key: str) -> None:
    calls = [
        lambda: storage.put_bytes(key, b"x", "text/plain"),
        lambda: storage.get_bytes(key),
        lambda: storage.size(key),
        lambda: storage.delete(key),
        lambda: storage.local_path(key),
        lambda: storage.open_range(key, None, None),
        lambda: storage.presigned_url(key, 60),
    ]
    for call in calls:
        with pytest.raises(NotFound):
            call()
    assert keys_under(s3, storage.prefix) == []


def test_large_files_upload_in_parts(endpoint: str, s3, tmp_path: Path) -> None:
    storage = make_storage(
        endpoint,
        tmp_path,
        f"multi-{uuid.uuid4().hex}",
        multipart_threshold=MiB,
        multipart_chunk=5 * MiB,  # S3's smallest part
    )
    payload = bytes(range(256)) * (11 * MiB // 256)
    source = tmp_path / "big.mp4"
    source.write_bytes(payload)
    assert storage.put_file("videos/big/output.mp4", source, "video/mp4") == len(payload)
    head = s3.head_object(Bucket=BUCKET, Key=f"{storage.prefix}/videos/big/output.mp4")
    assert head["ETag"].strip('"').endswith("-3")  # 5 + 5 + 1 MiB
    assert storage.get_bytes("videos/big/output.mp4") == payload


def test_open_range_streams_parts(storage: S3Storage) -> None:
    data = bytes(range(256)) * 4
    storage.put_bytes("videos/r/output.mp4", data, "video/mp4")

    def read(start: int | None, end: int | None) -> tuple[bytes, int, int]:
        chunks, total, length = storage.open_range("videos/r/output.mp4", start, end)
        return b"".join(chunks), total, length

    assert read(None, None) == (data, 1024, 1024)
    assert read(100, 199) == (data[100:200], 1024, 100)
    assert read(1000, None) == (data[1000:], 1024, 24)
    assert read(1000, 5000) == (data[1000:], 1024, 24)
    assert read(None, 9) == (data[:10], 1024, 10)
    assert read(1024, None) == (b"", 1024, 0)
    unread = storage.open_range("videos/r/output.mp4", 0, 10)
    unread.chunks.close()  # stopping early releases the connection


def test_presigned_urls(storage: S3Storage, endpoint: str) -> None:
    """moto does not enforce presigned-URL expiry (checked with moto 5.2: an expired URL
    still answers 200), so expiry is asserted on the signed query instead."""
    storage.put_bytes("videos/p/output.mp4", b"presigned bytes", "video/mp4")
    url = storage.presigned_url("videos/p/output.mp4", 1)
    assert url.startswith(f"{endpoint}/{BUCKET}/{storage.prefix}/videos/p/output.mp4?")
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["1"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"] and query["X-Amz-Signature"]
    signed_at = time.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ")
    assert abs(time.mktime(signed_at) - time.mktime(time.gmtime())) < 60
    response = httpx.get(url)
    assert response.status_code == 200 and response.content == b"presigned bytes"
    longer = storage.presigned_url("videos/p/output.mp4", 3600)
    assert parse_qs(urlsplit(longer).query)["X-Amz-Expires"] == ["3600"]


def test_dead_endpoint_fails_fast(tmp_path: Path) -> None:
    refused = make_storage(f"http://127.0.0.1:{free_port()}", tmp_path, "p")
    for call in (lambda: refused.size("k"), lambda: refused.get_bytes("k")):
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable, match="object storage is unavailable"):
            call()
        assert time.monotonic() - started < 10


def test_silent_endpoint_times_out(tmp_path: Path) -> None:
    """A server that accepts connections and never answers: the read timeout ends it."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        silent = make_storage(
            f"http://127.0.0.1:{listener.getsockname()[1]}",
            tmp_path,
            "p",
            connect_timeout=1,
            read_timeout=1,
            max_attempts=2,
        )
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable):
            silent.size("k")
        assert time.monotonic() - started < 8


def test_open_storage_builds_s3_from_settings(
    endpoint: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "never-log-this-secret"
    settings = Settings(
        home=tmp_path,
        storage_url=f"s3://{BUCKET}//from/settings/",
        s3_endpoint_url=endpoint,
        s3_region="us-east-1",
        s3_access_key_id="AKIDFROMSETTINGS",
        s3_secret_access_key=secret,
        _env_file=None,
    )
    with caplog.at_level(logging.DEBUG, logger="reelforge"):
        storage = open_storage(settings)
        assert isinstance(storage, S3Storage) and storage.prefix == "from/settings"
        storage.put_bytes("k", b"1", "text/plain")
        assert storage.get_bytes("k") == b"1"
    logged = caplog.text + repr([record.__dict__ for record in caplog.records])
    assert "s3 storage" in caplog.text
    for text in (logged, repr(storage)):
        assert secret not in text and "AKIDFROMSETTINGS" not in text
    assert secret not in repr(settings)


def test_missing_boto3_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[s3\]'"):
        S3Storage(BUCKET, "p")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3:///prefix", "bucket is missing"),
        ("s3://key:secret@bucket/p", "only the bucket"),
        ("s3://bucket:9000/p", "only the bucket"),
        ("s3://bucket/p?region=x", "no query"),
        ("s3://bucket/a/../b", "'..'"),
        ("gs://bucket/p", "unsupported"),
    ],
)
def test_bad_storage_urls(url: str, message: str, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, storage_url=url, _env_file=None)
    with pytest.raises(ConfigurationError, match=message):
        open_storage(settings)


# A live service on S3 ----------------------------------------------------------------


def live_server(home: Path, endpoint: str, prefix: str, **extra: str) -> LiveServer:
    env = {
        "REELFORGE_STORAGE_URL": f"s3://{BUCKET}/{prefix}",
        "REELFORGE_S3_ENDPOINT_URL": endpoint,
        "REELFORGE_S3_REGION": "us-east-1",
        "REELFORGE_S3_ACCESS_KEY_ID": "test",
        "REELFORGE_S3_SECRET_ACCESS_KEY": "test",
        **extra,
    }
    return LiveServer(home=home, env=env).start()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, endpoint: str) -> Iterator[LiveServer]:
    # A little latency keeps staged inputs in the bucket long enough to see them.
    live = live_server(
        tmp_path_factory.mktemp("s3-api"),
        endpoint,
        "live",
        REELFORGE_PREVIEW_LATENCY_SECONDS="1.5",
    )
    yield live
    live.stop()


def test_text_to_video_is_stored_and_streamed(server: LiveServer, s3, tmp_path: Path) -> None:
    created = server.create(T2V)
    assert created.status_code == 200, created.text
    done = server.wait(created.json()["id"])
    assert done["status"] == "completed", done
    url, size = done["video"]["url"], done["video"]["file_size"]
    assert url.startswith(f"{server.url}/files/videos/")
    name = "live/" + url.split("/files/", 1)[1].split("?")[0]
    assert s3.head_object(Bucket=BUCKET, Key=name)["ContentLength"] == size
    assert not (server.home / "files" / "videos").exists()

    whole = httpx.get(url)
    assert whole.status_code == 200 and len(whole.content) == size
    assert whole.headers["content-length"] == str(size)
    assert whole.headers["content-type"] == "video/mp4"
    assert whole.headers["accept-ranges"] == "bytes"
    part = httpx.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{size}"
    assert part.headers["content-length"] == "100"
    tail = httpx.get(url, headers={"Range": "bytes=-50"})
    assert tail.status_code == 206 and tail.content == whole.content[-50:]
    assert tail.headers["content-range"] == f"bytes {size - 50}-{size - 1}/{size}"
    rest = httpx.get(url, headers={"Range": "bytes=10-"})
    assert rest.status_code == 206 and rest.content == whole.content[10:]
    assert rest.headers["content-length"] == str(size - 10)
    beyond = httpx.get(url, headers={"Range": f"bytes={size + 10}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}"
    several = httpx.get(url, headers={"Range": "bytes=0-1,5-6"})
    assert several.status_code == 200 and several.content == whole.content
    # No validators to check If-Range against: the whole video is always a right answer.
    guarded = httpx.get(url, headers={"Range": "bytes=0-9", "If-Range": '"some-etag"'})
    assert guarded.status_code == 200 and guarded.content == whole.content
    head = httpx.head(url)
    assert head.status_code == 200 and int(head.headers["content-length"]) == size
    assert head.content == b""
    # Another file under the same (signed) URL is refused before anything is looked up.
    assert httpx.get(url.replace("output.mp4", "other.mp4")).status_code == 403
    for path in ("/files/inputs/x/image_url", "/files/videos/../x"):
        assert httpx.get(server.url + path).status_code == 404

    target = tmp_path / "t2v.mp4"
    target.write_bytes(whole.content)
    facts = inspect_mp4(target)
    assert (facts.codec, facts.width, facts.height) == ("h264", 1280, 720)
    assert facts.frames == 5 * 24


def test_image_to_video_keeps_its_input_with_the_video_until_deleted(
    server: LiveServer, s3, tmp_path: Path
) -> None:
    body = {
        "model": "veo2/image-to-video",
        "prompt": "slow zoom",
        "image_url": data_uri(picture((1024, 768), seed=4)),
    }
    created = server.create(body)
    assert created.status_code == 200, created.text
    job_id = created.json()["id"]
    staged = f"live/inputs/{job_id.split(':', 1)[0]}/"
    assert keys_under(s3, staged) == [staged + "image_url"]
    done = server.wait(job_id)
    assert done["status"] == "completed", done
    assert keys_under(s3, staged) == [staged + "image_url"]  # a remix starts from it
    target = tmp_path / "i2v.mp4"
    response = httpx.get(done["video"]["url"])
    assert len(response.content) == done["video"]["file_size"]
    target.write_bytes(response.content)
    assert inspect_mp4(target).frames == 5 * 24
    folder = "live/" + done["video"]["url"].split("/files/", 1)[1].rsplit("/", 1)[0] + "/"
    assert sorted(keys_under(s3, folder)) == [
        folder + name for name in ("output.mp4", "spritesheet.jpg", "thumbnail.jpg")
    ]
    thumbnail = httpx.get(done["video"]["thumbnail_url"])
    assert thumbnail.status_code == 200 and thumbnail.content[:2] == b"\xff\xd8"
    deleted = httpx.delete(
        f"{server.url}/v2/video/generations",
        params={"generation_id": job_id},
        headers=server.headers(),
    )
    assert deleted.status_code == 200, deleted.text
    assert keys_under(s3, staged) == [] and keys_under(s3, folder) == []


def test_presigned_video_urls(tmp_path_factory: pytest.TempPathFactory, endpoint: str, s3) -> None:
    live = live_server(
        tmp_path_factory.mktemp("s3-presigned"),
        endpoint,
        "signed",
        REELFORGE_VIDEO_URLS="presigned",
        REELFORGE_PRESIGN_SECONDS="60",
    )
    try:
        done = live.wait(live.create(T2V).json()["id"])
        assert done["status"] == "completed", done
        url = done["video"]["url"]
        assert url.startswith(f"{endpoint}/{BUCKET}/signed/videos/")
        assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["60"]
        response = httpx.get(url)  # no API key
        assert response.status_code == 200
        assert len(response.content) == done["video"]["file_size"]
        name = urlsplit(url).path.removeprefix(f"/{BUCKET}/")
        assert response.content == s3.get_object(Bucket=BUCKET, Key=name)["Body"].read()
        again = live.get(done["id"]).json()["video"]["url"]
        assert again.split("?")[0] == url.split("?")[0]  # a fresh signature per answer
    finally:
        live.stop()


def test_list_keys_for_the_orphan_sweep(storage: S3Storage) -> None:
    for key in ("videos/a/output.mp4", "videos/a/thumbnail.jpg", "inputs/j/image_url"):
        storage.put_bytes(key, b"x", "application/octet-stream")
    listed = dict(storage.list_keys("videos/"))
    assert set(listed) == {"videos/a/output.mp4", "videos/a/thumbnail.jpg"}
    assert all(abs(when - time.time()) < 600 for when in listed.values())
