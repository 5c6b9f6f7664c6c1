"""The API's memory of finished jobs (``live.FinishedJobs``): served without a database
read, forgotten the moment the job changes, here or in another process."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from sqlalchemy import Engine

from reelforge.jobs import JobStatus, JobStore, NewJob
from reelforge.jobs.db import make_engine, upgrade
from reelforge.live import FinishedJobs
from support import stores_in_two_processes


class CountingStore(JobStore):
    """A real store that counts the single-job reads the cache makes."""

    reads = 0

    def get(self, job_id: str):  # type: ignore[no-untyped-def]
        self.reads += 1
        return super().get(job_id)


def _new(store: JobStore, job_id: str) -> None:
    store.create(
        NewJob(id=job_id, model="veo2", owner="o", params={}, seed=1, credits=1, video_token="t")
    )


def _finish(store: JobStore, job_id: str) -> None:
    claimed = store.claim("w1", lease_seconds=30, max_attempts=3)
    assert claimed is not None and claimed.id == job_id
    assert store.complete(job_id, "w1", video_key="videos/t/output.mp4", video_size=10)


@pytest.fixture
def two_processes(tmp_path):
    """An API process's store and a worker process's, sharing one SQLite file."""
    with stores_in_two_processes(f"sqlite:///{tmp_path / 'jobs.db'}", CountingStore) as pair:
        yield pair


def test_a_finished_job_is_read_once_and_a_running_one_every_time(two_processes) -> None:
    api, worker = two_processes
    cache = FinishedJobs(api)
    heard = threading.Semaphore(0)
    api.events.watch_all(lambda job_id: heard.release())

    async def scenario() -> None:
        _new(api, "j1:veo2")
        assert (await cache.get("j1:veo2")).status is JobStatus.QUEUED
        assert (await cache.get("j1:veo2")).status is JobStatus.QUEUED
        assert api.reads == 2  # unfinished jobs change: never served from memory
        while heard.acquire(blocking=False):
            pass
        _finish(worker, "j1:veo2")
        for _ in range(2):  # the claim's event, then the completion's (in order)
            assert await asyncio.to_thread(heard.acquire, True, 5)
        assert (await cache.get("j1:veo2")).status is JobStatus.COMPLETED
        reads = api.reads
        for _ in range(50):
            assert (await cache.get("j1:veo2")).status is JobStatus.COMPLETED
        assert api.reads == reads

    asyncio.run(scenario())


def test_a_delete_in_another_process_is_seen_at_once(two_processes) -> None:
    api, worker = two_processes
    cache = FinishedJobs(api)
    forgotten = threading.Event()
    api.events.watch_all(lambda job_id: forgotten.set())

    async def scenario() -> None:
        _new(worker, "j2:veo2")
        _finish(worker, "j2:veo2")
        assert (await cache.get("j2:veo2")).status is JobStatus.COMPLETED
        forgotten.clear()
        worker.delete("j2:veo2", "o")
        # The datagram arrives on the API side's listener thread; from then on the
        # cache must not answer from memory (the TTL is far away: 2 s).
        assert await asyncio.to_thread(forgotten.wait, 5)
        assert await cache.get("j2:veo2") is None

    asyncio.run(scenario())


def _one_finished_job(
    tmp_path, store_class: type[CountingStore], job_id: str
) -> tuple[Engine, CountingStore, list[float], FinishedJobs]:
    """A store holding one completed job, and a cache over it on a clock the test sets."""
    engine = make_engine(f"sqlite:///{tmp_path / 'jobs.db'}")
    upgrade(engine)
    store = store_class(engine)
    now = [0.0]
    cache = FinishedJobs(store, ttl=2.0, clock=lambda: now[0])
    _new(store, job_id)
    _finish(store, job_id)
    return engine, store, now, cache


def test_concurrent_misses_share_one_read_and_stale_entries_refresh_behind(tmp_path) -> None:
    engine, store, now, cache = _one_finished_job(tmp_path, CountingStore, "j3:veo2")

    async def scenario() -> None:
        jobs = await asyncio.gather(*(cache.get("j3:veo2") for _ in range(20)))
        assert {job.status for job in jobs} == {JobStatus.COMPLETED}
        assert store.reads == 1
        now[0] = 3.0  # past the TTL, within twice it: answered at once, refreshed behind
        assert (await cache.get("j3:veo2")).status is JobStatus.COMPLETED
        deadline = time.monotonic() + 10
        while store.reads < 2:
            assert time.monotonic() < deadline, "no refresh behind the answer"
            await asyncio.sleep(0.01)
        now[0] = 3.0 + 4.5  # more than twice the TTL since the refresh: read before answering
        reads = store.reads
        assert (await cache.get("j3:veo2")).status is JobStatus.COMPLETED
        assert store.reads == reads + 1
        store.delete("j3:veo2", "o")  # no transport: the hub tells this process itself
        assert await cache.get("j3:veo2") is None

    asyncio.run(scenario())
    engine.dispose()


def test_a_change_announced_during_a_read_keeps_the_read_out_of_memory(tmp_path) -> None:
    """A read that began before a change was announced may hold the old state: it is
    answered but not remembered."""
    engine = make_engine(f"sqlite:///{tmp_path / 'jobs.db'}")
    upgrade(engine)
    reading = threading.Event()
    release = threading.Event()

    class SlowStore(CountingStore):
        def get(self, job_id: str):  # type: ignore[no-untyped-def]
            found = super().get(job_id)
            reading.set()
            release.wait(5)
            return found

    store = SlowStore(engine)
    cache = FinishedJobs(store)
    _new(store, "j4:veo2")
    _finish(store, "j4:veo2")

    async def scenario() -> None:
        first = asyncio.ensure_future(cache.get("j4:veo2"))
        assert await asyncio.to_thread(reading.wait, 5)
        cache.forget("j4:veo2")  # e.g. the retention sweep marked it meanwhile
        release.set()
        assert (await first).status is JobStatus.COMPLETED
        reads = store.reads
        await cache.get("j4:veo2")
        assert store.reads == reads + 1  # not served from memory

    asyncio.run(scenario())
    engine.dispose()


def test_a_failed_refresh_behind_the_answer_is_logged(tmp_path, caplog) -> None:
    """Nobody awaits a refresh behind an answer: its failure must reach the log."""
    failing = threading.Event()

    class FlakyStore(CountingStore):
        def get(self, job_id: str):  # type: ignore[no-untyped-def]
            if failing.is_set():
                self.reads += 1
                raise ConnectionError("database unreachable")
            return super().get(job_id)

    engine, _, now, cache = _one_finished_job(tmp_path, FlakyStore, "j5:veo2")

    async def scenario() -> None:
        await cache.get("j5:veo2")
        failing.set()
        now[0] = 3.0  # answered from memory, refreshed behind: the refresh fails
        assert (await cache.get("j5:veo2")).status is JobStatus.COMPLETED
        deadline = time.monotonic() + 10
        while "reading finished job j5:veo2 failed: ConnectionError" not in caplog.text:
            assert time.monotonic() < deadline, caplog.text
            await asyncio.sleep(0.01)

    with caplog.at_level("WARNING", logger="reelforge.live"):
        asyncio.run(scenario())
    assert "database unreachable" not in caplog.text  # the type only: errors may hold secrets
    engine.dispose()
