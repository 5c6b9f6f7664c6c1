"""A full disk, for real: storage and SQLite on a small tmpfs, filled to the last byte.

The audit saw 500s at submit, a traceback a second from the worker, a server path in a
job's error and ``.part`` files left behind. Now: 507 with Retry-After at submit, a job
error without paths, nothing left behind, and everything resumes once there is room.
Needs root (to mount tmpfs); elsewhere the tests are skipped, saying why.
"""

from __future__ import annotations

import base64
import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from reelforge.errors import InsufficientStorage
from reelforge.jobs.db import make_engine, unavailable
from support import LiveServer, encode_image, picture

pytestmark = pytest.mark.integration

DISK_BYTES = 16 * 2**20
DISK_FULL = "The server is out of disk space; try again later"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@contextlib.contextmanager
def filled(disk: Path) -> Iterator[None]:
    """Fill ``disk`` to the last byte; make room again afterwards."""
    filler = disk / f"filler-{uuid.uuid4().hex}"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (2**20, 2**12, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    try:
        yield
    finally:
        filler.unlink()


def work_files(files: Path) -> list[str]:
    return sorted(path.name for path in (files / ".tmp").iterdir())


def test_full_disk_at_submit_and_in_the_worker(small_disk: Path, tmp_path: Path) -> None:
    files = small_disk / "files"
    server = LiveServer(
        home=tmp_path / "home",
        # A disk that stays full: the job waits 2 s for room, then ends in a clean error.
        env={"REELFORGE_STORAGE_URL": files.as_uri(), "REELFORGE_STORAGE_OUTAGE_SECONDS": "2"},
    ).start()
    image = "data:image/jpeg;base64," + base64.b64encode(encode_image(picture((640, 480)))).decode()
    i2v = {"model": "veo2/image-to-video", "prompt": "zoom in", "image_url": image}
    t2v = {"model": "veo2", "prompt": "a lighthouse at night"}
    try:
        with filled(small_disk):
            # Submit: staging the inline image fails cleanly.
            for _ in range(5):
                response = server.create(i2v)
                assert response.status_code == 507, response.text
                assert response.json()["message"] == DISK_FULL
                assert int(response.headers["retry-after"]) > 0
            # Worker: encoding fails; the job says so without a server path.
            created = server.create(t2v)
            assert created.status_code == 200
            failed = server.wait(created.json()["id"])
            assert failed["status"] == "error"
            assert failed["error"] == {"name": "InsufficientStorage", "message": DISK_FULL}
            assert work_files(files) == []
        # Room again: everything resumes by itself.
        for body in (i2v, t2v):
            done = server.wait(server.create(body).json()["id"])
            assert done["status"] == "completed", done
        assert work_files(files) == []
    finally:
        server.stop()
    logged = server.log_path.read_text()
    assert "Traceback" not in logged
    assert logged.count("request failed: The server is out of disk space") == 1  # throttled


def test_full_sqlite_database_is_insufficient_storage(small_disk: Path) -> None:
    engine = make_engine(f"sqlite:///{small_disk / 'jobs.db'}", lock_timeout=1)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x BLOB)"))
    try:
        with filled(small_disk):
            error = fill_table(engine)
        mapped = unavailable(error)
        assert isinstance(mapped, InsufficientStorage) and mapped.status_code == 507
        assert mapped.message == DISK_FULL
    finally:
        engine.dispose()


def fill_table(engine: Engine) -> OperationalError:
    with engine.begin() as db:
        for _ in range(10_000):
            try:
                db.execute(text("INSERT INTO t VALUES (randomblob(65536))"))
            except OperationalError as error:
                return error
    raise AssertionError("the disk never filled up")
