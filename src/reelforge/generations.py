"""The generation use cases behind the API: submit and look up.

Kept out of the routes so the HTTP layer only translates. Submitting validates the body
against the published schema, checks image inputs as far as possible without fetching
(inline images are decoded now, so a broken one is a 400 rather than a failed job) and
stages inline images in storage, so the job row stays small and never holds image data.
"""

from __future__ import annotations

import logging
import secrets
import uuid

from reelforge.catalog import validate_request
from reelforge.catalog.fields import MAX_SEED
from reelforge.errors import NotFound
from reelforge.jobs import JobRecord, JobStore, NewJob, Principal
from reelforge.media.images import check_image_ref
from reelforge.media.netguard import FetchPolicy
from reelforge.settings import Settings
from reelforge.storage import Storage

log = logging.getLogger(__name__)

STAGED_PREFIX = "reelforge-staged:"
"""Marks an image reference that points at an input staged in storage."""

VIDEO_FILE_NAME = "output.mp4"


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

    def submit(self, body: object, principal: Principal) -> JobRecord:
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
        try:
            job = self._store.create(
                NewJob(
                    id=f"{job_uuid}:{spec.name}",
                    model=spec.name,
                    owner=principal.owner,
                    params=stored,
                    seed=seed,
                    credits=spec.credits(params),
                    video_token=secrets.token_urlsafe(24),
                )
            )
        except Exception:
            for key in staged:
                self._storage.delete(key)
            raise
        log.info("job submitted", extra={"job_id": job.id, "model": spec.name})
        return job

    def get(self, job_id: str, principal: Principal) -> JobRecord:
        job = self._store.get(job_id)
        # Another key's job is indistinguishable from a missing one.
        if job is None or job.owner != principal.owner:
            raise NotFound(f"Generation {job_id} not found")
        return job
