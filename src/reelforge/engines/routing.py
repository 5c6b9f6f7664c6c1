"""Routes: per model, an ordered list of engines, and failover between them.

A ``RoutedEngine`` is the engine of a model whose route names several engines (or one
configured instance). It tries them in order and moves to the next only when the
current one failed before anything billable happened upstream, which the engine proves
by raising an error marked ``nothing_billed`` (``reelforge.errors.unbilled``): a refused
connection, 408/429 (and for ``openai-videos`` 503) past the retries, a rejected key, a
failure the upstream reports as unbilled. Any other failure ends the job: a create that
may have started, a lost upstream task, a refusal of the request itself. The README's
"Routing" section has the table.

* **Never twice.** The engine that accepted a task saves its upstream id with the
  route's ``engine`` key (``JobContext.saving_with``); a resumed job goes back to that
  engine only and never fails over from a task it cannot prove unbilled.
* **Circuit breakers.** One per engine instance and worker process (``CircuitBreaker``):
  open after ``breaker_failures`` consecutive failover-worthy failures, skipped for
  ``breaker_cooldown_seconds``, then one job probes it (half-open). State changes are
  published to ``Capacity`` (so ``/health`` shows them) and to ``/metrics``.
* **Capacity.** An instance with ``capacity`` N runs at most N jobs at once across all
  workers: a slot is a named lease in the store (``Capacity``, the ``locks`` table),
  held by the job id and renewed while it runs, so a crashed worker's slot comes back
  when its lease runs out and a resumed job takes its own slot again. Claims pass over
  models whose engines are all full (``EngineRouter.full_models``); a job that lost the
  race for a last slot waits for one (cancellable) rather than fail.
* **provider.** The AI/ML API's ``provider`` pins a job to the route's engines of that
  kind of upstream (``PROVIDER_KINDS``); ``auto`` is the configured order.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from reelforge import metrics
from reelforge.engines.base import Capabilities, Engine, GenerationRequest, Inputs, JobContext
from reelforge.errors import (
    EngineError,
    InvalidRequest,
    JobInterrupted,
    ReelforgeError,
    ServiceUnavailable,
    unbilled,
)
from reelforge.media.clip import Clip
from reelforge.settings import Settings

logger = logging.getLogger(__name__)

ROUTE_STATE_KEY = "engine"
"""Where the engine state names the route's engine that holds the upstream task."""
PROVIDER_KINDS: Mapping[str, frozenset[str]] = {
    "google": frozenset({"google", "aimlapi"}),
    "fal": frozenset({"fal", "aimlapi"}),
}
"""Engine kinds that reach each ``provider``: Google's API itself, fal's queue, or the
AI/ML API (which is handed the same ``provider`` and routes there)."""
SLOT_WAIT_SECONDS = 1.0
"""How often a job whose engines are all at capacity looks for a free slot."""
BREAKER_LOCK_PREFIX = "breaker:"
SLOT_LOCK_PREFIX = "slot:"


def route_kinds(settings: Settings, model: str) -> dict[str, str]:
    """The engines of ``model``'s route (name -> kind), from settings alone."""
    names = settings.routes.get(model) or [settings.model_engines.get(model, settings.engine)]
    return {
        name: settings.engines[name].kind if name in settings.engines else name for name in names
    }


def pinned(model: str, kinds: Mapping[str, str], provider: object) -> list[str]:
    """The engine names a job with ``provider`` may use, in the route's order; raises
    ``InvalidRequest`` when ``provider`` pins a kind of upstream the route lacks."""
    if not isinstance(provider, str) or provider.lower() == "auto":
        return list(kinds)
    wanted = PROVIDER_KINDS.get(provider.lower(), frozenset())
    chosen = [name for name, kind in kinds.items() if kind in wanted]
    if not chosen:
        raise InvalidRequest(
            f"provider '{provider}' is not available for {model} on this service, which "
            f"makes it with {', '.join(kinds)}; use provider 'auto'",
            "provider",
        )
    return chosen


def check_provider(settings: Settings, model: str, provider: object) -> None:
    """At submit: refuse a ``provider`` the route of ``model`` cannot honour (a 400).
    Models without a route keep the AI/ML API's behaviour: ``provider`` is a hint."""
    if model in settings.routes:
        pinned(model, route_kinds(settings, model), provider)


def engine_health(settings: Settings, leases: Mapping[str, str]) -> dict[str, dict[str, object]]:
    """Each engine named by a route: its circuit (``open`` while some worker has it open)
    and its busy slots out of its capacity, from the store's held ``leases``."""
    names = dict.fromkeys(name for route in settings.routes.values() for name in route)
    health: dict[str, dict[str, object]] = {}
    for name in names:
        instance = settings.engines.get(name)
        slot = f"{SLOT_LOCK_PREFIX}{name}:"
        health[name] = {
            "kind": instance.kind if instance else name,
            "circuit": "open" if f"{BREAKER_LOCK_PREFIX}{name}" in leases else "closed",
            "busy": sum(1 for lease in leases if lease.startswith(slot)),
            "capacity": instance.capacity if instance else None,
        }
    return health


def held_leases(store: Capacity) -> dict[str, str]:
    """The breaker and slot leases held now (``JobStore.held_locks``)."""
    held = getattr(store, "held_locks", None)
    if held is None:
        return {}
    return {**held(BREAKER_LOCK_PREFIX), **held(SLOT_LOCK_PREFIX)}


class Capacity(Protocol):
    """Named leases shared by every worker (``JobStore.try_lock`` / ``unlock``)."""

    def try_lock(self, name: str, holder: str, seconds: float) -> bool: ...

    def unlock(self, name: str, holder: str) -> bool: ...


@dataclass
class CircuitBreaker:
    """Closed, open after ``failures`` consecutive failures, half-open after ``cooldown``.

    Half-open lets one call through at a time; its success closes the circuit, its
    failure opens it for another ``cooldown``. Thread-safe; ``clock`` is replaceable.
    """

    name: str
    failures: int
    cooldown: float
    clock: Callable[[], float] = time.monotonic
    consecutive: int = 0
    opened_at: float | None = None
    probing: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "open" if self.clock() - self.opened_at < self.cooldown else "half_open"

    def allow(self) -> bool:
        """Whether a call may go to the engine now (taking the half-open probe)."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return True
            if state == "half_open" and not self.probing:
                self.probing = True
                return True
            return False

    def succeeded(self) -> None:
        with self._lock:
            self.consecutive, self.opened_at, self.probing = 0, None, False
        metrics.BREAKER_OPEN.labels(self.name).set(0)

    def failed(self) -> bool:
        """Count a failure; whether it opened (or re-opened) the circuit."""
        with self._lock:
            self.consecutive += 1
            reopen = self.probing or (self.opened_at is None and self.consecutive >= self.failures)
            self.probing = False
            if reopen:
                self.opened_at = self.clock()
        if reopen:
            metrics.BREAKER_OPEN.labels(self.name).set(1)
        return reopen


@dataclass(frozen=True)
class Member:
    """One engine of a route: its name in the configuration, its kind and capacity."""

    name: str
    kind: str
    engine: Engine
    capacity: int | None = None
    models: frozenset[str] | None = None
    """The models it serves, when its configuration limits them."""


class RoutedEngine:
    """An ``Engine`` over a route's members, tried in order (see the module's text)."""

    def __init__(
        self,
        model: str,
        members: Sequence[Member],
        breakers: Mapping[str, CircuitBreaker],
        *,
        capacity: Capacity | None = None,
        lease_seconds: float = 30.0,
    ) -> None:
        self.model = model
        self.name = "+".join(member.name for member in members)
        self.members = list(members)
        self.breakers = breakers
        self.capacity = capacity
        self.lease_seconds = lease_seconds

    def capabilities(self, model: str) -> Capabilities:
        """What any member can take (each job then goes to a member that can take it)."""
        each = [member.engine.capabilities(model) for member in self.members]
        return Capabilities(
            inputs=frozenset().union(*(c.inputs for c in each)),
            enhances_prompt=all(c.enhances_prompt for c in each),
        )

    def load(self) -> None:
        for member in self.members:
            member.engine.load()

    def close(self) -> None:
        for member in self.members:
            member.engine.close()

    def candidates(self, provider: object) -> list[Member]:
        """The members a job with ``provider`` may use, in order (``pinned``)."""
        try:
            names = pinned(self.model, {m.name: m.kind for m in self.members}, provider)
        except InvalidRequest as refused:  # the route changed since the job was accepted
            raise EngineError(refused.message) from None
        return [member for member in self.members if member.name in names]

    def generate(self, request: GenerationRequest, inputs: Inputs, job: JobContext) -> Clip:
        members = self.candidates(request.params.get("provider"))
        held = request.engine_state.get(ROUTE_STATE_KEY)
        if held is None and request.engine_state:
            held = self.members[0].name  # saved before routes existed: the only engine
        if held is not None:
            # An upstream accepted this job: resume there, never elsewhere.
            resumed = [member for member in self.members if member.name == held]
            if not resumed:
                raise EngineError(
                    f"this job was started on engine '{held}', which its route no longer "
                    "names; it was not sent elsewhere, so it cannot be charged twice"
                )
            try:
                return self._attempt(resumed[0], request, inputs, job, resume=True)
            except ReelforgeError as error:
                if isinstance(error, JobInterrupted) or not error.nothing_billed:
                    raise
                # Its task failed unbilled (say, after a crash that followed the failure):
                # the others start afresh, without the old engine's state.
                self._failed_over(resumed[0], request, error)
                request = replace(request, engine_state={})
                members = [member for member in members if member.name != held]
                if not members:
                    raise
        able = [m for m in members if inputs.kinds <= m.engine.capabilities(request.model).inputs]
        if not able:
            raise EngineError(f"no engine of the route of '{request.model}' can take these inputs")
        return self._run(able, request, inputs, job)

    def _run(
        self, members: list[Member], request: GenerationRequest, inputs: Inputs, job: JobContext
    ) -> Clip:
        """Each member in order; one that failed over (or whose circuit is open) is not
        tried again for this job, one that is full is, after a pause, until none is left."""
        last: ReelforgeError | None = None
        left = list(members)
        while left:
            full: list[Member] = []
            for member in left:
                breaker = self.breakers[member.name]
                if not breaker.allow():
                    logger.info(
                        "engine skipped: circuit open",
                        extra={"job_id": request.job_id, "engine": member.name},
                    )
                    last = last or unbilled(
                        ServiceUnavailable(
                            f"the engines of {request.model} are unavailable right now; "
                            "try again later"
                        )
                    )
                    metrics.FAILOVERS.labels(request.model, member.name, "circuit_open").inc()
                    continue
                with self._slot(member, request, job) as slot:
                    if not slot:
                        _give_back_probe(breaker)
                        full.append(member)
                        continue
                    try:
                        return self._attempt(member, request, inputs, job, breaker=breaker)
                    except ReelforgeError as error:
                        if isinstance(error, JobInterrupted) or not error.nothing_billed:
                            raise
                        last = error
                        self._failed_over(member, request, error)
            left = full
            if left:
                job.report(0.0, "waiting for a free engine")
                job.sleep(SLOT_WAIT_SECONDS)
        assert last is not None
        raise last

    def _attempt(
        self,
        member: Member,
        request: GenerationRequest,
        inputs: Inputs,
        job: JobContext,
        *,
        breaker: CircuitBreaker | None = None,
        resume: bool = False,
    ) -> Clip:
        breaker = breaker or self.breakers[member.name]
        context = job.saving_with({ROUTE_STATE_KEY: member.name})
        try:
            if resume:
                with self._slot(member, request, job, wait=True):
                    clip = member.engine.generate(request, inputs, context)
            else:
                clip = member.engine.generate(request, inputs, context)
        except JobInterrupted:
            _give_back_probe(breaker)
            raise
        except ReelforgeError as error:
            if error.nothing_billed:
                if breaker.failed():
                    self._publish_open(member)
                    logger.warning(
                        "engine circuit opened", extra={"engine": member.name, "job_id": job.job_id}
                    )
            else:
                _give_back_probe(breaker)
            raise
        except BaseException:
            _give_back_probe(breaker)
            raise
        if breaker.state != "closed" or breaker.consecutive:
            self._publish_closed(member)
        breaker.succeeded()
        clip.facts = {**clip.facts, "engine": member.name}
        return clip

    def _failed_over(
        self, member: Member, request: GenerationRequest, error: ReelforgeError
    ) -> None:
        logger.warning(
            "engine failed before anything billable; failing over",
            extra={
                "job_id": request.job_id,
                "engine": member.name,
                "error": error.name,
                "reason": error.message[:300],
            },
        )
        metrics.FAILOVERS.labels(request.model, member.name, error.name).inc()

    # -- capacity and shared breaker state -----------------------------------------------

    @contextlib.contextmanager
    def _slot(
        self, member: Member, request: GenerationRequest, job: JobContext, *, wait: bool = False
    ) -> Iterator[bool]:
        """Hold one of ``member``'s slots while the block runs (``True``), or yield
        ``False`` when all are taken (with ``wait``, wait for one instead)."""
        if member.capacity is None or self.capacity is None:
            yield True
            return
        holder = request.job_id or f"anonymous-{id(request)}"
        names = [f"{SLOT_LOCK_PREFIX}{member.name}:{n}" for n in range(member.capacity)]
        while True:
            lock = self.capacity.try_lock
            taken = next((n for n in names if lock(n, holder, self.lease_seconds)), None)
            if taken is not None or not wait:
                break
            job.report(0.0, "waiting for a free engine")
            job.sleep(SLOT_WAIT_SECONDS)
        if taken is None:
            yield False
            return
        stop = threading.Event()
        renewer = threading.Thread(
            target=self._renew, args=(taken, holder, stop), daemon=True, name="slot-lease"
        )
        renewer.start()
        try:
            yield True
        finally:
            stop.set()
            renewer.join(timeout=5.0)
            with contextlib.suppress(Exception):
                self.capacity.unlock(taken, holder)

    def _renew(self, name: str, holder: str, stop: threading.Event) -> None:
        assert self.capacity is not None
        while not stop.wait(self.lease_seconds / 3):
            try:
                self.capacity.try_lock(name, holder, self.lease_seconds)
            except Exception:
                logger.warning("could not renew an engine slot", extra={"slot": name})

    def _publish_open(self, member: Member) -> None:
        if self.capacity is not None:
            breaker = self.breakers[member.name]
            with contextlib.suppress(Exception):
                self.capacity.try_lock(
                    f"{BREAKER_LOCK_PREFIX}{member.name}", "open", breaker.cooldown
                )

    def _publish_closed(self, member: Member) -> None:
        if self.capacity is not None:
            with contextlib.suppress(Exception):
                self.capacity.unlock(f"{BREAKER_LOCK_PREFIX}{member.name}", "open")


def _give_back_probe(breaker: CircuitBreaker) -> None:
    """A half-open probe that proved nothing (cancelled, slot full) lets another try."""
    with breaker._lock:
        breaker.probing = False
