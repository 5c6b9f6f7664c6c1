"""The built-in ``preview`` engine: purposeful-looking clips from the CPU, no weights.

It stands in for Veo wherever no GPU or upstream is configured (development, CI, demos).
Output is deterministic: the same request gives bit-identical frames and audio, and a
different seed gives a visibly different clip. Frames are rendered lazily as the encoder
pulls them; ``latency_seconds`` emulates an upstream's wait by pacing those frames, so
progress advances smoothly instead of jumping at the end.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import numpy as np

from reelforge.engines.base import (
    AUDIO_SAMPLE_RATE_HZ,
    Audio,
    Capabilities,
    Clip,
    GenerationRequest,
    Inputs,
    Progress,
)
from reelforge.engines.preview.audio import soundtrack
from reelforge.engines.preview.image import ImageToVideo, camera_for
from reelforge.engines.preview.scene import parse_scene, rng_for
from reelforge.engines.preview.text import TextToVideo
from reelforge.errors import GenerationFailed


class Renderer(Protocol):
    """Renders any frame of a clip on demand; frames do not depend on each other."""

    def frame(self, index: int) -> np.ndarray: ...


MODELS = frozenset({"veo2", "veo2/image-to-video", "google/veo-3.0-i2v"})
PROGRESS_STEP = 0.01
"""Smallest progress advance reported, as a fraction of the clip."""


class PreviewEngine:
    """CPU engine that renders procedural scenes (text) or camera moves (image)."""

    name = "preview"

    def __init__(self, latency_seconds: float = 0.0) -> None:
        if latency_seconds < 0:
            raise ValueError("latency_seconds must be >= 0")
        self.latency_seconds = latency_seconds

    def capabilities(self) -> Capabilities:
        return Capabilities(models=MODELS, text_to_video=True, image_to_video=True, audio=True)

    def load(self) -> None:
        """Nothing to load: the engine has no weights."""

    def close(self) -> None:
        """Nothing to release."""

    def generate(self, request: GenerationRequest, inputs: Inputs, progress: Progress) -> Clip:
        """Return at once with lazy frames; the work happens as ``clip.frames`` is consumed.

        Exceptions raised by ``progress`` propagate out of the frame iterator, which is how
        the worker cancels a running job.
        """
        _check(request)
        scene = parse_scene(request.prompt, request.negative_prompt, request.seed)
        size = (request.width, request.height)
        count = request.frame_count
        if inputs.image is not None:
            image, tail = inputs.image, inputs.tail_image
            camera_rng = rng_for(request.seed, request.prompt, "camera")

            def renderer() -> Renderer:
                return ImageToVideo(image, tail, size, count, request.prompt, camera_rng)

            extra: dict[str, object] = {"preview_camera": camera_for(request.prompt)}
        else:

            def renderer() -> Renderer:
                return TextToVideo(scene, size, count, request.fps, request.seed, request.prompt)

            extra = {"preview_scene": scene.describe()}
        audio = None
        if request.generate_audio:
            samples = soundtrack(
                scene, request.duration_seconds, rng_for(request.seed, request.prompt, "audio")
            )
            audio = Audio(samples=samples, sample_rate=AUDIO_SAMPLE_RATE_HZ)
        frames = _paced(renderer, count, self.latency_seconds, progress)
        return Clip(
            width=request.width,
            height=request.height,
            frame_count=count,
            fps=request.fps,
            frames=frames,
            audio=audio,
            extra=extra,
        )


def _check(request: GenerationRequest) -> None:
    if request.width <= 0 or request.height <= 0 or request.width % 2 or request.height % 2:
        raise GenerationFailed(
            f"The preview engine renders even sizes only; got {request.width}x{request.height}."
        )
    if request.duration_seconds <= 0 or request.fps <= 0:
        raise GenerationFailed(f"Cannot render {request.duration_seconds} s at {request.fps} fps.")


def _paced(
    renderer: Callable[[], Renderer],
    count: int,
    latency_seconds: float,
    progress: Progress,
) -> Iterator[np.ndarray]:
    """Yield the rendered frames, sleeping so the whole clip takes at least the latency."""
    progress(0.0, "rendering")
    start = time.monotonic()
    reported = 0.0
    with contextlib.closing(_prefetched(renderer, count)) as frames:
        for index, frame in enumerate(frames):
            done = (index + 1) / count
            if latency_seconds > 0:
                delay = start + latency_seconds * done - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            if done - reported >= PROGRESS_STEP or index + 1 == count:
                reported = done
                progress(done, "rendering")
            yield frame


def _prefetched(make: Callable[[], Renderer], count: int) -> Iterator[np.ndarray]:
    """Render frame i + 1 on a helper thread while the caller encodes frame i.

    numpy, Pillow and the encoder release the GIL in their inner loops, so with two cores
    rendering overlaps encoding. One thread renders every frame in order, so the output
    is the same as rendering inline; at most one frame is rendered ahead.
    """
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="preview-render")
    try:
        renderer = pool.submit(make).result()
        pending = pool.submit(renderer.frame, 0)
        for index in range(count):
            frame = pending.result()
            if index + 1 < count:
                pending = pool.submit(renderer.frame, index + 1)
            yield frame
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
