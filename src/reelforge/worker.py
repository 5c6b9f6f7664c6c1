"""The worker loop: claim a job, load its inputs, run the engine, encode, store, finish.

Guarantees, with the store's conditional updates:

* a video is stored before its job is marked ``completed`` (same key on every attempt, so
  a crash in between only means the next attempt overwrites it);
* the lease is extended by a heartbeat thread while the job runs, so a long engine call
  does not lose the job, and a worker that died loses it after ``lease_seconds``;
* on shutdown the current job is handed back (``release``) and runs again elsewhere or
  after restart.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from reelforge.catalog import MODELS
from reelforge.engines import EngineRouter, GenerationRequest, Inputs
from reelforge.errors import GenerationFailed, InputError, ServiceUnavailable
from reelforge.generations import staged_key, video_key
from reelforge.jobs import JobRecord, JobStore
from reelforge.media.encode import encode_mp4
from reelforge.media.fit import aspect_for
from reelforge.media.images import decode_image, load_image
from reelforge.media.netguard import FetchPolicy
from reelforge.prompts import build_enhancer
from reelforge.settings import Settings
from reelforge.storage import Storage

log = logging.getLogger(__name__)

HOSTNAME = socket.gethostname()
INSTANCE = secrets.token_hex(4)
"""Distinguishes this process from an earlier one that had the same PID (containers)."""

HEARTBEAT_MAX_INTERVAL_SECONDS = 1.0
PROGRESS_INPUTS = 0.05
"""Share of a job's progress bar spent fetching and decoding inputs."""
PROGRESS_STORING = 0.99


class JobInterrupted(Exception):
    """Stops an engine mid-job; raised from the progress callback."""


class LeaseLost(JobInterrupted):
    pass


class ShuttingDown(JobInterrupted):
    pass


def make_worker_id(index: int, host: str = HOSTNAME) -> str:
    """``host:pid:instance:index``; ``host`` must not contain ``:``."""
    return f"{host}:{os.getpid()}:{INSTANCE}:{index}"


def is_dead_local_worker(worker_id: str, host: str = HOSTNAME) -> bool:
    """Whether ``worker_id`` names a worker process on this machine that no longer runs."""
    parts = worker_id.split(":")
    if len(parts) != 4 or parts[0] != host or not parts[1].isdigit():
        return False
    pid, instance = int(parts[1]), parts[2]
    if pid == os.getpid():
        return instance != INSTANCE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class _Tracker:
    """Heartbeat thread plus the progress callback handed to engines."""

    def __init__(self, worker: Worker, job: JobRecord) -> None:
        self._worker = worker
        self._job = job
        self._progress = 0.0
        self._stage = "starting"
        self._dirty = True
        self._done = threading.Event()
        self._lost = threading.Event()
        self._deadline = time.monotonic() + worker.settings.job_timeout_seconds
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{job.id}", daemon=True)

    def __enter__(self) -> _Tracker:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._done.set()
        self._thread.join()

    def _beat(self) -> None:
        settings = self._worker.settings
        interval = min(settings.lease_seconds / 3, HEARTBEAT_MAX_INTERVAL_SECONDS)
        while not self._done.wait(interval):
            try:
                owned = self._worker.store.heartbeat(
                    self._job.id,
                    self._worker.worker_id,
                    lease_seconds=settings.lease_seconds,
                    progress=self._progress if self._dirty else None,
                    stage=self._stage if self._dirty else None,
                )
            except Exception:
                log.warning("heartbeat failed", exc_info=True, extra={"job_id": self._job.id})
                continue
            self._dirty = False
            if not owned:
                self._lost.set()
                return

    def report(self, fraction: float, stage: str) -> None:
        """Progress of the whole job; raises to stop the engine when it must stop."""
        worker = self._worker
        if worker.stop_event.is_set() and time.monotonic() >= worker.drain_until:
            raise ShuttingDown()
        if self._lost.is_set():
            raise LeaseLost()
        if time.monotonic() > self._deadline:
            limit = self._worker.settings.job_timeout_seconds
            raise GenerationFailed(f"the generation took longer than the {limit:g} s limit")
        fraction = max(self._progress, min(1.0, fraction))
        if fraction != self._progress or stage != self._stage:
            self._progress, self._stage, self._dirty = fraction, stage, True

    def save_state(self, state: Mapping[str, Any]) -> None:
        """Keep an engine's resume state with the job (e.g. an upstream task id)."""
        if not self._worker.store.save_engine_state(self._job.id, self._worker.worker_id, state):
            raise LeaseLost()

    def scaled(self, start: float, end: float) -> _ScaledProgress:
        return _ScaledProgress(self, start, end)


class _ScaledProgress:
    """The ``Progress`` handed to an engine: its [0, 1] maps onto part of the job's bar."""

    def __init__(self, tracker: _Tracker, start: float, end: float) -> None:
        self._tracker, self._start, self._end = tracker, start, end

    def __call__(self, fraction: float, stage: str) -> None:
        self._tracker.report(self._start + (self._end - self._start) * fraction, stage)

    def save_state(self, state: Mapping[str, Any]) -> None:
        self._tracker.save_state(state)


class Worker:
    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        storage: Storage,
        engines: EngineRouter,
        *,
        policy: FetchPolicy | None = None,
        worker_id: str | None = None,
        stop_event: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.storage = storage
        self.engines = engines
        self.policy = policy or FetchPolicy.from_settings(settings)
        self.worker_id = worker_id or make_worker_id(0)
        self.stop_event = stop_event or threading.Event()
        self.drain_until = 0.0
        """After ``stop_event``, the running job may go on until this ``time.monotonic()``."""
        self.enhancer = build_enhancer(settings)

    def run(self) -> None:
        """Process jobs until ``stop_event`` is set."""
        while not self.stop_event.is_set():
            try:
                busy = self.run_once()
            except Exception:
                log.exception("worker loop error; retrying")
                busy = False
            if not busy:
                self.store.wait_for_work(self.settings.poll_seconds)

    def run_once(self) -> bool:
        """Claim and process one job; ``False`` when there was nothing to do."""
        job = self.store.claim(
            self.worker_id,
            lease_seconds=self.settings.lease_seconds,
            max_attempts=self.settings.max_attempts,
        )
        if job is None:
            return False
        self.process(job)
        return True

    def process(self, job: JobRecord) -> None:
        log.info("job started", extra={"job_id": job.id, "attempt": job.attempts})
        started = time.monotonic()
        work = self.storage.temp_dir() / f"{uuid.uuid4().hex}.mp4"
        finished = False
        try:
            with _Tracker(self, job) as tracker:
                size, info = self._generate(job, tracker, work)
            credits = info.pop("credits_used", None)
            finished = self.store.complete(
                job.id,
                self.worker_id,
                video_key=video_key(job),
                video_size=size,
                info=info,
                credits=round(credits) if isinstance(credits, int | float) else None,
            )
            log.info(
                "job completed",
                extra={"job_id": job.id, "seconds": round(time.monotonic() - started, 2)},
            )
        except ShuttingDown:
            self.store.release(job.id, self.worker_id)
            log.info("job handed back on shutdown", extra={"job_id": job.id})
        except LeaseLost:
            log.warning("job lease lost; another worker owns it now", extra={"job_id": job.id})
        except (InputError, GenerationFailed, ServiceUnavailable) as error:
            finished = self.store.fail(
                job.id, self.worker_id, name=error.name, message=error.message
            )
            log.info("job failed", extra={"job_id": job.id, "error": error.name})
        except Exception:
            log.exception("job crashed", extra={"job_id": job.id})
            finished = self.store.fail(
                job.id,
                self.worker_id,
                name=GenerationFailed.name,
                message=(
                    "an internal error stopped the generation; try again, and if it "
                    f"repeats, give the operator this id: {job.id}"
                ),
            )
        finally:
            with contextlib.suppress(FileNotFoundError):
                work.unlink()
        if finished:
            self._drop_staged_inputs(job)

    def _generate(
        self, job: JobRecord, tracker: _Tracker, work: Path
    ) -> tuple[int, dict[str, Any]]:
        spec = MODELS[job.model]
        params = spec.params_type.model_validate(job.params)
        tracker.report(0.0, "loading inputs")
        images = {
            field: self._load_image(field, reference)
            for field, reference in params.image_refs().items()
        }
        first = images.get("image_url")
        aspect = params.aspect_ratio
        if aspect == "auto":
            aspect = aspect_for(first) if first else "16:9"
        width, height = spec.frame_size(params, aspect)
        engine = self.engines.for_model(job.model)
        prompt = params.prompt
        if params.enhance_prompt and not engine.capabilities().enhances_prompt:
            tracker.report(PROGRESS_INPUTS / 2, "enhancing prompt")
            prompt = self.enhancer.enhance(params.prompt, image_input=first is not None)
        request = GenerationRequest(
            model=job.model,
            prompt=prompt,
            original_prompt=params.prompt if prompt != params.prompt else None,
            negative_prompt=params.negative_prompt,
            duration_seconds=params.duration,
            width=width,
            height=height,
            seed=job.seed,
            enhance_prompt=params.enhance_prompt,
            generate_audio=params.wants_audio,
            aspect_ratio=aspect,
            resolution=params.resolution_name,
            job_id=job.id,
            engine_state=dict(job.info.get("engine_state") or {}),
        )
        progress = tracker.scaled(PROGRESS_INPUTS, PROGRESS_STORING)
        clip = engine.generate(request, Inputs(first, images.get("tail_image_url")), progress)
        if clip.file is not None:
            source = clip.file
        else:
            # Frames are rendered as the encoder pulls them, so the engine's progress
            # already covers encoding.
            encode_mp4(clip, work, preset=self.settings.encoder_preset)
            source = work
        tracker.report(PROGRESS_STORING, "storing")
        try:
            size = self.storage.put_file(video_key(job), source, "video/mp4")
        finally:
            source.unlink(missing_ok=True)  # a backend that copied leaves the source behind
        info: dict[str, Any] = {
            "width": clip.width,
            "height": clip.height,
            "duration": params.duration,
            "has_audio": clip.audio is not None,
            "engine": engine.name,
            "prompt_used": prompt,
            **clip.extra,
        }
        return size, info

    def _load_image(self, field: str, reference: str) -> Any:
        key = staged_key(reference)
        limits = {
            "field": field,
            "max_pixels": self.settings.max_image_pixels,
            "min_side": self.settings.min_image_side,
        }
        if key is not None:
            return decode_image(self.storage.get_bytes(key), **limits)
        return load_image(reference, self.policy, **limits)

    def _drop_staged_inputs(self, job: JobRecord) -> None:
        for reference in job.params.values():
            if isinstance(reference, str) and (key := staged_key(reference)):
                self.storage.delete(key)


class WorkerPool:
    """``count`` worker threads in this process (what ``reelforge serve`` runs)."""

    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        storage: Storage,
        engines: EngineRouter,
        count: int,
    ) -> None:
        self.stop_event = threading.Event()
        self._store = store
        self._engines = engines
        self._host = settings.worker_name or HOSTNAME
        self._workers = [
            Worker(
                settings,
                store,
                storage,
                engines,
                worker_id=make_worker_id(index, self._host),
                stop_event=self.stop_event,
            )
            for index in range(count)
        ]
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        recovered = self._store.expire_leases(
            lambda worker_id: is_dead_local_worker(worker_id, self._host)
        )
        if recovered:
            log.info("re-queued jobs of stopped local workers", extra={"count": recovered})
        for worker in self._workers:
            thread = threading.Thread(target=worker.run, name=worker.worker_id, daemon=True)
            thread.start()
            self._threads.append(thread)

    def request_stop(self, drain_seconds: float = 0.0) -> None:
        """Stop claiming; running jobs may finish within ``drain_seconds``, else go back.

        Calling it again with a shorter drain (a second Ctrl-C) shortens the wait.
        """
        until = time.monotonic() + drain_seconds
        for worker in self._workers:
            worker.drain_until = min(worker.drain_until, until) if self.stopping else until
        self.stop_event.set()
        self._store.wake_all()

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker threads; ``True`` when all have ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(remaining)
        return not any(thread.is_alive() for thread in self._threads)

    def stop(self, drain_seconds: float = 0.0, grace_seconds: float = 30.0) -> None:
        self.request_stop(drain_seconds)
        self.join(drain_seconds + grace_seconds)
        self._engines.close()
