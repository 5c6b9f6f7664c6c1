"""Log hygiene: repeated problems are rate-limited, secrets never reach a log line."""

from __future__ import annotations

import logging

import pytest

from reelforge.logs import RedactSecrets, Throttle, redact

pytestmark = pytest.mark.unit


def test_throttle_logs_first_then_once_per_interval(monkeypatch, caplog) -> None:
    now = [1000.0]
    monkeypatch.setattr("reelforge.logs.time.monotonic", lambda: now[0])
    throttle = Throttle(interval=60)
    log = logging.getLogger("test.throttle")
    with caplog.at_level(logging.INFO):
        for _ in range(100):  # a failure every second for 100 s
            throttle.log(log, logging.ERROR, "disk", "disk full")
            throttle.log(log, logging.ERROR, "db", "database locked")
            now[0] += 1
    lines = [(r.getMessage(), getattr(r, "repeats_not_logged", 0)) for r in caplog.records]
    assert lines == [
        ("disk full", 0),
        ("database locked", 0),
        ("disk full", 59),
        ("database locked", 59),
    ]


TOKEN = "Zk3x9Q_abcDEF-123456789012345678"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"/files/videos/{TOKEN}/output.mp4", "/files/videos/<redacted>/output.mp4"),
        (
            f"/files/videos/{TOKEN}/output.mp4?expires=1&signature=abc",
            "/files/videos/<redacted>/output.mp4",
        ),
        (f"GET /files/videos/{TOKEN} HTTP/1.1", "GET /files/videos/<redacted> HTTP/1.1"),
        ("/v2/video/generations?generation_id=x", "/v2/video/generations?generation_id=x"),
    ],
)
def test_video_tokens_and_signatures_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_access_log_lines_are_redacted() -> None:
    """uvicorn's access logger passes the path as an argument."""
    record = logging.makeLogRecord(
        {
            "name": "uvicorn.access",
            "msg": '%s - "%s %s HTTP/%s" %d',
            "args": (
                "127.0.0.1:5000",
                "GET",
                f"/files/videos/{TOKEN}/output.mp4?sig=x",
                "1.1",
                200,
            ),
        }
    )
    assert RedactSecrets().filter(record)
    assert TOKEN not in record.getMessage() and "sig=x" not in record.getMessage()


SPELLINGS = [
    "/files/videos//{t}/output.mp4?expires=1&signature={s}",
    "//files/videos/{t}/output.mp4?expires=1&signature={s}",
    "/files//videos///{t}//output.mp4",
    "/files/videos/./{t}/output.mp4",
    "/files/videos/../videos/{t}/output.mp4",
    "/files/../videos/{t}/output.mp4",
    "/files/%76ideos/{t}/output.mp4",
    "/files/videos%2F{t}%2Foutput.mp4",
    "/files/videos%252F{t}%252Foutput.mp4",
    "%2Ffiles%2Fvideos%2F{t}%2Foutput.mp4",
    "/FILES/VIDEOS/{t}/OUTPUT.MP4",
    "/files\\videos\\{t}\\output.mp4",
    "/files/videos/{t}",
    "/files/{t}",
    "http://127.0.0.1:8000/files/videos//{t}/output.mp4?signature={s}",
    "/anything?expires=1&signature={s}",
    "/anything?SIGNATURE={s}",
    "/anything?a=1&signature%3D{s}",
]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_redaction_holds_for_every_spelling_of_a_path(spelling: str) -> None:
    """The issue-27 bypass (``/files/videos//TOKEN``) and its relatives: the token and the
    signature never reach the line, in a message or as uvicorn's access-log argument."""
    signature = "c2lnbmF0dXJlLXNlY3JldA"
    path = spelling.format(t=TOKEN, s=signature)
    for text in (path, f'GET {path} HTTP/1.1 "{path}"'):
        redacted = redact(text)
        assert TOKEN not in redacted and TOKEN.lower() not in redacted.lower()
        assert signature not in redacted
    record = logging.makeLogRecord(
        {"msg": '%s - "%s %s HTTP/%s" %d', "args": ("127.0.0.1:1", "GET", path, "1.1", 403)}
    )
    RedactSecrets().filter(record)
    assert TOKEN not in record.getMessage() and signature not in record.getMessage()


@pytest.mark.parametrize(
    "text",
    [
        "3 files deleted",
        "progress 50% done",
        "/v2/video/generations?generation_id=x",
        "/profiles/x",
    ],
)
def test_ordinary_lines_are_left_alone(text: str) -> None:
    assert redact(text) == text
