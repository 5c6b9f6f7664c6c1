"""Turning a job's input references into decoded, vetted inputs for its engine.

References are what the API stored: an http(s) URL (fetched now, through the SSRF
guard) or a staged input (``reelforge-staged:<key>``, read from storage). Decoding
happens here, in the worker, never in the API process. Which ``Inputs`` field a
published field fills is declared in the catalogue (``FieldSpec.role``).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from reelforge.engines import Inputs, VideoInput
from reelforge.errors import InvalidRequest, InvalidVideo
from reelforge.media.fetch import fetch_to_file
from reelforge.media.images import decode_image, load_image
from reelforge.media.videos import parse_video_ref, probe_video
from reelforge.storage.layout import staged_key

if TYPE_CHECKING:
    from PIL.Image import Image

    from reelforge.catalog import GenerationParams
    from reelforge.media.netguard import FetchPolicy
    from reelforge.settings import Settings
    from reelforge.storage import Storage


def load_inputs(
    params: GenerationParams,
    storage: Storage,
    policy: FetchPolicy,
    settings: Settings,
    work_dir: Path | None = None,
) -> Inputs:
    """Every input of ``params``; an input video is written under ``work_dir`` (the
    caller deletes ``inputs.video.path`` when the job is done)."""
    roles = type(params).input_roles
    images: dict[str, Image] = {}
    for field, reference in params.image_refs().items():
        images[roles[field]] = load_one_image(field, reference, storage, policy, settings)
    references = tuple(
        load_one_image(f"{field}[{index}]", reference, storage, policy, settings)
        for field, listed in params.image_list_refs().items()
        for index, reference in enumerate(listed)
    )
    video = None
    for field, reference in params.video_refs().items():
        video = load_video(field, reference, storage, policy, settings, work_dir or Path("."))
    return Inputs(
        image=images.get("image"),
        last_frame=images.get("last_frame"),
        references=references,
        video=video,
    )


def load_one_image(
    field: str, reference: str, storage: Storage, policy: FetchPolicy, settings: Settings
) -> Image:
    limits = {
        "field": field,
        "max_pixels": settings.max_image_pixels,
        "min_side": settings.min_image_side,
    }
    key = staged_key(reference)
    if key is not None:
        return decode_image(storage.get_bytes(key), **limits)
    return load_image(reference, policy, **limits)


def load_video(
    field: str,
    reference: str,
    storage: Storage,
    policy: FetchPolicy,
    settings: Settings,
    work_dir: Path,
) -> VideoInput:
    """Fetch (or read from storage) and probe an input video; raises ``InputError``s."""
    path = work_dir / f"input-{uuid.uuid4().hex}.video"
    key = staged_key(reference)
    try:
        if key is not None:
            path.write_bytes(storage.get_bytes(key))
        else:
            try:
                ref = parse_video_ref(
                    reference, field=field, max_bytes=settings.max_input_video_bytes
                )
            except InvalidRequest as error:
                raise InvalidVideo(error.message) from None
            if ref.url is not None:
                fetch_to_file(
                    ref.url,
                    policy,
                    path,
                    max_bytes=settings.max_input_video_bytes,
                    field=field,
                    timeout_seconds=settings.input_video_timeout_seconds,
                )
            else:
                path.write_bytes(ref.data or b"")
        facts = probe_video(
            path,
            field=field,
            max_seconds=settings.max_input_video_seconds,
            max_pixels=settings.max_input_video_pixels,
        )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return VideoInput(
        path=path,
        width=facts.width,
        height=facts.height,
        fps=facts.fps,
        frame_count=facts.frame_count,
        duration_seconds=facts.duration_seconds,
    )
