"""Where things live in storage: the key names both the API and the worker use.

* ``videos/<token>/output.mp4``: a finished video. The token is random and unguessable;
  only this area is ever served over HTTP.
* ``inputs/<job uuid>/<field>``: an inline input staged at submit time, so job rows never
  hold image data. Job parameters refer to it as ``reelforge-staged:<key>``; it is
  deleted when its job ends.
"""

from __future__ import annotations

STAGED_PREFIX = "reelforge-staged:"
"""Marks an input reference that points at an input staged in storage."""

VIDEO_FILE_NAME = "output.mp4"
VIDEOS_AREA = "videos/"


def video_key(video_token: str) -> str:
    return f"{VIDEOS_AREA}{video_token}/{VIDEO_FILE_NAME}"


def staged_input_key(job_uuid: str, field: str) -> str:
    return f"inputs/{job_uuid}/{field}"


def staged_reference(key: str) -> str:
    """The value stored in job parameters for an input staged under ``key``."""
    return STAGED_PREFIX + key


def staged_key(reference: str) -> str | None:
    """The storage key of a staged input reference, or ``None`` for anything else."""
    return reference.removeprefix(STAGED_PREFIX) if reference.startswith(STAGED_PREFIX) else None


def staged_keys(params: dict[str, object]) -> list[str]:
    """Storage keys of the inputs staged for a job (to delete when it ends)."""
    keys = []
    for value in params.values():
        for reference in value if isinstance(value, list) else [value]:
            if isinstance(reference, str) and (key := staged_key(reference)):
                keys.append(key)
    return keys
