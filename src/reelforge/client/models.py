"""What the API returns, as pydantic models that tolerate any server.

Published fields (``id``, ``status``, ``video``, ``error``, ``meta``) are typed; reelforge's
additions (timestamps, ``progress``, ``stage``, ``seed``, video size) are optional, so the
same models read the AI/ML API and reelforge. Unknown fields are kept (``extra="allow"``)
and ``status`` stays a plain string: a server may add statuses (the published examples
already wait on ``waiting`` and ``active``), and anything not final counts as pending.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

COMPLETED = "completed"
ERROR = "error"
FINAL_STATUSES = frozenset({COMPLETED, ERROR})
"""Statuses after which a generation never changes; every other status is pending."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Video(_Model):
    url: str
    content_type: str | None = None
    file_name: str | None = None
    file_size: int | None = None
    """Bytes; downloads are checked against it when the server states it."""
    width: int | None = None
    height: int | None = None
    duration: int | float | None = None
    """Seconds (kept as the server sent it: ``6`` stays ``6``, not ``6.0``)."""


class ErrorInfo(_Model):
    """Why a generation ended in ``error``: ``name`` is stable enough to branch on."""

    name: str
    message: str


class Usage(_Model):
    credits_used: int | float | None = None


class Meta(_Model):
    usage: Usage | None = None


class GenerationCreated(_Model):
    """The answer to a create: the id to poll."""

    id: str
    status: str
    warnings: list[str] | None = None
    """What the server accepted but ignored (reelforge: unknown fields, with the closest
    known one); the SDK also logs each as a warning."""


class Generation(_Model):
    """One state of a generation, as ``GET ?generation_id=`` reports it."""

    id: str
    status: str
    video: Video | None = None
    error: ErrorInfo | None = None
    meta: Meta | None = None
    model: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    progress: float | None = None
    """Percent done (0-100), reelforge only."""
    stage: str | None = None
    seed: int | None = None
    expires_at: datetime | None = None
    """When retention deletes (or deleted) the video, reelforge only."""
    video_expired: bool = False
    """True once the video was deleted by retention (``video`` is then None)."""

    @property
    def is_done(self) -> bool:
        """The status is final (``completed`` or ``error``): polling again changes nothing."""
        return self.status in FINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.status == COMPLETED

    @property
    def failed(self) -> bool:
        return self.status == ERROR

    @property
    def credits_used(self) -> int | float | None:
        return self.meta.usage.credits_used if self.meta and self.meta.usage else None


class GenerationPage(_Model):
    """One page of ``list`` (reelforge): the generations, newest first."""

    data: list[Generation]
    has_more: bool = False
    next_cursor: str | None = None
