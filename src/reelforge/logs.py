"""Logging set-up: one line per event, as ``key=value`` text or as JSON.

``REELFORGE_LOG_FORMAT=json`` gives one JSON object per line (python-json-logger), with
the request id of the HTTP request and the id of the job being worked on whenever there
is one, so a log pipeline can follow a request or a job across processes. Structured
``extra`` fields become keys; nothing secret is ever passed as one.
"""

from __future__ import annotations

import contextvars
import logging
import re
import threading
import time
from urllib.parse import unquote

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
job_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("job_id", default=None)

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ContextFilter(logging.Filter):
    """Adds the current request id and job id to every record that lacks them."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in (("request_id", request_id_var), ("job_id", job_id_var)):
            value = var.get()
            if value is not None and not hasattr(record, name):
                setattr(record, name, value)
        return True


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if extras:
            line += " " + " ".join(f"{key}={value}" for key, value in sorted(extras.items()))
        return line


_CANDIDATE = re.compile(r"[^\s\"'<>]+")
"""A run of characters that may be a URL or a path (a log line's words)."""
_SECRET_QUERY = re.compile(r"(signature|expires|token)=", re.IGNORECASE)
FILES_SEGMENT = "files"
REDACTED = "<redacted>"
MAX_UNQUOTE_ROUNDS = 3
"""Percent-decoding is repeated this often, so ``%252F`` is seen as ``/`` too."""


def _decoded(text: str) -> str:
    for _ in range(MAX_UNQUOTE_ROUNDS):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


def _redact_word(word: str) -> str:
    """``word`` with a video's capability (``/files/<kind>/<token>/...``) and any URL
    signature removed, judged on the path as a server may parse it: percent-decoded (more
    than once), with backslashes as slashes and runs of slashes collapsed."""
    origin = ""
    rest = word
    scheme = rest.find("://")
    if scheme != -1:
        slash = rest.find("/", scheme + 3)
        origin, rest = (rest, "") if slash == -1 else (rest[:slash], rest[slash:])
    path, mark, query = rest.partition("?")
    if not mark:
        path, mark, query = rest.partition("#")
    plain = _decoded(path).replace("\\", "/")
    if "/" not in plain:
        return word
    segments = [part for part in plain.split("/") if part not in ("", ".")]
    lowered = [part.lower() for part in segments]
    if FILES_SEGMENT in lowered[:-1]:
        # /files/<kind>/<token>/<file>: everything between the kind and the file name is
        # redacted (dot segments too: they are not resolved, so none can hide a token);
        # the query is dropped.
        after = segments[lowered.index(FILES_SEGMENT) + 1 :]
        head = segments[: lowered.index(FILES_SEGMENT) + 1]
        if len(after) == 1:
            shown = [REDACTED]
        elif len(after) == 2:
            shown = [after[0], REDACTED]
        else:
            shown = [after[0], REDACTED, after[-1]]
        return "/".join([origin, *head, *shown])
    if mark and _SECRET_QUERY.search(_decoded(query)):
        return f"{origin}{path}{mark}{REDACTED}"
    return word


def redact(text: str) -> str:
    """``text`` with video tokens and URL signatures replaced, whatever their spelling
    (double slashes, percent-encoding, dot segments, backslashes, upper case)."""
    if not _may_hold_secret(text):
        return text
    return _CANDIDATE.sub(lambda m: _redact_word(m.group(0)), text)


def _may_hold_secret(text: str) -> bool:
    lowered = text.lower()
    return "%" in text or FILES_SEGMENT in lowered or "signature" in lowered


class RedactSecrets(logging.Filter):
    """Keeps video tokens and URL signatures out of every line, the access log included
    (uvicorn logs each request's path and query)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(
            isinstance(arg, str) and _may_hold_secret(arg) for arg in record.args
        ):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        if isinstance(record.msg, str) and _may_hold_secret(record.msg):
            record.msg = redact(record.msg)
        return True


def configure_logging(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(KeyValueFormatter(TEXT_FORMAT))
    handler.addFilter(RedactSecrets())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Alembic narrates every migration step at INFO; reelforge logs the migration itself.
    logging.getLogger("alembic").setLevel(max(root.level, logging.WARNING))


THROTTLE_SECONDS = 60.0
"""A repeated problem is logged at most once per this many seconds (per kind)."""
MAX_THROTTLED_KEYS = 1000


class Throttle:
    """Rate limit for log lines that may repeat every second (a full disk, a locked
    database, a loop that keeps failing): the first occurrence of a ``key`` is logged,
    then at most one per ``interval`` seconds, with the count of those left out."""

    def __init__(self, interval: float = THROTTLE_SECONDS) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def allow(self, key: str) -> int | None:
        """``None`` to stay silent, else how many were left out since the last line."""
        now = time.monotonic()
        with self._lock:
            if now < self._next.get(key, 0.0):
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return None
            if len(self._next) >= MAX_THROTTLED_KEYS:  # keys may carry messages: stay small
                for stale in [k for k, until in self._next.items() if until <= now]:
                    del self._next[stale]
                    self._suppressed.pop(stale, None)
            self._next[key] = now + self.interval
            return self._suppressed.pop(key, 0)

    def log(
        self,
        logger: logging.Logger,
        level: int,
        key: str,
        message: str,
        *,
        exc_info: BaseException | bool | None = None,
        extra: dict[str, object] | None = None,
    ) -> None:
        """Log ``message`` unless ``key`` was logged within the interval."""
        suppressed = self.allow(key)
        if suppressed is None:
            return
        fields = dict(extra or {})
        if suppressed:
            fields["repeats_not_logged"] = suppressed
        logger.log(level, message, exc_info=exc_info, extra=fields)


throttle = Throttle()
"""The process's throttle for repeating problems."""
