"""What a pipeline call starts from besides the prompt: frames it must keep, references.

Wan VACE (``WanVACEPipeline``) takes one conditioning video and a mask of the same length:
known frames (the first frame, the last frame, the end of a clip to continue) are given
and masked black; the frames to generate are grey and masked white. Reference images
(subjects or styles) go beside them. This one mechanism serves image-to-video, first-last
frame, video extension and segment continuation, so the engine only says which frames it
knows. The grey value and the masks are those of diffusers' VACE examples.

Image-to-video checkpoints (Wan I2V, TI2V, LTX) know one frame at most: the first, which
:func:`first_frame` picks from the same description.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from reelforge.engines.diffusers.families import Size
from reelforge.media.fit import fit_frame

if TYPE_CHECKING:
    from PIL.Image import Image

    from reelforge.engines.base import VideoInput

UNKNOWN_GREY = 128
"""Value of the frames VACE is to generate (the conditioning video's "empty")."""
MAX_REFERENCES = 3
"""Reference images passed on; Veo 3.1 takes up to three."""


@dataclass(frozen=True)
class Known:
    """Frames one pipeline call must keep, by position, and references to follow."""

    context: Sequence[np.ndarray] = ()
    """Frames at the start (the end of the clip being continued), native size."""
    first: Image | None = None
    last: Image | None = None
    references: Sequence[Image] = field(default_factory=tuple)

    @property
    def empty(self) -> bool:
        return not (self.context or self.first or self.last or self.references)


def first_frame(known: Known, size: Size) -> Image | None:
    """The one frame an image-to-video pipeline starts from, fitted to ``size``."""
    from PIL import Image as PILImage

    if known.context:
        return PILImage.fromarray(np.ascontiguousarray(known.context[-1]))
    return fit_frame(known.first, size) if known.first is not None else None


def vace_arguments(known: Known, size: Size, frames: int) -> Mapping[str, Any]:
    """``video``, ``mask`` and ``reference_images`` for a WanVACEPipeline call."""
    from PIL import Image as PILImage

    if known.empty:
        return {}
    grey = PILImage.new("RGB", size, (UNKNOWN_GREY,) * 3)
    keep = PILImage.new("L", size, 0)
    make = PILImage.new("L", size, 255)
    video = [grey] * frames
    mask = [make] * frames
    for index, frame in enumerate(known.context[:frames]):
        video[index] = PILImage.fromarray(np.ascontiguousarray(frame))
        mask[index] = keep
    if known.first is not None and not known.context:
        video[0], mask[0] = fit_frame(known.first, size), keep
    if known.last is not None:
        video[-1], mask[-1] = fit_frame(known.last, size), keep
    arguments: dict[str, Any] = {"video": video, "mask": mask}
    if known.references:
        arguments["reference_images"] = [
            image.convert("RGB") for image in known.references[:MAX_REFERENCES]
        ]
    return arguments


def last_frames(video: VideoInput, size: Size, fps: int, count: int) -> list[np.ndarray]:
    """The last ``count`` frames of ``video`` at ``fps``, fitted to ``size`` (decoded once,
    one frame held at a time besides those kept)."""
    from reelforge.media.videos import output_frame_count, video_frames

    total = output_frame_count(video.duration_seconds, fps)
    kept: collections.deque[np.ndarray] = collections.deque(maxlen=count)
    for frame in video_frames(video.path, size, total, fps):
        kept.append(frame)
    return list(kept)
