"""The built-in ``preview`` engine: purposeful-looking clips from the CPU, no weights.

It stands in for Veo wherever no GPU or upstream is configured (development, CI, demos).
Output is deterministic: the same request gives bit-identical frames and audio, and a
different seed gives a visibly different clip. Frames are rendered lazily as the encoder
pulls them, a few frames ahead on ``render_threads`` threads (frames are independent, so
which thread renders a frame does not change it; 0 renders in the encoding thread);
``latency_seconds`` emulates an upstream's wait by pacing those frames, so progress
advances smoothly instead of jumping at the end.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import numpy as np

from reelforge.engines.base import (
    INPUT_KINDS,
    Capabilities,
    GenerationRequest,
    Inputs,
    JobContext,
)
from reelforge.engines.preview.audio import soundtrack
from reelforge.engines.preview.compose import EndingOn, ExtendVideo, ReferencesToVideo
from reelforge.engines.preview.image import ImageToVideo, camera_for
from reelforge.engines.preview.scene import parse_scene, rng_for
from reelforge.engines.preview.text import TextToVideo
from reelforge.errors import EngineError
from reelforge.media.clip import AUDIO_SAMPLE_RATE_HZ, Audio, Clip


class Renderer(Protocol):
    """Renders any frame of a clip on demand; frames do not depend on each other."""

    def frame(self, index: int) -> np.ndarray: ...


PROGRESS_STEP = 0.01
"""Smallest progress advance reported, as a fraction of the clip."""


def default_render_threads() -> int:
    """Threads rendering a clip's frames while the encoder encodes: one per two cores, at
    most two. A frame takes the renderer less time than x264 on two cores, so there one
    render thread keeps x264 fed and a second only competes with it (docs/performance.md);
    with more cores x264 gets faster than one renderer."""
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:  # pragma: no cover - macOS, Windows
        cores = os.cpu_count() or 1
    return max(1, min(2, cores // 2))


class PreviewEngine:
    """CPU engine: procedural scenes (text), camera moves (image, first and last frame),
    floating reference cards (reference images), continuations (video extension)."""

    name = "preview"

    def __init__(self, latency_seconds: float = 0.0, render_threads: int | None = None) -> None:
        """``render_threads``: ``None`` for ``default_render_threads()``; 0 renders in the
        encoding thread."""
        if latency_seconds < 0:
            raise ValueError("latency_seconds must be >= 0")
        if render_threads is None:
            render_threads = default_render_threads()
        if render_threads < 0:
            raise ValueError("render_threads must be >= 0")
        self.latency_seconds = latency_seconds
        self.render_threads = render_threads

    def capabilities(self, model: str) -> Capabilities:
        return Capabilities(inputs=frozenset(INPUT_KINDS))

    def load(self) -> None:
        """Nothing to load: the engine has no weights."""

    def close(self) -> None:
        """Nothing to release."""

    def generate(self, request: GenerationRequest, inputs: Inputs, job: JobContext) -> Clip:
        """Return at once with lazy frames; the work happens as ``clip.frames`` is consumed.

        The frame iterator checks ``job`` for cancellation before each frame (and sleeps
        through the job, so an emulated latency ends at once when the job is cancelled).
        """
        _check(request)
        scene = parse_scene(request.prompt, request.negative_prompt, request.seed)
        size = (request.width, request.height)
        count = request.frame_count

        def camera_rng() -> np.random.Generator:
            # A fresh generator per renderer: each render thread makes its own renderer,
            # and each must draw the same camera.
            return rng_for(request.seed, request.prompt, "camera")

        def text() -> TextToVideo:
            return TextToVideo(scene, size, count, request.fps, request.seed, request.prompt)

        renderer: Callable[[], Renderer]
        facts: dict[str, object] = {"preview_scene": scene.describe()}
        threads = self.render_threads
        if inputs.video is not None:
            video = inputs.video
            extension = ExtendVideo(video, size, request.fps, count, request.prompt, camera_rng())
            count = extension.frame_count
            facts = {
                "preview_camera": camera_for(request.prompt),
                "input_video_seconds": round(video.duration_seconds, 3),
            }

            def renderer() -> Renderer:
                return extension

            threads = min(threads, 1)  # one continuation object: never two threads at once
        elif inputs.image is not None:
            image, tail = inputs.image, inputs.last_frame

            def renderer() -> Renderer:
                return ImageToVideo(image, tail, size, count, request.prompt, camera_rng())

            facts = {"preview_camera": camera_for(request.prompt)}
        elif inputs.references:
            references = inputs.references

            def renderer() -> Renderer:
                return ReferencesToVideo(text(), references, size, count)

            facts["preview_references"] = len(references)
        elif inputs.last_frame is not None:
            last = inputs.last_frame

            def renderer() -> Renderer:
                return EndingOn(text(), last, size, count, request.prompt, camera_rng())

        else:
            renderer = text
        audio = None
        if request.generate_audio:
            samples = soundtrack(
                scene, count / request.fps, rng_for(request.seed, request.prompt, "audio")
            )
            audio = Audio(samples=samples, sample_rate=AUDIO_SAMPLE_RATE_HZ)
        frames = _paced(renderer, count, self.latency_seconds, job, threads)
        return Clip(
            width=request.width,
            height=request.height,
            frame_count=count,
            fps=request.fps,
            frames=frames,
            audio=audio,
            facts=facts,
        )


def _check(request: GenerationRequest) -> None:
    if request.width <= 0 or request.height <= 0 or request.width % 2 or request.height % 2:
        raise EngineError(
            f"The preview engine renders even sizes only; got {request.width}x{request.height}."
        )
    if request.duration_seconds <= 0 or request.fps <= 0:
        raise EngineError(f"Cannot render {request.duration_seconds} s at {request.fps} fps.")


def _paced(
    renderer: Callable[[], Renderer],
    count: int,
    latency_seconds: float,
    job: JobContext,
    threads: int,
) -> Iterator[np.ndarray]:
    """Yield the rendered frames, sleeping so the whole clip takes at least the latency."""
    job.report(0.0, "rendering")
    start = time.monotonic()
    reported = 0.0
    with contextlib.closing(_prefetched(renderer, count, threads)) as frames:
        for index, frame in enumerate(frames):
            job.raise_if_cancelled()
            done = (index + 1) / count
            if latency_seconds > 0:
                delay = start + latency_seconds * done - time.monotonic()
                if delay > 0:
                    job.sleep(delay)
            if done - reported >= PROGRESS_STEP or index + 1 == count:
                reported = done
                job.report(done, "rendering")
            yield frame


def _prefetched(make: Callable[[], Renderer], count: int, threads: int) -> Iterator[np.ndarray]:
    """Render the next frames on ``threads`` helper threads while the caller encodes
    (with none, each frame when it is asked for).

    numpy, Pillow and the encoder release the GIL in their inner loops, so rendering
    overlaps encoding. Each thread makes its own renderer (they keep scratch buffers),
    and frames are independent, so the output is the same as rendering inline, in order;
    at most ``threads + 1`` frames are rendered ahead.
    """
    if threads == 0:
        renderer = make()
        for index in range(count):
            yield renderer.frame(index)
        return
    local = threading.local()

    def render(index: int) -> np.ndarray:
        renderer = getattr(local, "renderer", None)
        if renderer is None:
            renderer = local.renderer = make()
        return renderer.frame(index)

    ahead = threads + 1
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="preview-render")
    try:
        pending = deque(pool.submit(render, index) for index in range(min(ahead, count)))
        for index in range(count):
            frame = pending.popleft().result()
            if index + ahead < count:
                pending.append(pool.submit(render, index + ahead))
            yield frame
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
