"""The generation use cases behind the API: submit and look up.

Kept out of the routes so the HTTP layer only translates. Submitting validates the body
against the published schema, checks image inputs as far as possible without fetching
(inline images are decoded now, so a broken one is a 400 rather than a failed job) and
stages inline images in storage, so the job row stays small and never holds image data.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import uuid
from dataclasses import dataclass

from reelforge.catalog import validate_request
from reelforge.catalog.fields import MAX_SEED
from reelforge.errors import InvalidRequest, NotFound
from reelforge.jobs import JobRecord, JobStore, NewJob, Principal
from reelforge.media.images import check_image_ref
from reelforge.media.netguard import FetchPolicy
from reelforge.settings import Settings
from reelforge.storage import Storage

log = logging.getLogger(__name__)

STAGED_PREFIX = "reelforge-staged:"
"""Marks an image reference that points at an input staged in storage."""

VIDEO_FILE_NAME = "output.mp4"


IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,200}$")
"""Idempotency keys: 1 to 200 visible ASCII characters (UUIDs fit well)."""


@dataclass(frozen=True)
class Submitted:
    job: JobRecord
    replayed: bool
    """True when an ``Idempotency-Key`` matched an earlier request: nothing new was made."""


def request_hash(body: object) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def staged_key(reference: str) -> str | None:
    return reference.removeprefix(STAGED_PREFIX) if reference.startswith(STAGED_PREFIX) else None


def video_key(job: JobRecord) -> str:
    return f"videos/{job.video_token}/{VIDEO_FILE_NAME}"


class Generations:
    def __init__(
        self, settings: Settings, store: JobStore, storage: Storage, policy: FetchPolicy
    ) -> None:
        self._settings = settings
        self._store = store
        self._storage = storage
        self._policy = policy

    def submit(
        self, body: object, principal: Principal, *, idempotency_key: str | None = None
    ) -> Submitted:
        """Validate and queue a generation; a repeated ``idempotency_key`` replays the first."""
        digest = request_hash(body)
        if idempotency_key is not None:
            if not IDEMPOTENCY_KEY_PATTERN.match(idempotency_key):
                raise InvalidRequest(
                    "Idempotency-Key must be 1 to 200 visible ASCII characters", "Idempotency-Key"
                )
            earlier = self._store.find_by_idempotency_key(principal.owner, idempotency_key)
            if earlier is not None:
                return Submitted(self._replay(earlier, digest), replayed=True)
        spec, params = validate_request(body)
        job_uuid = uuid.uuid4()
        stored = params.model_dump(mode="json")
        staged: list[str] = []
        for field, reference in params.image_refs().items():
            image = check_image_ref(
                reference,
                self._policy,
                field=field,
                max_pixels=self._settings.max_image_pixels,
                min_side=self._settings.min_image_side,
            )
            if image.kind == "data":
                key = f"inputs/{job_uuid}/{field}"
                self._storage.put_bytes(key, image.data, image.mime or "application/octet-stream")
                staged.append(key)
                stored[field] = STAGED_PREFIX + key
        seed = params.seed if params.seed is not None else secrets.randbelow(MAX_SEED + 1)
        new_id = f"{job_uuid}:{spec.name}"
        try:
            job = self._store.create(
                NewJob(
                    id=new_id,
                    model=spec.name,
                    owner=principal.owner,
                    params=stored,
                    seed=seed,
                    credits=spec.credits(params),
                    video_token=secrets.token_urlsafe(24),
                    idempotency_key=idempotency_key,
                    request_hash=digest,
                )
            )
        except Exception:
            self._drop(staged)
            raise
        if job.id != new_id:  # a concurrent request with the same key won the race
            self._drop(staged)
            return Submitted(self._replay(job, digest), replayed=True)
        log.info("job submitted", extra={"job_id": job.id, "model": spec.name})
        return Submitted(job, replayed=False)

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

    def get(self, job_id: str, principal: Principal) -> JobRecord:
        job = self._store.get(job_id)
        # Another key's job is indistinguishable from a missing one.
        if job is None or job.owner != principal.owner:
            raise NotFound(f"Generation {job_id} not found")
        return job
