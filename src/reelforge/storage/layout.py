"""Where things live in storage: the key names both the API and the worker use.

* ``videos/<token>/output.mp4``: a finished video, with ``thumbnail.jpg`` and
  ``spritesheet.jpg`` beside it. The token is random and unguessable; only this area is
  ever served over HTTP.
* ``inputs/<job uuid>/<field>``: an inline input staged at submit time, so job rows never
  hold image data. Job parameters refer to it as ``reelforge-staged:<key>``. It is
  deleted when its job fails or is cancelled; a completed job keeps it as long as its
  video (a remix starts from the same inputs), and both go together.
"""

from __future__ import annotations

STAGED_PREFIX = "reelforge-staged:"
"""Marks an input reference that points at an input staged in storage."""

VIDEO_FILE_NAME = "output.mp4"
VIDEOS_AREA = "videos/"


THUMBNAIL_FILE_NAME = "thumbnail.jpg"
SPRITESHEET_FILE_NAME = "spritesheet.jpg"


def video_key(video_token: str) -> str:
    return f"{VIDEOS_AREA}{video_token}/{VIDEO_FILE_NAME}"


def beside_video(video_key: str, file_name: str) -> str:
    """The key of ``file_name`` (a poster) in the folder of the video at ``video_key``."""
    return f"{video_key.rsplit('/', 1)[0]}/{file_name}"


def video_files(video_key: str) -> list[str]:
    """Every file kept for one video: the MP4 and its posters (to delete together)."""
    return [
        video_key,
        beside_video(video_key, THUMBNAIL_FILE_NAME),
        beside_video(video_key, SPRITESHEET_FILE_NAME),
    ]


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
