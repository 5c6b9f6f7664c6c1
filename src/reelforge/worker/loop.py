"""The worker loop: claim a job, load its inputs, run the engine, encode, store, finish.

Guarantees, with the store's conditional updates:

* a video is stored before its job is marked ``completed`` (same key on every attempt, so
  a crash in between only means the next attempt overwrites it);
* while the job runs, ``RunningJob``'s heartbeat keeps the lease, enforces the deadline
  and the drain on shutdown, and notices a lost lease; the engine hears all of it
  through its ``JobContext``;
* a job interrupted by shutdown is handed back (``release``) and runs again elsewhere or
  after restart; one interrupted by its deadline ends in ``error``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from reelforge import metrics
from reelforge.catalog import MODELS, GenerationParams
from reelforge.engines import (
    Clip,
    Engine,
    EngineRouter,
    GenerationRequest,
    Inputs,
    JobContext,
    time_budget,
)
from reelforge.errors import (
    ConfigurationError,
    EngineError,
    InputError,
    InsufficientStorage,
    Interruption,
    JobInterrupted,
    ServiceUnavailable,
)
from reelforge.jobs import JobRecord, JobStatus, JobStore
from reelforge.jobs.store import CANCELLED_MESSAGE, CANCELLED_NAME
from reelforge.logs import job_id_var, throttle
from reelforge.media.encode import encode_mp4
from reelforge.media.fit import aspect_for, aspect_of
from reelforge.media.netguard import FetchPolicy
from reelforge.media.posters import Posters, make_posters
from reelforge.prompts import build_enhancer
from reelforge.settings import Settings
from reelforge.storage import Storage
from reelforge.storage.base import disk_full, is_disk_full
from reelforge.storage.layout import (
    SPRITESHEET_FILE_NAME,
    THUMBNAIL_FILE_NAME,
    beside_video,
    staged_keys,
    video_files,
    video_key,
)
from reelforge.worker.inputs import load_inputs
from reelforge.worker.running import TIMEOUT_NAME, RunningJob, timeout_message

log = logging.getLogger(__name__)

PROGRESS_INPUTS = 0.05
"""Share of a job's progress bar spent fetching and decoding inputs."""
PROGRESS_STORING = 0.99
USER_FACING_ERRORS = (InputError, EngineError, ServiceUnavailable, ConfigurationError)
"""Errors whose message is meant for the user; anything else is an internal crash."""


class Worker:
    """Runs jobs one at a time (a ``WorkerPool`` runs several of these in threads)."""

    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        storage: Storage,
        engines: EngineRouter,
        *,
        policy: FetchPolicy | None = None,
        worker_id: str = "worker",
        stop_event: threading.Event | None = None,
        on_abandoned: Callable[[JobRecord], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.storage = storage
        self.engines = engines
        engines.attach_capacity(store)  # engine slots and open circuits, across workers
        self.policy = policy or FetchPolicy.from_settings(settings)
        self.worker_id = worker_id
        self.stop_event = stop_event or threading.Event()
        self.drain_until = 0.0
        """After ``stop_event``, the running job may go on until this ``time.monotonic()``."""
        self.enhancer = build_enhancer(settings)
        self.current: RunningJob | None = None
        self._on_abandoned = on_abandoned

    def run(self) -> None:
        """Process jobs until ``stop_event`` is set (or this thread is abandoned)."""
        while not self.stop_event.is_set():
            try:
                busy = self.run_once()
            except Exception as error:
                # A full disk or an unreachable database fails every turn: once a minute.
                throttle.log(
                    log,
                    logging.ERROR,
                    "worker loop error",
                    "worker loop error; retrying",
                    exc_info=error,
                )
                busy = False
            if not busy:
                self.store.events.wait_for_work(self.settings.poll_seconds)

    def run_once(self) -> bool:
        """Claim and process one job; ``False`` when there was nothing to do."""
        job = self.store.claim(
            self.worker_id,
            lease_seconds=self.settings.lease_seconds,
            max_attempts=self.settings.max_attempts,
            models=self.settings.worker_models,
            default_max_running=self.settings.default_max_running,
            skip_models=self.engines.full_models(),
        )
        if job is None:
            return False
        self.process(job)
        return True

    def process(self, job: JobRecord) -> None:
        log.info("job started", extra={"job_id": job.id, "attempt": job.attempts})
        if job.attempts == 1 and job.started_at is not None:
            waited = (job.started_at - job.created_at).total_seconds()
            metrics.PICKUP.labels(job.model).observe(max(0.0, waited))
        started = time.monotonic()
        work = self.storage.temp_dir() / f"{uuid.uuid4().hex}.mp4"
        running = RunningJob(self, job, on_abandoned=self._on_abandoned)
        self.current = running
        context_token = job_id_var.set(job.id)
        try:
            with running:
                outage = StorageOutage(self.settings.storage_outage_seconds)
                while True:
                    try:
                        size, info, credits = self._generate(job, running.context, work)
                        break
                    except BaseException as error:
                        if running.abandoned.is_set():
                            return  # the heartbeat ended the job already
                        if is_disk_full(error) or isinstance(error, InsufficientStorage):
                            # Full while encoding: wait for room and make it again.
                            with contextlib.suppress(FileNotFoundError):
                                work.unlink()
                            if outage.wait(running.context, error):
                                continue
                        self._finish_failed(job, running.context, error)
                        return
            finished = self.store.complete(
                job.id,
                self.worker_id,
                video_key=video_key(job.video_token),
                video_size=size,
                info=info,
                credits=credits,
            )
            if finished:
                seconds = time.monotonic() - started
                log.info("job completed", extra={"job_id": job.id, "seconds": round(seconds, 2)})
                self._count(job, "completed", seconds)
                # Its staged inputs stay with the video (a remix starts from them).
            else:
                latest = self.store.get(job.id)
                if latest is None or latest.status is JobStatus.ERROR:
                    # Deleted or cancelled while it ran: nobody else will write this
                    # key, so the video just stored is an orphan. (A lost lease leaves
                    # it: the job's new worker writes the same key.)
                    for key in video_files(video_key(job.video_token)):
                        self.storage.delete(key)
                    self._drop_staged_inputs(job)
        finally:
            job_id_var.reset(context_token)
            self.current = None
            with contextlib.suppress(FileNotFoundError):
                work.unlink()

    def _count(self, job: JobRecord, status: str, seconds: float | None = None) -> None:
        engine = self.engines.engine_name(job.model)
        metrics.JOBS_FINISHED.labels(job.model, engine, status).inc()
        if seconds is not None:
            metrics.GENERATION.labels(job.model, engine).observe(seconds)

    def _finish_failed(self, job: JobRecord, context: JobContext, error: BaseException) -> None:
        """Record why the job stopped; ``KeyboardInterrupt`` and friends propagate."""
        reason = error.reason if isinstance(error, JobInterrupted) else context.reason
        if reason is Interruption.SHUTDOWN:
            self.store.release(job.id, self.worker_id)
            log.info("job handed back on shutdown", extra={"job_id": job.id})
        elif reason is Interruption.LEASE_LOST:
            log.warning("job lease lost; another worker owns it now", extra={"job_id": job.id})
        elif reason is Interruption.TIMEOUT:
            running = self.current
            if running is None:
                message = timeout_message(self.settings.job_timeout_seconds)
            else:
                message = timeout_message(running.limit_seconds, running.budget_source)
            self._fail(job, TIMEOUT_NAME, message)
        elif reason is Interruption.CANCELLED:
            self._fail(job, CANCELLED_NAME, CANCELLED_MESSAGE)
        elif isinstance(error, USER_FACING_ERRORS):
            self._fail(job, error.name, error.message)
        elif is_disk_full(error):
            throttle.log(
                log, logging.ERROR, "disk full", f"job failed: {error}", extra={"job_id": job.id}
            )
            self._fail(job, disk_full().name, disk_full().message)
        elif isinstance(error, Exception):
            log.exception("job crashed", extra={"job_id": job.id}, exc_info=error)
            self._fail(
                job,
                EngineError.name,
                "an internal error stopped the generation; try again, and if it repeats, "
                f"give the operator this id: {job.id}",
            )
        else:
            self.store.release(job.id, self.worker_id)
            raise error

    def _fail(self, job: JobRecord, name: str, message: str) -> None:
        if self.store.fail(job.id, self.worker_id, name=name, message=message):
            log.info("job failed", extra={"job_id": job.id, "error": name})
            self._count(job, "error")
            metrics.ENGINE_FAILURES.labels(self.engines.engine_name(job.model), name).inc()
            self._drop_staged_inputs(job)

    def _generate(
        self, job: JobRecord, context: JobContext, work: Path
    ) -> tuple[int, dict[str, Any], int | None]:
        """Make and store the video: its size, the facts to record and upstream credits."""
        params = MODELS[job.model].params_type.model_validate(job.params)
        context.report(0.0, "loading inputs")
        inputs = load_inputs(
            params, self.storage, self.policy, self.settings, self.storage.temp_dir()
        )
        try:
            return self._run_engine(job, context, work, params, inputs)
        finally:
            if inputs.video is not None:
                inputs.video.path.unlink(missing_ok=True)

    def _run_engine(
        self,
        job: JobRecord,
        context: JobContext,
        work: Path,
        params: GenerationParams,
        inputs: Inputs,
    ) -> tuple[int, dict[str, Any], int | None]:
        spec = MODELS[job.model]
        context.raise_if_cancelled()
        aspect = params.aspect
        if aspect == "auto":
            if inputs.image is not None:
                aspect = aspect_for(inputs.image)
            elif inputs.video is not None:
                aspect = aspect_of(inputs.video.width, inputs.video.height)
            else:
                aspect = "16:9"
        width, height = spec.frame_size(params, aspect)
        engine = self.engines.for_model(job.model)
        prompt = params.prompt
        enhance = bool(params.value("enhance_prompt", False))
        if enhance and not engine.capabilities(job.model).enhances_prompt:
            context.report(PROGRESS_INPUTS / 2, "enhancing prompt")
            prompt = self.enhancer.enhance(params.prompt, image_input=inputs.image is not None)
        request = GenerationRequest(
            model=job.model,
            prompt=prompt,
            original_prompt=params.prompt if prompt != params.prompt else None,
            negative_prompt=params.value("negative_prompt"),
            duration_seconds=params.duration,
            width=width,
            height=height,
            seed=job.seed,
            enhance_prompt=enhance,
            generate_audio=params.wants_audio,
            aspect_ratio=aspect,
            resolution=params.resolution_name,
            job_id=job.id,
            engine_state=dict(job.info.get("engine_state") or {}),
            params=params.model_dump(mode="json"),
        )
        self.engines.check(engine, request, inputs)
        budget = self._budget(engine, request)
        clip = engine.generate(request, inputs, context.scaled(PROGRESS_INPUTS, PROGRESS_STORING))
        posters: Posters | None = None
        if clip.file is not None:
            source = clip.file
        else:
            # Frames are rendered as the encoder pulls them, so the engine's progress
            # already covers encoding; the posters' frames are kept on the way.
            posters = Posters(clip.frame_count)
            frames = posters.tap(clip.frames or ())
            clip.frames = _stop_when_cancelled(frames, context)
            encode_mp4(
                clip,
                work,
                preset=self.settings.encoder_preset,
                threads=self.settings.encoder_threads,
            )
            source = work
        context.raise_if_cancelled()
        context.report(PROGRESS_STORING, "storing")
        key = video_key(job.video_token)
        try:
            has_posters, size = self._store(job, context, key, source, clip.frame_count, posters)
        finally:
            source.unlink(missing_ok=True)  # a backend that copied leaves the source behind
        info: dict[str, Any] = {
            "width": clip.width,
            "height": clip.height,
            "duration": _duration(clip),
            "has_audio": clip.audio is not None,
            "engine": engine.name,
            "prompt_used": prompt,
            "posters": has_posters,
            **budget,
            **clip.facts,
        }
        return size, info, clip.credits_used

    def _budget(self, engine: Engine, request: GenerationRequest) -> dict[str, Any]:
        """Set the attempt's deadline from the engine's budget, if it has one; the facts
        that say which budget applied (logged, and kept with the job)."""
        running = self.current
        seconds = time_budget(engine, request)
        if running is not None and seconds is not None:
            running.set_budget(seconds, engine.name)
        limit = running.limit_seconds if running else self.settings.job_timeout_seconds
        source = running.budget_source if running else "global"
        log.info(
            "job time budget",
            extra={"job_id": request.job_id, "seconds": round(limit, 1), "budget": source},
        )
        return {"time_budget_seconds": round(limit, 1), "time_budget": source}

    def _store(
        self,
        job: JobRecord,
        context: JobContext,
        key: str,
        source: Path,
        frame_count: int,
        posters: Posters | None,
    ) -> tuple[bool, int]:
        """Store the posters and the video: whether there are posters, and the size.

        Storage that is unavailable (S3 down or hung, a full disk) is waited out like
        other transient faults: the finished clip is kept and stored when storage comes
        back, for up to ``REELFORGE_STORAGE_OUTAGE_SECONDS``. If it never does, whatever
        of the job was stored is removed (nothing is left behind by a failed job)."""
        outage = StorageOutage(self.settings.storage_outage_seconds)
        while True:
            try:
                has_posters = self._store_posters(job, key, source, frame_count, posters)
                return has_posters, self.storage.put_file(key, source, "video/mp4")
            except BaseException as error:
                transient = isinstance(error, ServiceUnavailable) or is_disk_full(error)
                try:
                    if transient and outage.wait(context, error):
                        continue
                except BaseException:  # cancelled, timed out or shut down while waiting
                    self._remove_stored(job, key)
                    raise
                self._remove_stored(job, key)
                raise

    def _remove_stored(self, job: JobRecord, key: str) -> None:
        """Best effort: storage that is still down leaves the objects to the orphan sweep."""
        for name in video_files(key):
            try:
                self.storage.delete(name)
            except Exception:
                log.warning("could not delete a failed job's file", extra={"job_id": job.id})

    def _store_posters(
        self, job: JobRecord, key: str, video: Path, frame_count: int, posters: Posters | None
    ) -> bool:
        """Store the thumbnail and sprite sheet beside the video (from the frames kept
        while encoding, else decoded from the file); a failure costs only the posters
        (logged), never the video."""
        thumbnail = video.with_name(f"{video.stem}.thumbnail.jpg")
        sprites = video.with_name(f"{video.stem}.spritesheet.jpg")
        try:
            if posters is not None and posters.complete:
                posters.write(thumbnail, sprites)
            else:
                make_posters(video, frame_count, thumbnail, sprites)
            self.storage.put_file(beside_video(key, THUMBNAIL_FILE_NAME), thumbnail, "image/jpeg")
            self.storage.put_file(beside_video(key, SPRITESHEET_FILE_NAME), sprites, "image/jpeg")
            return True
        except Exception as error:
            if is_disk_full(error) or isinstance(error, ServiceUnavailable):
                raise  # storage is unavailable: waited out by ``_store``
            log.warning("could not make the video's posters", extra={"job_id": job.id})
            return False
        finally:
            thumbnail.unlink(missing_ok=True)
            sprites.unlink(missing_ok=True)

    def _drop_staged_inputs(self, job: JobRecord) -> None:
        for key in staged_keys(job.params):
            try:
                self.storage.delete(key)
            except Exception:
                log.warning("could not delete a staged input", extra={"job_id": job.id})


def _duration(clip: Clip) -> float | int:
    """The stored video's length in seconds, so ``video.duration`` and its frame count
    always agree: the requested ``duration`` as a rule, more for an extension (which
    holds its input too), whatever an upstream really delivered."""
    seconds = clip.frame_count / clip.fps
    return int(seconds) if seconds.is_integer() else round(seconds, 3)


def _stop_when_cancelled(frames: Iterable[np.ndarray], context: JobContext) -> Iterator[np.ndarray]:
    """The engine's frames, checking for cancellation before each one, so every engine
    that renders frames stops within a frame of being cancelled."""
    iterator = iter(frames)
    try:
        for frame in iterator:
            context.raise_if_cancelled()
            yield frame
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


STORAGE_RETRY_FIRST_SECONDS = 0.5
STORAGE_RETRY_MAX_SECONDS = 10.0


class StorageOutage:
    """Back-off while storage is unavailable, for at most ``seconds`` in all."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._since: float | None = None
        self._delay = STORAGE_RETRY_FIRST_SECONDS

    def wait(self, context: JobContext, error: BaseException) -> bool:
        """Sleep before the next try and return ``True``, or ``False`` once the outage
        has lasted ``seconds`` (the job then fails). Wakes at once on cancellation."""
        now = time.monotonic()
        if self._since is None:
            self._since = now
        left = self.seconds - (now - self._since)
        if left <= 0:
            return False
        throttle.log(
            log,
            logging.WARNING,
            "storage unavailable",
            f"storage unavailable ({type(error).__name__}); the job waits for it",
        )
        context.report(PROGRESS_STORING, "waiting for storage")
        context.sleep(min(self._delay, left))
        self._delay = min(self._delay * 2, STORAGE_RETRY_MAX_SECONDS)
        return True
