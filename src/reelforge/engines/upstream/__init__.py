"""What the upstream engines (``aimlapi``, ``google``) share.

Both hand a generation to a remote service, wait for it while keeping the worker informed,
and bring back an MP4 that nobody here encoded. ``UpstreamEngine`` (``engine``) does all of
that once; an engine implements only how to talk to its service. The pieces:

* ``engine``: ``UpstreamEngine`` and its hooks' vocabulary (``Pending``, ``Done``,
  ``Transient``), resume-or-create, the follow loop, retries through ``tenacity`` with the
  shared rules of ``reelforge.retrying``;
* ``progress``: the job's progress bar while waiting (``Progress``) and the poll schedule;
* ``images``: inputs leave as JPEG bytes reelforge re-encoded, never as the user's URL;
* ``video``: the finished video in a temporary file, fetched SSRF-safely, then probed.
"""

from reelforge.engines.upstream.engine import (
    AUTH_REJECTED_MESSAGE,
    MAX_TRANSIENT_FAILURES,
    Done,
    Pending,
    Transient,
    UpstreamEngine,
    UpstreamOptions,
    auth_rejected,
    maybe_started,
    service_root,
)
from reelforge.engines.upstream.images import encode_image, image_data_uri
from reelforge.engines.upstream.progress import (
    PROGRESS_DOWNLOADED,
    PROGRESS_GENERATED,
    PROGRESS_QUEUED,
    PROGRESS_SUBMITTING,
    PROGRESS_TICK_SECONDS,
    PollSchedule,
    Progress,
    generating_progress,
)
from reelforge.engines.upstream.video import (
    VideoFiles,
    download_video,
    finished_clip,
    write_video,
)

__all__ = [
    "AUTH_REJECTED_MESSAGE",
    "MAX_TRANSIENT_FAILURES",
    "PROGRESS_DOWNLOADED",
    "PROGRESS_GENERATED",
    "PROGRESS_QUEUED",
    "PROGRESS_SUBMITTING",
    "PROGRESS_TICK_SECONDS",
    "Done",
    "Pending",
    "PollSchedule",
    "Progress",
    "Transient",
    "UpstreamEngine",
    "UpstreamOptions",
    "VideoFiles",
    "auth_rejected",
    "download_video",
    "encode_image",
    "finished_clip",
    "generating_progress",
    "image_data_uri",
    "maybe_started",
    "service_root",
    "write_video",
]
