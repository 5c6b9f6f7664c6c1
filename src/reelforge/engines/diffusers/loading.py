"""Finding, loading and configuring pipelines: once per checkpoint, kept resident.

Checkpoints come from a local directory (what ``save_pretrained`` or ``hf download``
writes) or from a Hugging Face repo id resolved in the local hub cache. Nothing is
downloaded unless ``diffusers_allow_download`` is on: a worker must not stall for an
hour fetching 60 GB because of a typo, so a missing checkpoint is an error that says
where we looked.

The settings trade memory, speed and fidelity:

* ``diffusers_dtype`` (CUDA only; the CPU always computes in float32): ``bfloat16`` halves
  memory against float32 at no visible cost and is what the checkpoints were trained in;
  ``float16`` suits GPUs without bf16 but can overflow in large transformers. Wan VAEs stay
  in float32 (Wan's own recommendation: a small model, and bf16 decoding bands colours).
* ``diffusers_cpu_offload``: ``model`` keeps each model (text encoder, transformer, VAE)
  on the CPU and moves it to the GPU while it runs: peak memory is the largest model, a
  few seconds slower per job. ``sequential`` streams every layer in for each use: fits the
  smallest GPUs, many times slower. Ignored on the CPU.
* ``diffusers_vae_tiling``: decodes the video in overlapping tiles, cutting the decoder's
  memory peak (the largest one at 720p) for a little time; seams are blended.
* ``diffusers_attention_backend``: a diffusers attention kernel (``flash``, ``sage``...):
  faster attention when its package is installed; ``sage`` quantizes and may change the
  output slightly. Backends named ``*_hub`` fetch kernels, so they need downloads allowed.
* ``diffusers_cache``, ``diffusers_compile``, ``diffusers_quantization``, the ``group``
  offload and per-model LoRAs: see :mod:`.acceleration`. Each is checked at worker start
  and shown to take effect at load (a cache that hooks nothing is an error).

VAE tiling that a VAE cannot do is logged as a warning and skipped; every speed option
that cannot apply fails the load with the reason: an operator who asked for a speed-up
must not get a silently slow worker.
"""

from __future__ import annotations

import gc
import importlib.util
import inspect
import json
import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reelforge.engines.diffusers import acceleration
from reelforge.engines.diffusers.acceleration import CacheMeter, ModelSpeed
from reelforge.engines.diffusers.families import InputKind, ModelInfo, detect
from reelforge.errors import ServiceUnavailable
from reelforge.settings import Settings

log = logging.getLogger(__name__)

REQUIRED_MODULES = ("torch", "diffusers", "transformers", "accelerate", "ftfy")
"""What ``reelforge[diffusers]`` brings; ``ftfy`` because Wan pipelines call it unchecked."""
INSTALL_HINT = "pip install 'reelforge[diffusers]'"
ALLOW_DOWNLOAD_HINT = "set REELFORGE_DIFFUSERS_ALLOW_DOWNLOAD=true to fetch it from the Hub"

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def missing_hint(allow_download: bool) -> str:
    """What to add to a loading error when files may be missing."""
    return "" if allow_download else f"; if files are missing, {ALLOW_DOWNLOAD_HINT}"


def require_extra() -> None:
    """Fail with the install command when the optional dependencies are missing.

    Uses ``find_spec`` only, so it costs nothing and imports nothing.
    """
    missing = [name for name in REQUIRED_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise ServiceUnavailable(
            f"the diffusers engine needs {', '.join(missing)}, which is not installed: "
            f"{INSTALL_HINT}"
        )


@dataclass(frozen=True)
class LoadOptions:
    """The ``diffusers_*`` settings that decide how a checkpoint is loaded and run."""

    allow_download: bool = False
    device: str | None = None
    dtype: str = "bfloat16"
    cpu_offload: str = "none"
    vae_tiling: bool = False
    attention_backend: str | None = None
    cache: str = "none"
    cache_threshold: float | None = None
    compile: bool = False
    quantization: str = "none"

    @classmethod
    def from_settings(cls, settings: Settings) -> LoadOptions:
        return cls(
            allow_download=settings.diffusers_allow_download,
            device=settings.diffusers_device,
            dtype=settings.diffusers_dtype,
            cpu_offload=settings.diffusers_cpu_offload,
            vae_tiling=settings.diffusers_vae_tiling,
            attention_backend=settings.diffusers_attention_backend,
            cache=settings.diffusers_cache,
            cache_threshold=settings.diffusers_cache_threshold,
            compile=settings.diffusers_compile,
            quantization=settings.diffusers_quantization,
        )

    def resolved_device(self) -> str:
        import torch

        return self.device or ("cuda" if torch.cuda.is_available() else "cpu")


def label_for(source: str) -> str:
    """What users see of a source: a directory's name (not the server's paths) or the id."""
    path = Path(source).expanduser()
    return path.name if path.exists() else source


def read_configs(source: str, allow_download: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """``model_index.json`` and the transformer's config (``{}`` if it has none).

    Reads small JSON files only. Raises :class:`ServiceUnavailable` saying where it looked.
    """
    path = Path(source).expanduser()
    if path.exists():
        index = path / "model_index.json"
        if not index.is_file():
            raise ServiceUnavailable(
                f"the diffusers model directory {path} has no model_index.json; give the "
                "directory of a diffusers pipeline (as written by save_pretrained or "
                "'hf download')"
            )
        transformer = path / "transformer" / "config.json"
        config = _read_json(transformer) if transformer.is_file() else {}
        return _read_json(index), config
    if not _REPO_ID.match(source):
        raise ServiceUnavailable(
            f"no diffusers model directory at {path.resolve()}; set "
            "REELFORGE_DIFFUSERS_MODEL_PATH (or REELFORGE_DIFFUSERS_MODELS) to a pipeline "
            "directory or a Hugging Face repo id"
        )
    return _read_hub_configs(source, allow_download)


def _read_hub_configs(repo_id: str, allow_download: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        index = hf_hub_download(repo_id, "model_index.json", local_files_only=not allow_download)
    except Exception as error:
        where = f"no directory {Path(repo_id).resolve()} and not in the Hugging Face cache at "
        where += str(constants.HF_HUB_CACHE)
        hint = ALLOW_DOWNLOAD_HINT if not allow_download else f"download failed: {error}"
        raise ServiceUnavailable(
            f"the diffusers model '{repo_id}' was not found ({where}); download it with "
            f"'hf download {repo_id}' or {hint}"
        ) from None
    try:
        transformer = hf_hub_download(
            repo_id, "transformer/config.json", local_files_only=not allow_download
        )
    except EntryNotFoundError:
        return _read_json(Path(index)), {}
    except Exception:
        log.warning("transformer config of %s unavailable; guessing from the pipeline", repo_id)
        return _read_json(Path(index)), {}
    return _read_json(Path(index)), _read_json(Path(transformer))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ServiceUnavailable(f"cannot read {path.name} of a diffusers model: {error}") from None
    if not isinstance(data, dict):
        raise ServiceUnavailable(f"{path.name} of a diffusers model is not a JSON object")
    return data


@dataclass
class LoadedModel:
    """A checkpoint resident in memory: one pipeline per input kind, sharing components."""

    info: ModelInfo
    device: str
    pipelines: dict[InputKind, Any] = field(default_factory=dict)
    offloaded_by: InputKind | None = None
    """Which pipeline owns the model-offload hooks on the shared components."""
    meters: list[CacheMeter] = field(default_factory=list)
    """One per transformer when a step cache is on: what it hooked and skipped."""
    cache: str = "none"


class ModelStore:
    """Loads each checkpoint once and keeps it; thread-safe.

    ``loads`` counts ``from_pretrained`` calls, for operators' logs and tests.
    """

    def __init__(self, options: LoadOptions) -> None:
        self.options = options
        self.loads = 0
        self._models: dict[tuple[str, ModelSpeed], LoadedModel] = {}
        self._infos: dict[str, ModelInfo] = {}
        self._lock = threading.RLock()

    def inspect(self, source: str) -> ModelInfo:
        """What ``source`` is, from its config files; cached. No weights are read."""
        with self._lock:
            info = self._infos.get(source)
            if info is None:
                index, transformer = read_configs(source, self.options.allow_download)
                info = detect(source, label_for(source), index, transformer)
                self._infos[source] = info
            return info

    def pipeline(
        self, source: str, kind: InputKind, speed: ModelSpeed | None = None
    ) -> tuple[LoadedModel, Any]:
        """The pipeline serving ``kind`` input from ``source``, loading on first use.

        ``speed``: the model's LoRAs and cache; checkpoints are kept per ``(source, speed)``.
        """
        speed = speed or ModelSpeed()
        with self._lock:
            model = self._models.get((source, speed))
            if model is None:
                model = self._load(self.inspect(source), speed)
                self._models[(source, speed)] = model
            pipe = model.pipelines.get(kind)
            if pipe is None:
                base = next(iter(model.pipelines.values()))
                pipe = derive(base, _pipeline_class(model.info.pipeline_for(kind)))
                pipe.set_progress_bar_config(disable=True)
                model.pipelines[kind] = pipe
            if self.options.cpu_offload == "model" and model.offloaded_by not in (None, kind):
                # Offload hooks chain the shared models in one pipeline's order; hand
                # them to the pipeline that runs now.
                pipe.enable_model_cpu_offload(device=model.device)
                model.offloaded_by = kind
            return model, pipe

    def close(self) -> None:
        """Drop every pipeline and return the GPU memory they held."""
        with self._lock:
            self._models.clear()
            self._infos.clear()
        gc.collect()
        if importlib.util.find_spec("torch") is not None:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    def _load(self, info: ModelInfo, speed: ModelSpeed) -> LoadedModel:
        import torch

        options = self.options
        device = options.resolved_device()
        on_cpu = device == "cpu"
        dtype = torch.float32 if on_cpu else getattr(torch, options.dtype)
        kinds = [kind for kind in ("text", "image") if info.supports(kind)]
        loaded_kind = next(
            (kind for kind in kinds if info.pipeline_for(kind) == info.pipeline_class), kinds[0]
        )
        pipeline_class = _pipeline_class(info.pipeline_for(loaded_kind))
        quiet_progress_bars()
        torch_dtype: Any = dtype
        if info.family.name.startswith("wan") and dtype != torch.float32:
            torch_dtype = {"default": dtype, "vae": torch.float32}
        log.info(
            "loading diffusers pipeline",
            extra={"model": info.label, "pipeline": pipeline_class.__name__, "device": device},
        )
        extra: dict[str, Any] = {}
        if options.quantization != "none":
            transformers = ["transformer", "transformer_2"] if info.two_stage else ["transformer"]
            extra["quantization_config"] = acceleration.quantization_config(
                options.quantization, transformers
            )
        try:
            pipe = pipeline_class.from_pretrained(
                info.source,
                local_files_only=not options.allow_download,
                **dtype_argument(torch_dtype),
                **extra,
            )
        except (OSError, ValueError) as error:
            raise ServiceUnavailable(
                f"the diffusers model '{info.label}' could not be loaded: "
                f"{_first_line(error)}{missing_hint(options.allow_download)}"
            ) from None
        self.loads += 1
        pipe.set_progress_bar_config(disable=True)
        model = LoadedModel(info=info, device=device, pipelines={loaded_kind: pipe})
        acceleration.load_loras(
            pipe,
            speed.lora,
            speed.lora_2,
            speed.lora_scale,
            fuse=options.quantization == "none",
        )
        model.cache = speed.cache or options.cache
        model.meters = configure_models(pipe, options, model.cache, info.default_steps)
        self._place(pipe, model, loaded_kind, on_cpu)
        if options.compile:
            acceleration.compile_blocks(_transformers(pipe))
        return model

    def _place(self, pipe: Any, model: LoadedModel, kind: InputKind, on_cpu: bool) -> None:
        offload = self.options.cpu_offload
        if offload != "none" and on_cpu:
            log.warning("diffusers_cpu_offload=%s ignored: the device is the CPU", offload)
            offload = "none"
        try:
            if offload == "model":
                pipe.enable_model_cpu_offload(device=model.device)
                model.offloaded_by = kind
                return
            if offload == "sequential":
                pipe.enable_sequential_cpu_offload(device=model.device)
                return
            if offload == "group":
                acceleration.enable_group_offload(pipe, model.device)
                return
        except (ImportError, RuntimeError, ValueError) as error:
            log.warning("CPU offload unavailable (%s); keeping the models on the device", error)
        pipe.to(model.device)


def configure_models(
    pipe: Any, options: LoadOptions, cache: str | None = None, steps: int = 50
) -> list[CacheMeter]:
    """VAE tiling, attention backend and step caching; the caches' meters.

    Tiling a VAE cannot do is skipped with a warning; a backend or cache that cannot
    apply raises :class:`ServiceUnavailable` (the checks at worker start catch most).
    """
    if options.vae_tiling:
        vae = getattr(pipe, "vae", None)
        if vae is not None and hasattr(vae, "enable_tiling"):
            vae.enable_tiling()
        else:
            log.warning("diffusers_vae_tiling ignored: this VAE cannot decode in tiles")
    transformers = _transformers(pipe)
    backend = options.attention_backend
    if backend:
        for model in transformers:
            try:
                model.set_attention_backend(backend)
            except (ValueError, RuntimeError, ImportError) as error:
                raise ServiceUnavailable(
                    f"the attention backend {backend} cannot be used: {_first_line(error)}"
                ) from None
    cache = cache or options.cache
    if cache == "none":
        return []
    return [
        acceleration.enable_cache(model, cache, options.cache_threshold, steps)
        for model in transformers
    ]


def _transformers(pipe: Any) -> list[Any]:
    return [
        model
        for name in ("transformer", "transformer_2")
        if (model := getattr(pipe, name, None)) is not None
    ]


def derive(pipe: Any, pipeline_class: type) -> Any:
    """A pipeline of ``pipeline_class`` over ``pipe``'s components: no second copy.

    Unlike ``from_pipe``, this neither casts the shared weights (``from_pipe`` converts
    them to float32 unless given a dtype) nor touches their devices or hooks.
    """
    if isinstance(pipe, pipeline_class):
        return pipe
    components = pipe.components
    config: Mapping[str, Any] = pipe.config
    kwargs: dict[str, Any] = {}
    for name, parameter in inspect.signature(pipeline_class.__init__).parameters.items():
        if name == "self" or parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
            continue
        if name in components:
            kwargs[name] = components[name]
        elif name in config and not name.startswith("_"):
            kwargs[name] = config[name]
    return pipeline_class(**kwargs)


def dtype_argument(dtype: Any) -> dict[str, Any]:
    """``from_pretrained``'s dtype keyword: ``dtype`` since diffusers deprecated
    ``torch_dtype`` (0.4x), ``torch_dtype`` before."""
    from diffusers.utils import deprecation_utils

    name = "dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype"
    return {name: dtype}


def quiet_progress_bars() -> None:
    """No tqdm bars from loading: a service logs, it does not draw on a terminal."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


def _pipeline_class(name: str) -> type:
    import diffusers

    return getattr(diffusers, name)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def start_meters(model: LoadedModel, steps: int) -> None:
    """Before a job: zero the cache meters; MagCache lays its ratios out for ``steps``."""
    for meter in model.meters:
        meter.reset()
    if model.cache != "none":
        for pipe in list(model.pipelines.values())[:1]:
            for transformer in _transformers(pipe):
                acceleration.prepare_cache(transformer, model.cache, steps)


def report_meters(model: LoadedModel, facts: dict[str, object], job_id: str = "") -> None:
    """After a job: what the step cache hooked and skipped, in the log and the job's facts."""
    if not model.meters:
        return
    hooked = sum(meter.hooked for meter in model.meters)
    evaluations = sum(meter.evaluations for meter in model.meters)
    skipped = sum(meter.skipped for meter in model.meters)
    facts["cache"] = {
        "name": model.cache,
        "hooked_modules": hooked,
        "transformer_calls": evaluations,
        "skipped_calls": skipped,
    }
    log.info(
        "step cache: %d of %d transformer calls skipped (%d modules hooked)",
        skipped,
        evaluations,
        hooked,
        extra={"job_id": job_id, "cache": model.cache},
    )
