"""The generation use cases behind the API: submit, look up, list, wait for a change,
follow live, cancel and delete.

Kept out of the routes so the HTTP layer only translates. Submitting validates the body
against the published schema, checks image inputs as far as possible without fetching or
decoding (inline images get header-only checks, so a broken or hostile one is a 400 and
costs the API process almost nothing; the worker decodes) and stages inline images in
storage, so the job row stays small and never holds image data.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

from reelforge.catalog import MODELS, GenerationParams, price_table, validate_request
from reelforge.catalog.fields import MAX_SEED
from reelforge.catalog.validation import ignored_fields
from reelforge.engines.routing import check_provider
from reelforge.errors import Conflict, Gone, InvalidRequest, NotFound
from reelforge.jobs import JobRecord, JobStatus, JobStore, NewJob, Principal
from reelforge.jobs.store import Admission, Page
from reelforge.live import FinishedJobs, JobWatcher
from reelforge.media.images import check_image_ref
from reelforge.media.netguard import FetchPolicy, check_url
from reelforge.media.videos import check_video_ref
from reelforge.settings import Settings
from reelforge.storage import Storage
from reelforge.storage.layout import (
    staged_input_key,
    staged_key,
    staged_keys,
    staged_reference,
    video_files,
    video_key,
)

log = logging.getLogger(__name__)

MAX_WAIT_SECONDS = 30.0
"""Longest long-poll a client may ask for."""
MAX_LIST_LIMIT = 100
MAX_WEBHOOK_URL_CHARS = 2048
WEBHOOK_FIELD = "webhook_url"
"""A reelforge extension of the create body, never passed on to the model."""

IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,200}$")
"""Idempotency keys: 1 to 200 visible ASCII characters (UUIDs fit well)."""


@dataclass(frozen=True)
class Submitted:
    job: JobRecord
    replayed: bool
    """True when an ``Idempotency-Key`` matched an earlier request: nothing new was made."""
    warnings: tuple[str, ...] = ()
    """What was accepted but ignored (unknown fields, with the closest known one)."""


def request_hash(body: object) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # Any field may hold a lone surrogate (JSON allows "\udcab"); hash it, refuse it later.
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


class Generations:
    def __init__(
        self, settings: Settings, store: JobStore, storage: Storage, policy: FetchPolicy
    ) -> None:
        self._settings = settings
        self._store = store
        self._storage = storage
        self._policy = policy
        self.watcher = JobWatcher(store)
        self.finished = FinishedJobs(store)
        self._prices = price_table(settings.prices)

    def submit(
        self,
        body: object,
        principal: Principal,
        *,
        idempotency_key: str | None = None,
        info: dict[str, Any] | None = None,
    ) -> Submitted:
        """Validate and queue a generation; a repeated ``idempotency_key`` replays the first.
        ``info`` is kept with the job (e.g. how the OpenAI front door named the model)."""
        digest = request_hash(body)
        earlier = self._earlier(idempotency_key, digest, principal)
        if earlier is not None:
            return Submitted(earlier, replayed=True)
        webhook_url = self._webhook_url(body, principal)
        if isinstance(body, dict) and WEBHOOK_FIELD in body:
            body = {key: value for key, value in body.items() if key != WEBHOOK_FIELD}
        spec, params = validate_request(body)
        check_provider(self._settings, spec.name, params.value("provider"))
        assert isinstance(body, dict)  # validate_request refuses anything else
        warnings = tuple(ignored_fields(body, spec, MODELS))
        job_uuid = uuid.uuid4()
        stored = params.model_dump(mode="json")
        staged: list[str] = []
        try:
            self._stage_inputs(params, job_uuid, stored, staged)
        except BaseException:
            self._drop(staged)
            raise
        seed = params.value("seed")
        if seed is None:
            seed = secrets.randbelow(MAX_SEED + 1)
        new_job = NewJob(
            id=f"{job_uuid}:{spec.name}",
            model=spec.name,
            owner=principal.owner,
            params=stored,
            seed=seed,
            credits=spec.credits(params, self._prices[spec.name]),
            video_token=secrets.token_urlsafe(24),
            info=dict(info or {}),
            idempotency_key=idempotency_key,
            request_hash=digest,
            webhook_url=webhook_url,
        )
        return dataclasses.replace(self._create(new_job, principal, staged), warnings=warnings)

    def _create(self, new_job: NewJob, principal: Principal, staged: list[str]) -> Submitted:
        """Queue ``new_job`` within the key's limits; its ``staged`` inputs are dropped if
        it is refused (or an identical request won the race)."""
        try:
            job = self._store.create(
                new_job,
                Admission(
                    max_queued=principal.limits.max_queued,
                    max_running=principal.limits.max_running,
                    service_max_queued=self._settings.max_queued,
                ),
            )
        except Exception:
            self._drop(staged)
            raise
        if job.id != new_job.id:  # a concurrent request with the same key won the race
            self._drop(staged)
            return Submitted(self._replay(job, new_job.request_hash or ""), replayed=True)
        log.info("job submitted", extra={"job_id": job.id, "model": job.model})
        return Submitted(job, replayed=False)

    def _earlier(
        self, idempotency_key: str | None, digest: str, principal: Principal
    ) -> JobRecord | None:
        """The job an earlier request with ``idempotency_key`` made (per key, for every
        create route of both front doors), if any; a different request under the same
        key is a 400."""
        if idempotency_key is None:
            return None
        if not IDEMPOTENCY_KEY_PATTERN.match(idempotency_key):
            raise InvalidRequest(
                "Idempotency-Key must be 1 to 200 visible ASCII characters", "Idempotency-Key"
            )
        earlier = self._store.find_by_idempotency_key(principal.owner, idempotency_key)
        return None if earlier is None else self._replay(earlier, digest)

    def remix(
        self,
        source: JobRecord,
        prompt: object,
        principal: Principal,
        info: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Submitted:
        """A new generation from ``source``'s model, parameters, inputs and seed with a
        new ``prompt``. Its inline inputs are copied, so either can be deleted alone."""
        digest = request_hash({"remix_of": source.id, "prompt": prompt})
        earlier = self._earlier(idempotency_key, digest, principal)
        if earlier is not None:
            return Submitted(earlier, replayed=True)
        if source.status is not JobStatus.COMPLETED:
            raise Conflict(
                f"only a completed video can be remixed; this one is {source.status.value}"
            )
        spec, params = validate_request({**source.params, "model": source.model, "prompt": prompt})
        job_uuid = uuid.uuid4()
        stored = params.model_dump(mode="json")
        staged: list[str] = []
        try:
            for field, value in stored.items():
                references = value if isinstance(value, list) else [value]
                copies = []
                for index, reference in enumerate(references):
                    key = staged_key(reference) if isinstance(reference, str) else None
                    if key is None:
                        copies.append(reference)
                        continue
                    slot = f"{field}.{index}" if isinstance(value, list) else field
                    copy = staged_input_key(str(job_uuid), slot)
                    try:
                        data = self._storage.get_bytes(key)
                    except NotFound:
                        raise Gone(
                            "the inputs of this video are no longer kept; generate it again"
                        ) from None
                    self._storage.put_bytes(copy, data, "application/octet-stream")
                    staged.append(copy)
                    copies.append(staged_reference(copy))
                stored[field] = copies if isinstance(value, list) else copies[0]
        except BaseException:
            self._drop(staged)
            raise
        new_job = NewJob(
            id=f"{job_uuid}:{spec.name}",
            model=spec.name,
            owner=principal.owner,
            params=stored,
            seed=source.seed,
            credits=spec.credits(params, self._prices[spec.name]),
            video_token=secrets.token_urlsafe(24),
            info={**(info or {}), "remixed_from": source.id},
            idempotency_key=idempotency_key,
            request_hash=digest,
            webhook_url=source.webhook_url,
        )
        return self._create(new_job, principal, staged)

    def _stage_inputs(
        self, params: GenerationParams, job_uuid: uuid.UUID, stored: dict, staged: list[str]
    ) -> None:
        """Check every input as far as possible without fetching or decoding it, and
        stage inline ones in storage (``staged`` collects their keys for clean-up)."""

        def image(name: str, slot: str, reference: str) -> str:
            checked = check_image_ref(
                reference,
                self._policy,
                field=name,
                max_pixels=self._settings.max_image_pixels,
                min_side=self._settings.min_image_side,
            )
            if checked.kind != "data":
                return reference
            key = staged_input_key(str(job_uuid), slot)
            mime = checked.mime or "application/octet-stream"
            self._storage.put_bytes(key, checked.data or b"", mime)
            staged.append(key)
            return staged_reference(key)

        for field, reference in params.image_refs().items():
            stored[field] = image(field, field, reference)
        for field, references in params.image_list_refs().items():
            stored[field] = [
                image(f"{field}[{index}]", f"{field}.{index}", reference)
                for index, reference in enumerate(references)
            ]
        for field, reference in params.video_refs().items():
            video = check_video_ref(
                reference,
                self._policy,
                field=field,
                max_bytes=self._settings.max_input_video_bytes,
            )
            if video.kind == "data":
                key = staged_input_key(str(job_uuid), field)
                self._storage.put_bytes(key, video.data or b"", video.mime or "video/mp4")
                staged.append(key)
                stored[field] = staged_reference(key)

    def _replay(self, earlier: JobRecord, digest: str) -> JobRecord:
        if earlier.request_hash != digest:
            raise InvalidRequest(
                "Idempotency-Key was already used for a different request; "
                "send a new key with a new request",
                "Idempotency-Key",
            )
        return earlier

    def _drop(self, keys: list[str]) -> None:
        for key in keys:
            self._storage.delete(key)

    async def read(self, job_id: str, principal: Principal) -> JobRecord:
        """The caller's job; a finished one comes from memory, without a thread
        (``live.FinishedJobs``)."""
        job = await self.finished.get(job_id)
        # Another key's job is indistinguishable from a missing one.
        if job is None or job.owner != principal.owner:
            raise NotFound(f"Generation {job_id} not found")
        return job

    def get_one_of(self, job_ids: list[str], principal: Principal, shown: str) -> JobRecord:
        """The caller's job among ``job_ids`` (ids another front door derives), in one
        query; ``NotFound`` naming ``shown``."""
        for job in self._store.get_many(job_ids).values():
            if job.owner == principal.owner:
                return job
        raise NotFound(f"{shown} not found")

    def _webhook_url(self, body: object, principal: Principal) -> str | None:
        """The create's ``webhook_url`` (vetted like an image URL), else the key's."""
        given = body.get(WEBHOOK_FIELD) if isinstance(body, dict) else None
        if given is None:
            return principal.webhook_url
        if not isinstance(given, str) or not given.strip():
            raise InvalidRequest(
                "Body validation error: webhook_url: Expected an http(s) URL", WEBHOOK_FIELD
            )
        url = given.strip()
        _check_webhook_shape(url)
        if not principal.can_sign_webhooks:
            raise InvalidRequest(
                "Body validation error: webhook_url: webhooks need a key made with "
                "`reelforge keys create` (fixed keys from REELFORGE_API_KEYS have no "
                "signing secret)",
                WEBHOOK_FIELD,
            )
        check_url(url, self._policy, field=WEBHOOK_FIELD)
        return url

    def list(
        self,
        principal: Principal,
        *,
        limit: int = 20,
        after: str | None = None,
        statuses: Iterable[str] = (),
        models: Iterable[str] = (),
        oldest_first: bool = False,
    ) -> Page:
        """The caller's generations, newest first (``after``: the previous page's cursor)."""
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidRequest(
                f"Query validation error: limit: Number must be between 1 and "
                f"{MAX_LIST_LIMIT}, received {limit}",
                "limit",
            )
        wanted_statuses = []
        for status in statuses:
            try:
                wanted_statuses.append(JobStatus(status))
            except ValueError:
                choices = " | ".join(f"'{s.value}'" for s in JobStatus)
                raise InvalidRequest(
                    f"Query validation error: status: Invalid enum value. Expected {choices}, "
                    f"received '{status[:60]}'",
                    "status",
                ) from None
        wanted_models = list(models)
        for model in wanted_models:
            if model not in MODELS:
                raise InvalidRequest(
                    f"Query validation error: model: unknown model '{model[:100]}'", "model"
                )
        return self._store.list(
            principal.owner,
            limit=limit,
            after=after,
            statuses=wanted_statuses,
            models=wanted_models,
            oldest_first=oldest_first,
        )

    def cancel(self, job_id: str, principal: Principal) -> JobRecord:
        """Cancel: a queued job never starts, a running one is stopped by its worker.
        ``Conflict`` (409) for a finished one."""
        job = self._store.cancel(job_id, principal.owner)
        log.info("job cancel requested", extra={"job_id": job_id, "status": job.status.value})
        if job.status.is_final:
            self._drop(staged_keys(job.params))
        return job

    def delete(self, job_id: str, principal: Principal) -> None:
        """Remove the job, its video and its staged inputs (a running job is cancelled:
        its worker loses it at its next heartbeat and writes nothing more)."""
        job = self._store.delete(job_id, principal.owner)
        self._drop([*video_files(video_key(job.video_token)), *staged_keys(job.params)])
        log.info("job deleted", extra={"job_id": job_id})

    async def wait_for_change(self, job: JobRecord, seconds: float) -> JobRecord:
        """``job`` as it is once its status differs from now, or after ``seconds``.

        Holds no thread and costs no database read while waiting (``live.JobWatcher``).
        """
        if job.status.is_final or seconds <= 0:
            return job
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(seconds, MAX_WAIT_SECONDS)
        async with self.watcher.subscribe(job) as changes:
            current = job
            while (remaining := deadline - loop.time()) > 0:
                try:
                    changed = await changes.next(remaining)
                except LookupError:
                    raise NotFound(f"Generation {job.id} not found") from None
                if changed is None:
                    break
                current = changed
                if current.status != job.status:
                    break
            return current

    async def follow(self, job: JobRecord, seen_revision: int | None) -> AsyncIterator[JobRecord]:
        """The job now (unless the client saw this revision already), then on every change
        of its status, stage or progress, until it is final. Ends quietly if deleted."""
        last: tuple[Any, ...] | None = None
        if seen_revision is None or job.revision > seen_revision:
            last = _visible(job)
            yield job
        if job.status.is_final:
            return
        async with self.watcher.subscribe(job) as changes:
            while True:
                try:
                    current = await changes.next(MAX_WAIT_SECONDS)
                except LookupError:
                    return
                if current is None:
                    continue
                if _visible(current) != last:
                    last = _visible(current)
                    yield current
                if current.status.is_final:
                    return

    def check_video_expired(self, key: str) -> None:
        """Raise ``Gone`` (410) if the video stored under ``key`` was deleted by
        retention; return quietly otherwise (it never existed, or was deleted by hand)."""
        parts = key.split("/")
        if len(parts) != 3:
            return
        job = self._store.find_by_video_token(parts[1])
        if job is not None and job.video_expired_at is not None:
            raise Gone(
                f"this video expired {self._settings.retention_hours:g} hours after it was "
                "made and was deleted (the service keeps videos that long); generate it again"
            )

    def queue_counts(self) -> dict[str, int]:
        """Jobs by status, for ``/health``."""
        return self._store.count_by_status()


def _check_webhook_shape(url: str) -> None:
    if len(url) > MAX_WEBHOOK_URL_CHARS or not url.lower().startswith(("http://", "https://")):
        raise InvalidRequest(
            f"Body validation error: webhook_url: Expected an http(s) URL of at most "
            f"{MAX_WEBHOOK_URL_CHARS} characters",
            WEBHOOK_FIELD,
        )


def vet_webhook_url(url: str, policy: FetchPolicy) -> str:
    """A key's default webhook, checked when it is set (``keys update``) as a create's
    ``webhook_url`` is: an http(s) URL to an address the fetch policy allows. Refused
    here, it is never retried for days at delivery."""
    url = url.strip()
    _check_webhook_shape(url)
    check_url(url, policy, field=WEBHOOK_FIELD)
    return url


def _visible(job: JobRecord) -> tuple[Any, ...]:
    """What a live stream reports a change of."""
    return job.status, job.stage, round(job.progress, 3)
