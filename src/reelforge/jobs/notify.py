"""Cross-process wake-ups over PostgreSQL LISTEN/NOTIFY.

The store publishes on ``CHANNEL`` inside the transaction that changes a job (PostgreSQL
delivers the notification on commit): ``new`` when there is work to claim, ``job:<id>``
when a job changed. Every API and worker process listens on one dedicated connection, so
an idle worker on another machine claims a new job at once instead of after its polling
sleep, and a long-poll in one API replica hears about a job finished by a worker
anywhere. Polling stays as the safety net: a listener that lost its connection
reconnects, and treats the reconnect itself as "something may have changed".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine

log = logging.getLogger(__name__)

CHANNEL = "reelforge_jobs"
NEW_WORK = "new"
JOB_PREFIX = "job:"
RECONNECT_MAX_SECONDS = 10.0
NOTIFY_WAIT_SECONDS = 1.0


def job_payload(job_id: str) -> str:
    return JOB_PREFIX + job_id


class PgListener:
    """A daemon thread LISTENing on ``CHANNEL`` and dispatching what it hears."""

    def __init__(
        self,
        engine: Engine,
        *,
        on_new_work: Callable[[], None],
        on_job_changed: Callable[[str], None],
    ) -> None:
        self._conninfo = engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        self._on_new_work = on_new_work
        self._on_job_changed = on_job_changed
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-listener", daemon=True)

    def start(self, ready_timeout: float = 10.0) -> None:
        self._thread.start()
        if not self._connected.wait(ready_timeout):
            log.warning("job notifications not connected yet; relying on polling meanwhile")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(NOTIFY_WAIT_SECONDS * 3)

    def _run(self) -> None:
        import psycopg

        delay = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self._connected.set()
                    delay = 0.5
                    self._on_new_work()  # anything may have happened while disconnected
                    while not self._stop.is_set():
                        for note in connection.notifies(timeout=NOTIFY_WAIT_SECONDS):
                            self._dispatch(note.payload)
            except Exception:
                if self._stop.is_set():
                    return
                log.warning("job notification connection lost; reconnecting", exc_info=True)
                self._stop.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)

    def _dispatch(self, payload: str) -> None:
        try:
            if payload == NEW_WORK:
                self._on_new_work()
            elif payload.startswith(JOB_PREFIX):
                self._on_job_changed(payload.removeprefix(JOB_PREFIX))
        except Exception:
            log.exception("job notification handler failed")
