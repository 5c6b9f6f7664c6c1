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
