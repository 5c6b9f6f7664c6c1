"""The preview engine against encoding alone: what rendering adds on top of x264."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw

from benchmarks.core import Result, Scale
from reelforge.engines.base import GenerationRequest, Inputs, JobContext
from reelforge.engines.preview import PreviewEngine
from reelforge.media.clip import Clip
from reelforge.media.encode import encode_mp4
from reelforge.settings import Settings

PROMPT = "a lighthouse on a cliff at dusk, waves crashing, gulls circling"


def _picture() -> Image.Image:
    image = Image.new("RGB", (1280, 720), "#2b4a6f")
    draw = ImageDraw.Draw(image)
    for index in range(12):
        draw.ellipse(
            (index * 100, 200 + index * 20, index * 100 + 180, 380 + index * 20),
            fill=(40 + index * 15, 120, 200 - index * 10),
        )
    return image


def _one(
    model: str, inputs: Inputs, seconds: int, work: Path, preset: str
) -> tuple[float, float, float]:
    """(engine + encode, render alone, encode alone) in seconds, as the worker runs it."""
    request = GenerationRequest(
        model=model, prompt=PROMPT, duration_seconds=seconds, width=1280, height=720, seed=7
    )
    engine = PreviewEngine()
    started = time.perf_counter()
    clip = engine.generate(request, inputs, JobContext())
    encode_mp4(clip, work / "whole.mp4", preset=preset)
    whole = time.perf_counter() - started

    started = time.perf_counter()
    rendered = engine.generate(request, inputs, JobContext())
    frames = list(rendered.frames or ())
    render = time.perf_counter() - started
    alone = Clip(
        width=rendered.width,
        height=rendered.height,
        frame_count=len(frames),
        fps=rendered.fps,
        frames=iter(frames),
        audio=rendered.audio,
    )
    started = time.perf_counter()
    encode_mp4(alone, work / "alone.mp4", preset=preset)
    encode = time.perf_counter() - started
    return whole, render, encode


def preview_engine(scale: Scale) -> list[Result]:
    seconds = int(scale.pick(5, 1))
    repeats = int(scale.pick(5, 1))
    preset = Settings().encoder_preset
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for model, inputs, label in (
            ("veo2", Inputs(), "text-to-video"),
            ("veo2/image-to-video", Inputs(image=_picture()), "image-to-video"),
        ):
            # The median of a few side-by-side runs: one run moves with the machine's noise.
            runs = [_one(model, inputs, seconds, Path(folder), preset) for _ in range(repeats)]
            whole, render, encode = (statistics.median(part) for part in zip(*runs, strict=True))
            ratio = whole / encode
            results.append(
                Result(
                    f"preview engine, {seconds} s 720p {label} (x264 {preset})",
                    f"{whole:.2f} s render + encode",
                    f"encode only {encode:.2f} s",
                    ratio,
                    "<= 1.5x",
                    ratio <= 1.5,
                    f"rendering alone {render:.2f} s; median of {repeats}",
                )
            )
    return results
