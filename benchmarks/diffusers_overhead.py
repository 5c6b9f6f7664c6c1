"""The diffusers engine's own cost around the pipeline call, on a tiny random-weight
pipeline (built as the tests build theirs; no weights are downloaded)."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.core import ROOT, Result, Scale, median


def diffusers_engine(scale: Scale) -> list[Result]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import torch

        from reelforge.engines.base import GenerationRequest, Inputs, JobContext
        from reelforge.engines.diffusers import DiffusersEngine
        from reelforge.engines.diffusers.recipes import resolve
        from reelforge.settings import Settings
    except ImportError as error:
        return [
            Result(
                "diffusers engine overhead",
                "not run",
                "-",
                None,
                "<= 1.05x",
                None,
                f"extra not installed: {error.name}",
            )
        ]
    sys.path.insert(0, str(ROOT / "tests"))  # the tiny pipelines the tests build
    import tiny_pipelines

    rounds = int(scale.pick(7, 2))
    with tempfile.TemporaryDirectory() as folder:
        path = tiny_pipelines.saved("wan_t2v", Path(folder))
        settings = Settings(diffusers_model_path=str(path), diffusers_steps=2, home=Path(folder))
        engine = DiffusersEngine.from_settings(settings, work_area=48 * 32, audio_steps=2)
        engine.load()
        request = GenerationRequest(
            model="veo2", prompt="noise", duration_seconds=1, width=48, height=32, seed=3
        )
        info = engine.models.inspect(str(path))
        _, pipe = engine.models.pipeline(str(path), "text")
        sampling = resolve(info.recipe, None, settings)
        plan = engine._plan(info, pipe, request, sampling, Inputs())

        def whole() -> float:
            started = time.perf_counter()
            clip = engine.generate(request, Inputs(), JobContext())
            for _ in clip.frames or ():
                pass
            return time.perf_counter() - started

        def bare() -> float:
            started = time.perf_counter()
            pipe(
                prompt=request.prompt,
                height=plan.size[1],
                width=plan.size[0],
                num_frames=plan.frames,
                num_inference_steps=sampling.steps,
                guidance_scale=sampling.guidance,
                negative_prompt=sampling.negative_prompt,
                **dict(sampling.call_args),
                generator=torch.Generator().manual_seed(request.seed),
                output_type="pt",
            )
            return time.perf_counter() - started

        whole(), bare()  # warm-up
        engine_times, bare_times = [], []
        for _ in range(rounds):  # interleaved, so drift hits both alike
            engine_times.append(whole())
            bare_times.append(bare())
        engine.close()
    ratio = median(engine_times) / median(bare_times)
    return [
        Result(
            "diffusers engine on a tiny Wan pipeline (2 steps, 1 s clip)",
            f"{median(engine_times) * 1000:.0f} ms per job",
            f"bare pipeline call {median(bare_times) * 1000:.0f} ms",
            ratio,
            "<= 1.05x",
            ratio <= 1.05,
            "includes resampling to 24 fps and the output size",
        )
    ]
