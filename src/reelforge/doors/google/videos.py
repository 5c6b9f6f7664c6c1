"""The Google door's use cases: start an operation, read it, find a sample's file.

Ids: an operation is named after its first job (``.../operations/<uuid as 32 hex
digits>``); each sample's file id is its own job's uuid in hex (lowercase letters and
digits only: google-genai cuts a file name at the first ``-``). ``sampleCount`` > 1
makes that many jobs (each with its own seed and price); the first lists the others in
its ``info``, so reading an operation is one indexed query per sample.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any, Literal

from pydantic import ValidationError

from reelforge.catalog import MODELS
from reelforge.doors.google.protocol import INLINE_MARKERS, FetchRequest, PredictRequest
from reelforge.doors.google.translate import (
    catalogue_request,
    google_input_message,
    google_message,
    google_model_id,
)
from reelforge.errors import InputError, InvalidRequest, NotFound, PayloadTooLarge, ReelforgeError
from reelforge.generations import Generations
from reelforge.jobs import JobRecord, JobStatus, Principal
from reelforge.settings import Settings
from reelforge.storage import Storage

Form = Literal["vertex", "gemini"]
DOOR = "google"
"""``info["door"]`` of jobs made here."""
SAMPLES_INFO = "google_samples"
MAX_INLINE_VIDEO_BYTES = 64 * 2**20
"""Largest video answered inline (Base64) by ``fetchPredictOperation``; a larger one is
answered by its download URI instead."""
VERTEX_RESPONSE_TYPE = "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"
GEMINI_RESPONSE_TYPE = (
    "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"
)
RPC_CODES = {"Cancelled": 1, "Timeout": 4, "InvalidInput": 3, "InvalidImage": 3, "InvalidVideo": 3}
"""gRPC code of a failed operation by the job's error name (13, INTERNAL, otherwise)."""


def hex_id(job_id: str) -> str:
    return uuid.UUID(job_id.split(":", 1)[0]).hex


def job_ids(hex_value: str, what: str) -> list[str]:
    """The job ids a hex id may stand for (one per model); ``NotFound`` if malformed."""
    try:
        if len(hex_value) != 32:
            raise ValueError(hex_value)
        job_uuid = uuid.UUID(hex=hex_value)
    except ValueError:
        raise NotFound(f"{what} {hex_value[:80]} not found") from None
    return [f"{job_uuid}:{model}" for model in MODELS]


def parse(raw: bytes, max_text_bytes: int) -> dict[str, Any]:
    """A JSON object body; a large one must be large because of inline media."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise InvalidRequest("Invalid JSON payload received", None) from None
    if not isinstance(body, dict):
        raise InvalidRequest("Invalid JSON payload received: expected an object", None)
    if len(raw) > max_text_bytes and not any(marker in raw for marker in INLINE_MARKERS):
        raise PayloadTooLarge(f"Request body is larger than {max_text_bytes} bytes")
    return body


def validated(model: type[PredictRequest] | type[FetchRequest], body: dict) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        where = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]
        ).lstrip(".")
        if first["type"] == "extra_forbidden":
            message = f'Invalid JSON payload received. Unknown name "{where}"'
        else:
            message = f"{where or 'body'}: {first['msg']}"
        raise InvalidRequest(message, where or None) from None


class GoogleVideos:
    def __init__(self, settings: Settings, generations: Generations, storage: Storage) -> None:
        self.settings = settings
        self._generations = generations
        self._storage = storage

    def create(self, model: str, body: dict[str, Any], principal: Principal) -> tuple[str, str]:
        """Queue ``sampleCount`` jobs; the Google model id and the operation's id."""
        google_model = google_model_id(model)
        request = validated(PredictRequest, body)
        _, submit_body = catalogue_request(google_model, request)
        info = {"door": DOOR, "google_model": google_model}
        made: list[JobRecord] = []
        try:
            for _ in range(request.parameters.sample_count - 1):
                made.append(self._submit(submit_body, principal, info))
            extra = {SAMPLES_INFO: [job.id for job in made]} if made else {}
            lead = self._submit(submit_body, principal, {**info, **extra})
        except ReelforgeError:
            for job in made:  # all or nothing: release what the others held
                self._generations.delete(job.id, principal)
            raise
        return google_model, hex_id(lead.id)

    def _submit(self, body: dict, principal: Principal, info: dict[str, Any]) -> JobRecord:
        try:
            return self._generations.submit(body, principal, info=info).job
        except InvalidRequest as error:
            raise google_message(error) from None
        except InputError as error:
            raise google_input_message(error) from None

    def samples(self, operation: str, principal: Principal) -> list[JobRecord]:
        """The operation's jobs, first one first."""
        lead = self._generations.get_one_of(
            job_ids(operation, "Operation"), principal, f"Operation {operation[:80]}"
        )
        others = lead.info.get(SAMPLES_INFO) or []
        if lead.info.get("door") != DOOR:
            raise NotFound(f"Operation {operation[:80]} not found")
        found = [lead]
        for job_id in others:  # at most MAX_SAMPLES - 1; a deleted one is left out
            try:
                found.append(self._generations.get_one_of([job_id], principal, job_id))
            except NotFound:
                continue
        return found

    def file_key(self, file_id: str, principal: Principal) -> str:
        job = self._generations.get_one_of(
            job_ids(file_id, "File"), principal, f"File files/{file_id[:80]}"
        )
        if job.status is not JobStatus.COMPLETED or job.video_key is None:
            raise NotFound(f"File files/{file_id} has no video yet (it is {job.status.value})")
        return job.video_key

    def operation(
        self, name: str, operation: str, principal: Principal, form: Form, base_url: str
    ) -> dict[str, Any]:
        """The operation document ``name`` in Vertex AI's or the Gemini API's form."""
        jobs = self.samples(operation, principal)
        answer: dict[str, Any] = {"name": name}
        if not all(job.status.is_final for job in jobs):
            progress = sum(job.progress for job in jobs) / len(jobs)
            answer["metadata"] = {"progressPercent": int(progress * 100)}
            answer["done"] = False
            return answer
        answer["done"] = True
        completed = [job for job in jobs if job.status is JobStatus.COMPLETED]
        if not completed:
            failed = jobs[0]
            answer["error"] = {
                "code": RPC_CODES.get(failed.error_name or "", 13),
                "message": failed.error_message or "the video could not be made",
            }
            return answer
        filtered = len(jobs) - len(completed)
        if form == "vertex":
            answer["response"] = {
                "@type": VERTEX_RESPONSE_TYPE,
                "raiMediaFilteredCount": filtered,
                "videos": [self._inline(job, base_url) for job in completed],
            }
        else:
            answer["response"] = {
                "@type": GEMINI_RESPONSE_TYPE,
                "generateVideoResponse": {
                    "generatedSamples": [
                        {"video": {"uri": download_uri(base_url, job)}} for job in completed
                    ],
                    "raiMediaFilteredCount": filtered,
                },
            }
        return answer

    def _inline(self, job: JobRecord, base_url: str) -> dict[str, str]:
        key = job.video_key or ""
        size = self._storage.size(key)
        if size is None:
            raise NotFound("the video of this operation is no longer kept")
        if size > MAX_INLINE_VIDEO_BYTES:
            return {"gcsUri": download_uri(base_url, job), "mimeType": "video/mp4"}
        data = self._storage.get_bytes(key)
        return {"bytesBase64Encoded": base64.b64encode(data).decode(), "mimeType": "video/mp4"}


def download_uri(base_url: str, job: JobRecord) -> str:
    return f"{base_url.rstrip('/')}/v1beta/files/{hex_id(job.id)}:download?alt=media"
