"""The single-range parser used when videos stream from object storage, and range reads."""

from __future__ import annotations

import pytest

from reelforge.api.ranges import ByteRange, RangeNotSatisfiable, parse_range
from reelforge.errors import NotFound
from reelforge.storage import LocalStorage

pytestmark = pytest.mark.unit

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=100-199", 100, 199),
        ("bytes=0-0", 0, 0),
        ("bytes=10-", 10, 999),
        ("bytes=-50", 950, 999),
        ("bytes=-5000", 0, 999),  # a suffix longer than the object is the whole object
        ("bytes=900-5000", 900, 999),  # ends past the object are clipped
        ("bytes=999-", 999, 999),
        ("Bytes=1-2", 1, 2),  # the unit is case-insensitive
        ("bytes= 1-2 ", 1, 2),
    ],
)
def test_satisfiable_ranges(header: str, start: int, end: int) -> None:
    wanted = parse_range(header, SIZE)
    assert wanted == ByteRange(start, end, SIZE)
    assert wanted.length == end - start + 1
    assert wanted.content_range == f"bytes {start}-{end}/{SIZE}"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "bytes",
        "bytes=",
        "bytes=-",
        "bytes=abc",
        "bytes=5-3",  # last before first: invalid, so ignored
        "bytes=1-2-3",
        "bytes=+1-2",
        "bytes=0x10-",
        "bytes=١-٢",  # non-ASCII digits
        "bytes=0-1,5-6",  # several ranges: sent whole
        "bytes=0-1,",
        "items=0-1",
        "0-1",
        "bytes=" + "9" * 5000 + "-",  # more digits than int() takes
    ],
)
def test_ignored_headers_mean_the_whole_object(header: str | None) -> None:
    assert parse_range(header, SIZE) is None


@pytest.mark.parametrize(
    ("header", "size"),
    [
        ("bytes=1000-", SIZE),
        ("bytes=1010-", SIZE),
        ("bytes=1000-2000", SIZE),
        ("bytes=-0", SIZE),
        ("bytes=0-", 0),
        ("bytes=-5", 0),
    ],
)
def test_unsatisfiable_ranges(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable) as caught:
        parse_range(header, size)
    assert caught.value.size == size


def test_local_storage_reads_ranges(tmp_path) -> None:
    storage = LocalStorage(tmp_path / "files")
    data = bytes(range(256)) * 2**10  # larger than one read chunk
    storage.put_bytes("videos/t/output.mp4", data, "video/mp4")

    def read(start: int | None, end: int | None) -> tuple[bytes, int, int]:
        chunks, total, length = storage.open_range("videos/t/output.mp4", start, end)
        return b"".join(chunks), total, length

    size = len(data)
    assert read(None, None) == (data, size, size)
    assert read(100, 199) == (data[100:200], size, 100)
    assert read(size - 5, size + 100) == (data[-5:], size, 5)
    assert read(size, None) == (b"", size, 0)
    assert storage.presigned_url("videos/t/output.mp4", 60) is None
    with pytest.raises(NotFound):
        storage.open_range("videos/t/missing.mp4", None, None)
    with pytest.raises(NotFound):
        storage.open_range("videos/../x", None, None)
