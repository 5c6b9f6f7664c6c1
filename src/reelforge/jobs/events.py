"""Who hears about job changes: idle workers waiting for work, readers waiting on a job.

The store records *what* changed (SQL); this module delivers the news. Two kinds of
event travel, as short text payloads:

* ``new``: there may be work to claim (a job was created or handed back);
* ``hook``: there may be a webhook to deliver (a job with a webhook finished);
* ``job:<id>``: that job changed (status, progress, stage).

``EventHub`` fans events out inside one process: a condition idle workers wait on, and
callbacks by job id for long-polls and live streams. A ``Transport`` carries them to the
other processes sharing the database:

* ``PgNotifyTransport`` (PostgreSQL): ``pg_notify`` inside the changing transaction, so
  the news is delivered exactly when the change commits; one LISTEN connection per
  process hears it.
* ``SocketTransport`` (a SQLite file): Unix datagram sockets in a directory private to
  that database, one per process on this machine; a datagram is sent after commit.

Either way polling stays the safety net: a lost notification only delays a reader until
its next poll, never loses a job.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import socket
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

NEW_WORK = "new"
WEBHOOK_WORK = "hook"
WORK_KINDS = (NEW_WORK, WEBHOOK_WORK)
JOB_PREFIX = "job:"
PG_CHANNEL = "reelforge_jobs"
RECONNECT_MAX_SECONDS = 10.0
LISTEN_WAIT_SECONDS = 1.0
MAX_DATAGRAM_BYTES = 1024


def job_payload(job_id: str) -> str:
    return JOB_PREFIX + job_id


class Transport(Protocol):
    """Carries payloads between processes that share one database."""

    def in_transaction(self, session: Session, payloads: list[str]) -> None:
        """Called just before the changing transaction commits."""

    def after_commit(self, payloads: list[str]) -> None:
        """Called once the change is committed."""

    def start(self, deliver: Callable[[str], None]) -> None:
        """Begin hearing other processes; ``deliver`` gets each payload (any thread)."""

    def stop(self) -> None: ...


class EventHub:
    """In-process delivery, plus the transport to other processes."""

    def __init__(self, transport: Transport | None = None) -> None:
        self.transport = transport
        self._work = {kind: threading.Condition() for kind in WORK_KINDS}
        self._watchers: dict[str, set[Callable[[], None]]] = {}
        self._any_job: list[Callable[[str], None]] = []
        self._lock = threading.Lock()
        self._started = False

    # -- publishing (the store calls these around its transactions) ---------------------

    def in_transaction(self, session: Session, payloads: list[str]) -> None:
        if self.transport is not None and payloads:
            self.transport.in_transaction(session, payloads)

    def after_commit(self, payloads: list[str]) -> None:
        for payload in payloads:
            self.deliver(payload)
        if self.transport is not None and payloads:
            self.transport.after_commit(payloads)

    # -- receiving -------------------------------------------------------------------

    def deliver(self, payload: str) -> None:
        """Act on one payload, from this process or another."""
        try:
            if payload in self._work:
                self._wake(payload)
            elif payload.startswith(JOB_PREFIX):
                self._job_changed(payload.removeprefix(JOB_PREFIX))
        except Exception:
            log.exception("job event handler failed")

    def start(self) -> None:
        """Hear other processes (idempotent)."""
        if self.transport is not None and not self._started:
            self._started = True
            self.transport.start(self.deliver)

    def stop(self) -> None:
        if self.transport is not None and self._started:
            self._started = False
            self.transport.stop()

    # -- waiting ---------------------------------------------------------------------

    def wake_all(self) -> None:
        """Wake everything of this process waiting for work of any kind."""
        for kind in WORK_KINDS:
            self._wake(kind)

    def wake(self, kind: str) -> None:
        """Wake this process's waiters for ``kind`` (a sender slot came free)."""
        self._wake(kind)

    def _wake(self, kind: str) -> None:
        condition = self._work[kind]
        with condition:
            condition.notify_all()

    def wait_for_work(self, timeout: float) -> None:
        """Block until there may be a job to claim or ``timeout`` seconds pass."""
        self.wait_for(NEW_WORK, timeout)

    def wait_for(self, kind: str, timeout: float) -> None:
        """Block until there may be work of ``kind`` or ``timeout`` seconds pass."""
        condition = self._work[kind]
        with condition:
            condition.wait(timeout)

    def watch(self, job_id: str, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (from any thread) whenever the job changes; returns the
        function that stops watching. Changes in other processes arrive through the
        transport; without one, readers must also re-read periodically."""
        with self._lock:
            self._watchers.setdefault(job_id, set()).add(callback)

        def unwatch() -> None:
            with self._lock:
                callbacks = self._watchers.get(job_id)
                if callbacks is not None:
                    callbacks.discard(callback)
                    if not callbacks:
                        del self._watchers[job_id]

        return unwatch

    def watch_all(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(job_id)`` (from any thread) whenever any job changes: for
        caches of job records, which must forget a job as soon as it changes."""
        with self._lock:
            self._any_job.append(callback)

    def _job_changed(self, job_id: str) -> None:
        with self._lock:
            everyone = list(self._any_job)
            callbacks = list(self._watchers.get(job_id, ()))
        for listener in everyone:
            listener(job_id)
        for callback in callbacks:
            callback()


# -- PostgreSQL ------------------------------------------------------------------------


class PgNotifyTransport:
    """NOTIFY inside the transaction; a daemon thread LISTENs on one connection."""

    def __init__(self, engine: Engine) -> None:
        self._conninfo = engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread: threading.Thread | None = None
        self._deliver: Callable[[str], None] = lambda payload: None

    def in_transaction(self, session: Session, payloads: list[str]) -> None:
        for payload in dict.fromkeys(payloads):
            session.execute(
                text("SELECT pg_notify(:channel, :payload)"),
                {"channel": PG_CHANNEL, "payload": payload},
            )

    def after_commit(self, payloads: list[str]) -> None:
        """Nothing: PostgreSQL delivered the notifications at commit."""

    def start(self, deliver: Callable[[str], None], ready_timeout: float = 10.0) -> None:
        self._deliver = deliver
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="pg-listener", daemon=True)
        self._thread.start()
        if not self._connected.wait(ready_timeout):
            log.warning("job notifications not connected yet; relying on polling meanwhile")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(LISTEN_WAIT_SECONDS * 3)

    def _run(self) -> None:
        import psycopg

        delay = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as connection:
                    connection.execute(f"LISTEN {PG_CHANNEL}")
                    self._connected.set()
                    delay = 0.5
                    self._deliver(NEW_WORK)  # anything may have happened while disconnected
                    while not self._stop.is_set():
                        for note in connection.notifies(timeout=LISTEN_WAIT_SECONDS):
                            self._deliver(note.payload)
            except Exception:
                if self._stop.is_set():
                    return
                log.warning("job notification connection lost; reconnecting", exc_info=True)
                self._stop.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)


# -- SQLite on one machine ---------------------------------------------------------------


def socket_directory(database: Path) -> Path:
    """A private directory for the sockets of processes sharing ``database``.

    It lives under the temporary directory (socket paths are limited to ~100 bytes, too
    short for many database paths), named by a hash of the database's real path.
    """
    digest = hashlib.sha256(str(database.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"reelforge-{os.getuid()}" / digest


class SocketTransport:
    """Unix datagrams between the processes of one machine that share a SQLite file."""

    def __init__(self, database: Path) -> None:
        self.directory = socket_directory(database)
        self._socket: socket.socket | None = None
        self._path: Path | None = None
        self._thread: threading.Thread | None = None
        self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sender.setblocking(False)

    def in_transaction(self, session: Session, payloads: list[str]) -> None:
        """Nothing: datagrams go after commit."""

    def after_commit(self, payloads: list[str]) -> None:
        for peer in self._peers():
            for payload in dict.fromkeys(payloads):
                if not self._send(peer, payload.encode()[:MAX_DATAGRAM_BYTES]):
                    break

    def _peers(self) -> Iterable[Path]:
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return []
        return [Path(entry.path) for entry in entries if Path(entry.path) != self._path]

    def _send(self, peer: Path, data: bytes) -> bool:
        try:
            self._sender.sendto(data, str(peer))
        except (ConnectionRefusedError, FileNotFoundError):
            # Its process is gone (a socket file outlives a killed process): tidy up.
            with contextlib.suppress(OSError):
                peer.unlink()
            return False
        except (BlockingIOError, OSError):
            return False  # a busy peer: it polls anyway
        return True

    def start(self, deliver: Callable[[str], None]) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.directory / f"{os.getpid()}-{secrets.token_hex(4)}.sock"
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        receiver.bind(str(path))
        self._socket, self._path = receiver, path

        def run() -> None:
            while True:
                try:
                    data = receiver.recv(MAX_DATAGRAM_BYTES)
                except OSError:
                    return  # closed by stop()
                if not data:
                    return
                deliver(data.decode(errors="replace"))

        self._thread = threading.Thread(target=run, name="job-events", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        receiver, path = self._socket, self._path
        self._socket = self._path = None
        if receiver is not None:
            # An empty datagram ends the receiving loop; closing alone would not wake it.
            with contextlib.suppress(OSError):
                self._sender.sendto(b"", receiver.getsockname())
            if self._thread is not None:
                self._thread.join(1.0)
            receiver.close()
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink()


def transport_for(engine: Engine) -> Transport | None:
    """The transport that reaches the other processes of ``engine``'s database."""
    if engine.dialect.name == "postgresql":
        return PgNotifyTransport(engine)
    database = engine.url.database
    on_disk = engine.dialect.name == "sqlite" and database and database != ":memory:"
    if on_disk and hasattr(socket, "AF_UNIX"):
        return SocketTransport(Path(database).expanduser())
    return None
