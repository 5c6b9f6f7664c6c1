"""Caps, credits and fair scheduling in the job store, on SQLite and PostgreSQL, including
from several processes at once (nothing overspent, no cap overrun, nobody starved)."""

from __future__ import annotations

import multiprocessing
import uuid
from collections import Counter

import pytest
from sqlalchemy import select, update

from reelforge.errors import Forbidden, RateLimited, ServiceUnavailable
from reelforge.jobs import JobStatus, JobStore, NewJob
from reelforge.jobs.db import make_engine
from reelforge.jobs.keys import KeyStore
from reelforge.jobs.models import ApiKeyRow, KeyUsageRow
from reelforge.jobs.store import Admission

pytestmark = pytest.mark.integration

LEASE = 30.0
PRICE = 100


def new_job(owner: str, model: str = "veo2", credits: int = PRICE) -> NewJob:
    return NewJob(
        id=f"{uuid.uuid4()}:{model}",
        model=model,
        owner=owner,
        params={"model": model, "prompt": "p", "duration": 5},
        seed=1,
        credits=credits,
        video_token=uuid.uuid4().hex,
    )


def set_balance(store: JobStore, owner: str, balance: int | None) -> None:
    with store._sessions.begin() as session:
        if session.get(KeyUsageRow, owner) is None:
            session.add(
                KeyUsageRow(
                    owner=owner,
                    balance=balance,
                    reserved=0,
                    spent=0,
                    virtual_time=0.0,
                    jobs_created=0,
                )
            )
        else:
            session.execute(
                update(KeyUsageRow).where(KeyUsageRow.owner == owner).values(balance=balance)
            )


def usage(store: JobStore, owner: str) -> KeyUsageRow:
    with store._sessions.begin() as session:
        return session.scalar(select(KeyUsageRow).where(KeyUsageRow.owner == owner))


def claim(store: JobStore, worker: str = "w1", **kwargs):
    return store.claim(worker, lease_seconds=LEASE, max_attempts=3, **kwargs)


def test_credits_are_reserved_charged_and_released(store, clock) -> None:
    set_balance(store, "a", 250)
    first, second = new_job("a"), new_job("a")
    store.create(first)
    store.create(second)
    assert (usage(store, "a").balance, usage(store, "a").reserved) == (250, 200)
    with pytest.raises(Forbidden, match="You've run out of credits") as refused:
        store.create(new_job("a"))
    assert "costs 100 credits" in refused.value.message and "50 available" in refused.value.message
    one = claim(store)
    assert store.complete(one.id, "w1", video_key="k", video_size=1, credits=80)
    row = usage(store, "a")
    assert (row.balance, row.reserved, row.spent) == (170, 100, 80)
    store.cancel(second.id, "a")  # still queued: released, not charged
    row = usage(store, "a")
    assert (row.balance, row.reserved, row.spent) == (170, 0, 80)
    assert store.get(second.id).credits_reserved == 0


def test_an_upstream_charging_more_than_held_never_makes_the_balance_negative(store) -> None:
    set_balance(store, "a", 100)
    store.create(new_job("a"))
    job = claim(store)
    store.complete(job.id, "w1", video_key="k", video_size=1, credits=5000)
    row = usage(store, "a")
    assert (row.balance, row.reserved) == (0, 0)


def test_deleting_an_unfinished_job_releases_its_credits(store) -> None:
    set_balance(store, "a", 1000)
    job = store.create(new_job("a"))
    store.delete(job.id, "a")
    assert usage(store, "a").reserved == 0 and usage(store, "a").balance == 1000


def test_queued_and_service_caps(store) -> None:
    capped = Admission(max_queued=2)
    store.create(new_job("a"), capped)
    store.create(new_job("a"), capped)
    with pytest.raises(RateLimited, match=r"Too Many Requests.*2 generations queued.*max_queued"):
        store.create(new_job("a"), capped)
    store.create(new_job("b"), capped)  # another key has its own cap
    with pytest.raises(RateLimited, match="max_running is 0"):
        store.create(new_job("c"), Admission(max_running=0))
    with pytest.raises(ServiceUnavailable, match="saturated") as saturated:
        store.create(new_job("d"), Admission(service_max_queued=3))
    assert saturated.value.retry_after_seconds > 0


def test_a_newcomer_is_served_within_two_claims(store, clock) -> None:
    for _ in range(100):
        store.create(new_job("busy"))
        clock.advance(0.001)
    claim(store)  # the busy key has been served once already
    late = store.create(new_job("late"))
    served = [claim(store, f"w{index}").owner for index in range(2)]
    assert "late" in served
    assert store.get(late.id).status is JobStatus.GENERATING


def test_priority_weights_share_the_claims(store, clock) -> None:
    keys = KeyStore(store._engine)
    heavy, _ = keys.create("heavy", priority=2)
    light, _ = keys.create("light", priority=1)
    for _ in range(30):
        store.create(new_job(heavy.id))
        store.create(new_job(light.id))
        clock.advance(0.001)
    owners = Counter(claim(store, f"w{index}").owner for index in range(30))
    assert owners[heavy.id] == 20 and owners[light.id] == 10


def test_max_running_holds_back_a_keys_other_jobs(store) -> None:
    keys = KeyStore(store._engine)
    one_at_a_time, _ = keys.create("serial", max_running=1)
    store.create(new_job(one_at_a_time.id))
    store.create(new_job(one_at_a_time.id))
    other = store.create(new_job("other"))
    first = claim(store, "w1")
    second = claim(store, "w2")
    assert first.owner == one_at_a_time.id and second.id == other.id
    assert claim(store, "w3") is None  # the serial key's second job waits
    store.complete(first.id, "w1", video_key="k", video_size=1)
    assert claim(store, "w3").owner == one_at_a_time.id


def test_the_service_default_max_running_applies_to_keys_without_their_own(store) -> None:
    for _ in range(3):
        store.create(new_job("env:a"))
    assert claim(store, "w1", default_max_running=2) is not None
    assert claim(store, "w2", default_max_running=2) is not None
    assert claim(store, "w3", default_max_running=2) is None


def test_workers_claim_only_their_models(store) -> None:
    text = store.create(new_job("a", "veo2"))
    image = store.create(new_job("a", "veo2/image-to-video"))
    assert claim(store, "gpu", models=["veo2/image-to-video"]).id == image.id
    assert claim(store, "gpu", models=["veo2/image-to-video"]) is None
    assert claim(store, "cpu").id == text.id


# -- several processes at once ----------------------------------------------------------


def _create_many(url: str, owner: str, count: int, max_queued: int | None, out) -> None:
    store = JobStore(make_engine(url))
    accepted = refused = 0
    for _ in range(count):
        try:
            store.create(new_job(owner), Admission(max_queued=max_queued))
            accepted += 1
        except (Forbidden, RateLimited):
            refused += 1
    out.put((accepted, refused))


def _run_processes(url: str, owner: str, *, per_process: int, max_queued: int | None):
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [
        context.Process(target=_create_many, args=(url, owner, per_process, max_queued, results))
        for _ in range(4)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    return sum(a for a, _ in outcomes), sum(r for _, r in outcomes)


def test_concurrent_creates_from_processes_never_overspend(db_engine) -> None:
    store = JobStore(db_engine)
    set_balance(store, "spender", 13 * PRICE + 50)  # room for exactly 13 jobs
    url = db_engine.url.render_as_string(hide_password=False)
    accepted, refused = _run_processes(url, "spender", per_process=8, max_queued=None)
    row = usage(store, "spender")
    assert accepted == 13 and refused == 32 - 13
    assert row.reserved == 13 * PRICE and row.balance - row.reserved == 50


def test_concurrent_creates_from_processes_never_overrun_the_queue_cap(db_engine) -> None:
    store = JobStore(db_engine)
    url = db_engine.url.render_as_string(hide_password=False)
    accepted, refused = _run_processes(url, "queuer", per_process=8, max_queued=11)
    queued = store.list("queuer", limit=100, statuses=[JobStatus.QUEUED]).jobs
    assert accepted == 11 and len(queued) == 11 and refused == 21


def test_fairness_with_several_concurrent_claimers(db_engine) -> None:
    """Three workers claim at once while one key has a backlog of 60."""
    import threading

    store = JobStore(db_engine)
    for _ in range(60):
        store.create(new_job("backlog"))
    claimed: list[str] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        job = claim(store, name)
        if job is not None:
            with lock:
                claimed.append(job.owner)

    first = [threading.Thread(target=work, args=(f"w{index}",)) for index in range(3)]
    for thread in first:
        thread.start()
    for thread in first:
        thread.join()
    store.create(new_job("newcomer"))
    second = [threading.Thread(target=work, args=(f"v{index}",)) for index in range(2)]
    for thread in second:
        thread.start()
    for thread in second:
        thread.join()
    assert "newcomer" in claimed[3:], claimed


def test_key_limits_fall_back_to_service_defaults(db_engine) -> None:
    from reelforge.jobs.keys import KeyLimits

    keys = KeyStore(db_engine, defaults=KeyLimits(rpm=10, max_queued=5))
    own, secret = keys.create("own", rpm=2)
    limits = keys.authenticate(secret).limits
    assert (limits.rpm, limits.max_queued, limits.max_running, limits.priority) == (2, 5, None, 1)
    keys.update(own.id, rpm=None, max_running=3)
    limits = keys.authenticate(secret).limits
    assert (limits.rpm, limits.max_running) == (10, 3)
    with db_engine.connect() as connection:
        assert (
            connection.execute(select(ApiKeyRow.rpm).where(ApiKeyRow.id == own.id)).scalar() is None
        )
