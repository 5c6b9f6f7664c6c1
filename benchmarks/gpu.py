"""GPU probe of the diffusers engine: does every speed option run, and what does it give?

``python -m benchmarks.gpu [--device cuda] [--quick] [--out gpu-probe.json]``

Runs offline in minutes on one NVIDIA GPU (under 7 min on an H100) with random weights
built here (no download): every family's tiny pipeline in bf16 (fp32 Wan VAE), each
offload mode, each attention backend, each step cache with its hook and skip counts,
regional compile with the cost of a second shape, FP8; then a Wan-1.3B-shaped model
(30 blocks of width 1536, the real VAE) at 832x480, 33 frames, 4 steps: seconds per
step through the engine against the bare pipeline call, and peak GPU memory, with each
lever on. Writes one JSON file and prints a Markdown table. Every check records its own
failure and the probe goes on. ``--device cpu --quick`` is the smoke path the tests run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.core import ROOT

FAMILIES = (
    "wan_t2v",
    "wan_ti2v",
    "wan_i2v",
    "wan_flf2v",
    "wan_a14b",
    "wan_vace",
    "ltx_t2v",
    "ltx_i2v",
    "ltx2",
    "hunyuan15",
)
IMAGE_FAMILIES = frozenset({"wan_i2v", "wan_flf2v", "ltx_i2v"})
OFFLOADS = ("none", "model", "group", "sequential")
BACKENDS = (
    "native",
    "_native_cudnn",
    "_native_flash",
    "_native_efficient",
    "flex",
    "_flash_3",
    "flash",
    "sage",
    "xformers",
)
CACHES = ("first_block", "taylorseer", "magcache")
TINY_STEPS = 8
SHAPED = {"size": (832, 480), "frames": 33, "steps": 4}
"""The Wan-1.3B-shaped run: 832x480 (Wan 2.1 1.3B's trained size), 33 frames, 4 steps."""
QUICK_SHAPED = {"size": (64, 48), "frames": 5, "steps": 2}
BUDGET_SECONDS = 390.0
"""Checks that would start after this are recorded as skipped (the probe must end < 7 min)."""


@dataclass
class Probe:
    device: str
    quick: bool
    root: Path
    budget: float
    started: float = field(default_factory=time.monotonic)
    checks: list[dict[str, Any]] = field(default_factory=list)

    def check(self, section: str, name: str, action: Callable[[], dict[str, Any]]) -> None:
        """Run one check; its figures, or its error, become one row."""
        row: dict[str, Any] = {"section": section, "name": name}
        if time.monotonic() - self.started > self.budget:
            row.update(ok=None, error="skipped: the probe's time budget is spent")
            self.checks.append(row)
            return
        begun = time.perf_counter()
        try:
            row.update(action())
            row.setdefault("ok", True)
        except Exception as error:
            message = str(error).strip().splitlines()[0] if str(error).strip() else ""
            row.update(ok=False, error=f"{type(error).__name__}: {message}"[:300])
            row["where"] = traceback.format_exc(limit=-2).strip().splitlines()[-3:]
        row["seconds"] = round(time.perf_counter() - begun, 3)
        self.checks.append(row)
        print(f"{section} {name}: ok={row['ok']} {row['seconds']} s", file=sys.stderr, flush=True)
        _reset_memory(self.device)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny shapes only (smoke test)")
    parser.add_argument("--out", type=Path, default=Path("gpu-probe.json"))
    parser.add_argument("--budget-seconds", type=float, default=BUDGET_SECONDS)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(ROOT / "tests"))  # the tiny pipelines the tests build
    with tempfile.TemporaryDirectory(prefix="reelforge-gpu-probe-") as folder:
        probe = Probe(args.device, args.quick, Path(folder), args.budget_seconds)
        report = run(probe)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print("\n".join(table(report)))
    print(f"\nwrote {args.out}")
    return 0


def run(probe: Probe) -> dict[str, Any]:
    environment = describe(probe.device)
    quick = probe.quick
    families = FAMILIES[:1] if quick else FAMILIES
    for name in families:
        probe.check("family", name, lambda name=name: job(probe, name))
    for offload in OFFLOADS[::2] if quick else OFFLOADS:
        probe.check(
            "offload", offload, lambda o=offload: job(probe, "wan_t2v", diffusers_cpu_offload=o)
        )
    for backend in ("native", "sage") if quick else BACKENDS:
        probe.check(
            "attention",
            backend,
            lambda b=backend: job(probe, "wan_t2v", diffusers_attention_backend=b),
        )
    for cache in CACHES[:1] if quick else CACHES:
        for name in families:
            probe.check(
                "cache", f"{cache} {name}", lambda c=cache, n=name: job(probe, n, diffusers_cache=c)
            )
    probe.check("compile", "wan_t2v", lambda: compile_cost(probe))
    probe.check("fp8", "wan_t2v", lambda: job(probe, "wan_t2v", diffusers_quantization="fp8"))
    built: dict[str, Any] = {}
    probe.check("wan-1.3b-shaped", "build", lambda: built.update(path=shaped_model(probe)) or {})
    shaped = built.get("path")
    variants: list[tuple[str, dict[str, Any]]] = (
        [("bf16", {})]
        if quick
        else [
            ("bf16", {}),
            ("sage", {"diffusers_attention_backend": "sage"}),
            ("_flash_3", {"diffusers_attention_backend": "_flash_3"}),
            ("_native_cudnn", {"diffusers_attention_backend": "_native_cudnn"}),
            ("fp8", {"diffusers_quantization": "fp8"}),
            ("first_block", {"diffusers_cache": "first_block"}),
            ("compile", {"diffusers_compile": True}),
            ("group offload", {"diffusers_cpu_offload": "group"}),
        ]
    )
    for label, options in variants:
        probe.check("wan-1.3b-shaped", label, lambda o=options: shaped_run(probe, shaped, o))
    return {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - probe.started, 1),
        "quick": probe.quick,
        "environment": environment,
        "shaped": SHAPED if not probe.quick else QUICK_SHAPED,
        "checks": probe.checks,
    }


# -- the checks ------------------------------------------------------------------------------


def engine_for(probe: Probe, path: Path, **overrides: Any) -> Any:
    from reelforge.engines.diffusers import DiffusersEngine
    from reelforge.settings import Settings

    values: dict[str, Any] = {
        "diffusers_model_path": str(path),
        "diffusers_device": probe.device,
        "diffusers_steps": TINY_STEPS,
        "home": probe.root / "home",
    }
    values.update(overrides)
    return DiffusersEngine.from_settings(Settings(**values), work_area=32 * 32)


def job(probe: Probe, name: str, **overrides: Any) -> dict[str, Any]:
    """One tiny job through the engine (loaded at start, as a worker does)."""
    import tiny_pipelines

    engine = engine_for(probe, tiny_pipelines.saved(name, probe.root), **overrides)
    try:
        engine.load()
        started = time.perf_counter()
        facts = generate(engine, name)
        row: dict[str, Any] = {"job_seconds": round(time.perf_counter() - started, 3)}
        row["dtype"] = _transformer_dtype(engine)
        counted = dict(facts.get("cache") or {})
        if counted:
            counted.pop("name", None)  # the row's name is the check's
            row.update(counted)
            row["ok"] = counted["hooked_modules"] > 0 and counted["skipped_calls"] > 0
        row["peak_gib"] = _peak_gib(probe.device)
        return row
    finally:
        engine.close()


def generate(engine: Any, name: str, size: tuple[int, int] = (64, 48)) -> dict[str, Any]:
    from PIL import Image

    from reelforge.engines.base import GenerationRequest, Inputs, JobContext

    inputs = Inputs()
    if name in IMAGE_FAMILIES:
        last = Image.new("RGB", size, "teal") if name == "wan_flf2v" else None
        inputs = Inputs(image=Image.new("RGB", size, "orange"), last_frame=last)
    request = GenerationRequest(
        model="veo2", prompt="a fox", duration_seconds=1, width=size[0], height=size[1], seed=3
    )
    clip = engine.generate(request, inputs, JobContext())
    for _ in clip.frames or ():
        pass
    return dict(clip.facts)


def compile_cost(probe: Probe) -> dict[str, Any]:
    """Warm-up (first shape's compile), a second shape's compile, then compiled speed."""
    import tiny_pipelines

    path = tiny_pipelines.saved("wan_t2v", probe.root)
    plain = engine_for(probe, path)
    compiled = engine_for(probe, path, diffusers_compile=True)
    try:
        started = time.perf_counter()
        compiled.load()  # compiles and warms up
        warm_up = time.perf_counter() - started
        first = _timed(lambda: generate(compiled, "wan_t2v"))
        second_shape = _timed(lambda: generate(compiled, "wan_t2v", (48, 64)))
        again = _timed(lambda: generate(compiled, "wan_t2v"))
        plain.load()
        generate(plain, "wan_t2v")
        eager = _timed(lambda: generate(plain, "wan_t2v"))
        return {
            "warm_up_seconds": round(warm_up, 3),
            "first_job_seconds": round(first, 3),
            "second_shape_seconds": round(second_shape, 3),
            "compiled_job_seconds": round(again, 3),
            "eager_job_seconds": round(eager, 3),
        }
    finally:
        compiled.close()
        plain.close()


def shaped_model(probe: Probe) -> Path:
    """A pipeline shaped like Wan 2.1 T2V 1.3B with random weights, saved in bf16."""
    import torch
    from diffusers import AutoencoderKLWan, WanPipeline, WanTransformer3DModel

    import tiny_pipelines

    directory = probe.root / "wan-1.3b-shaped"
    # Wan2.1-T2V-1.3B's transformer config: 30 layers, 12 heads of 128, FFN 8960.
    layers, heads, ffn = (2, 2, 64) if probe.quick else (30, 12, 8960)
    torch.manual_seed(0)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=heads,
        attention_head_dim=128,
        in_channels=16,
        out_channels=16,
        text_dim=tiny_pipelines.TEXT_DIM,
        freq_dim=256,
        ffn_dim=ffn,
        num_layers=layers,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        eps=1e-6,
        rope_max_seq_len=1024,
    )
    with torch.no_grad():  # keep activations bounded: random weights at init scale blow up
        for parameter in transformer.parameters():
            if parameter.dim() >= 2:
                parameter.mul_(0.1)
    vae = (
        AutoencoderKLWan(base_dim=8, dim_mult=[1, 1, 1, 1], num_res_blocks=1)
        if probe.quick
        else AutoencoderKLWan()  # the real Wan 2.1 VAE's shape (127M parameters)
    )
    tokenizer = tiny_pipelines.make_tokenizer()
    pipe = WanPipeline(
        transformer=transformer.to(torch.bfloat16),
        vae=vae,
        scheduler=tiny_pipelines._flow_unipc(),
        text_encoder=tiny_pipelines.make_text_encoder(len(tokenizer), umt5=True),
        tokenizer=tokenizer,
    )
    pipe.save_pretrained(directory)
    return directory


def shaped_run(probe: Probe, path: Path | None, options: dict[str, Any]) -> dict[str, Any]:
    """Seconds per step through the engine and in a bare pipeline call, peak memory."""
    import torch

    from reelforge.engines.base import GenerationRequest, Inputs, JobContext

    if path is None:
        raise RuntimeError("the shaped model could not be built")
    shape = QUICK_SHAPED if probe.quick else SHAPED
    width, height = shape["size"]
    engine = engine_for(probe, path, diffusers_steps=shape["steps"], **options)
    # The trained size (832x480 for this 1.3B-shaped checkpoint), or a tiny one when quick.
    engine.work_area = width * height if probe.quick else None
    try:
        started = time.perf_counter()
        engine.load()
        load = time.perf_counter() - started
        seconds = shape["frames"] // 16  # Wan runs at 16 fps: ceil to 4k+1 frames
        request = GenerationRequest(
            model="veo2",
            prompt="a fox",
            duration_seconds=max(1, seconds),
            width=width,
            height=height,
            seed=1,
        )

        def through_engine() -> dict[str, Any]:
            clip = engine.generate(request, Inputs(), JobContext())
            for _ in clip.frames or ():
                pass
            return dict(clip.facts)

        through_engine()  # first job: kernel selection, cache set-up
        _reset_memory(probe.device)
        facts: dict[str, Any] = {}
        engine_seconds = _timed(lambda: facts.update(through_engine()))
        peak = _peak_gib(probe.device)
        (model,) = engine.models._models.values()
        pipe = next(iter(model.pipelines.values()))
        frames = int(facts.get("native_frames", shape["frames"]))
        size = facts.get("native_size", [width, height])

        def bare() -> None:
            pipe(
                prompt="a fox",
                height=int(size[1]),
                width=int(size[0]),
                num_frames=frames,
                num_inference_steps=shape["steps"],
                guidance_scale=float(facts.get("guidance_scale", 5.0)),
                generator=torch.Generator(device=model.device).manual_seed(1),
                output_type="pt",
            )

        bare_seconds = _timed(bare)
        steps = int(facts.get("steps", shape["steps"]))
        return {
            "start_seconds": round(load, 2),
            "native": f"{size[0]}x{size[1]}x{frames}",
            "steps": steps,
            "engine_seconds_per_step": round(engine_seconds / steps, 4),
            "bare_seconds_per_step": round(bare_seconds / steps, 4),
            "engine_over_bare": round(engine_seconds / bare_seconds, 3),
            "peak_gib": peak,
            "cache": facts.get("cache"),
        }
    finally:
        engine.close()


# -- reporting -------------------------------------------------------------------------------


def describe(device: str) -> dict[str, Any]:
    import importlib.util

    import diffusers
    import torch

    from reelforge.engines.diffusers.acceleration import c_compiler

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "diffusers": diffusers.__version__,
        "device": device,
        "c_compiler": c_compiler(),
        "packages": {
            name: importlib.util.find_spec(name) is not None
            for name in ("sageattention", "flash_attn", "flash_attn_interface", "torchao", "triton")
        },
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        index = torch.device(device).index or 0
        info["gpu"] = torch.cuda.get_device_name(index)
        info["capability"] = ".".join(map(str, torch.cuda.get_device_capability(index)))
        info["memory_gib"] = round(torch.cuda.get_device_properties(index).total_memory / 2**30, 1)
    return info


def table(report: dict[str, Any]) -> list[str]:
    env = report["environment"]
    lines = [
        f"GPU probe {report['generated']} in {report['seconds']} s: "
        f"{env.get('gpu', env['device'])}, torch {env['torch']}, diffusers {env['diffusers']}",
        "",
        "| section | check | ok | figures |",
        "|---|---|---|---|",
    ]
    skip = {"section", "name", "ok", "where"}
    for row in report["checks"]:
        ok = {True: "yes", False: "**no**", None: "-"}[row.get("ok")]
        figures = ", ".join(f"{key} {value}" for key, value in row.items() if key not in skip)
        lines.append(f"| {row['section']} | {row['name']} | {ok} | {figures} |")
    return lines


def _timed(action: Callable[[], Any]) -> float:
    _synchronize()
    started = time.perf_counter()
    action()
    _synchronize()
    return time.perf_counter() - started


def _synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _reset_memory(device: str) -> None:
    import gc

    import torch

    gc.collect()
    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device: str) -> float | None:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return None


def _transformer_dtype(engine: Any) -> str | None:
    with contextlib.suppress(Exception):
        (model,) = engine.models._models.values()
        pipe = next(iter(model.pipelines.values()))
        return str(next(pipe.transformer.parameters()).dtype).removeprefix("torch.")
    return None


if __name__ == "__main__":
    raise SystemExit(main())
