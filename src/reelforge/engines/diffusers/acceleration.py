"""Speed levers of the diffusers engine, each checked to take effect.

What the fastest open video servers (LightX2V, FastVideo, vLLM-Omni) do, through
diffusers' own APIs:

* **Step-distilled LoRAs** (LightX2V / Lightning 4-step LoRAs for Wan 2.1/2.2), loaded
  with ``load_lora_weights`` and fused into the weights, with the recipe they were
  distilled for (:data:`DISTILLED_LORA_RECIPE`): 4 steps instead of 40-50, no CFG.
* **Step caches** (``first_block``, ``taylorseer``, ``magcache``): diffusers' hooks with
  module patterns that match every family's transformer (Wan's ``blocks.N.attn1``;
  diffusers' TaylorSeer default ``^blocks.*attn`` is a ``fullmatch`` and never matches
  ``attn1``) and thresholds that do skip work. :class:`CacheMeter` counts the modules
  hooked (none is an error at load) and the transformer calls skipped per job.
* **Attention backends** (``_native_cudnn``, ``_flash_3``, ``sage``...): checked by name,
  package and device when the worker starts, not discovered failing per job.
* **Regional ``torch.compile``** of the repeated transformer blocks, paid once by a
  warm-up generation at worker start.
* **FP8** weights and activations through torchao (``PipelineQuantizationConfig``).
* **Group offloading** with CUDA streams: blocks stream in while the previous ones
  compute, for checkpoints larger than the GPU (Wan 2.2 A14B: ~57 GB of bf16 transformers).

Heavy libraries are imported inside the functions: this module is imported by the
engine, which the API process imports without torch.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reelforge.errors import ConfigurationError, ServiceUnavailable

log = logging.getLogger(__name__)

CACHES = ("none", "first_block", "taylorseer", "magcache")
FIRST_BLOCK_THRESHOLD = 0.1
"""Relative change of the first block's residual under which the other blocks are
skipped. diffusers' default 0.05 barely skips on video DiTs; ParaAttention suggests
0.08-0.12 for Wan and HunyuanVideo (measured in ``benchmarks.gpu``)."""
MAGCACHE_THRESHOLD = 0.06
"""MagCache's accumulated-error budget (the paper's and diffusers' default)."""
MAGCACHE_MAX_SKIPS = 3
"""Most consecutive skipped steps (K in the MagCache paper)."""
TAYLORSEER_INTERVAL = 5
"""Full computations every this many steps; predicted in between (the paper's N=5)."""
TAYLORSEER_WARMUP = 3
"""Steps computed in full before predictions start (builds the Taylor factors)."""

TAYLORSEER_PATTERNS = (
    # Attention and feed-forward of every block of Wan (``blocks.N.attn1/attn2/ffn``),
    # LTX-Video and LTX-2 (``transformer_blocks.N.attn1/attn2/ff``, ``audio_attn1``...),
    # HunyuanVideo (``single_transformer_blocks.N.attn``).
    r"[a-z_]*blocks\.\d+\.[a-z_0-9]*attn[a-z_0-9]*",
    r"[a-z_]*blocks\.\d+\.(?:ffn|ff|[a-z_]+_ff)",
)

# fmt: off
WAN_T2V_MAG_RATIOS_INTERLEAVED = (
    # MagCache's calibration of Wan 2.1 T2V 1.3B at 50 steps, conditional and
    # unconditional branch interleaved (Zehong-Ma/MagCache, MagCache4Wan2.1/
    # magcache_generate.py, ``mag_ratios`` of t2v-1.3B; also in SGLang Diffusion's
    # ``T2V_13B_MAG_RATIOS``).
    1.0, 1.0, 1.0124, 1.02213, 1.00166, 1.0041,
    0.99791, 1.00061, 0.99682, 0.99762, 0.99634, 0.99685, 0.99567, 0.99586, 0.99416, 0.99422,
    0.99578, 0.99575, 0.9957, 0.99563, 0.99511, 0.99506, 0.99535, 0.99531, 0.99552, 0.99549,
    0.99541, 0.99539, 0.9954, 0.99536, 0.99489, 0.99485, 0.99518, 0.99514, 0.99484, 0.99478,
    0.99481, 0.99479, 0.99415, 0.99413, 0.99419, 0.99416, 0.99396, 0.99393, 0.99388, 0.99386,
    0.99349, 0.99349, 0.99309, 0.99304, 0.9927, 0.9927, 0.99228, 0.99226, 0.99171, 0.9917,
    0.99137, 0.99135, 0.99068, 0.99063, 0.99005, 0.99003, 0.98944, 0.98942, 0.98849, 0.98849,
    0.98758, 0.98757, 0.98644, 0.98643, 0.98504, 0.98503, 0.9836, 0.98359, 0.98202, 0.98201,
    0.97977, 0.97978, 0.97717, 0.97718, 0.9741, 0.97411, 0.97003, 0.97002, 0.96538, 0.96541,
    0.9593, 0.95933, 0.95086, 0.95089, 0.94013, 0.94019, 0.92402, 0.92414, 0.90241, 0.9026,
    0.86821, 0.86868, 0.81838, 0.81939,
)
# fmt: on
MAG_RATIOS_WAN_T2V = WAN_T2V_MAG_RATIOS_INTERLEAVED[0::2]
"""The conditional branch's 50 ratios; diffusers interpolates them to the job's steps.
Used for every checkpoint without a calibration of its own: the residual magnitudes of
flow-matching video DiTs decay alike, and MagCache's error budget bounds the harm where
they differ (``benchmarks.gpu`` reports the steps skipped)."""

DISTILLED_LORA_RECIPE: dict[str, float | int] = {
    "steps": 4,
    "guidance": 1.0,
    "guidance_2": 1.0,
    "shift": 5.0,
}
"""How LightX2V's step- and CFG-distilled Wan LoRAs (and Wan2.2-Lightning) are sampled:
4 steps, no unconditional pass (guidance 1), shift 5 (ModelTC/LightX2V
``configs/distill/wan21/wan_t2v_distill_lora_4step_cfg.json``: ``infer_steps 4``,
``sample_shift 5``, ``enable_cfg false``, ``denoising_step_list [1000, 750, 500, 250]``,
which is what diffusers' flow schedulers give for 4 steps before the shift)."""

CPU_BACKENDS = frozenset({"native", "_native_math", "flex"})
"""Backends that run without CUDA; every other one needs a GPU."""


@dataclass(frozen=True)
class ModelSpeed:
    """The per-model levers that change the loaded weights or hooks (part of the key a
    checkpoint is kept under: two models with other LoRAs need two copies)."""

    lora: str | None = None
    lora_2: str | None = None
    lora_scale: float = 1.0
    cache: str | None = None
    """``None``: the global ``diffusers_cache``."""

    @classmethod
    def of(cls, entry: Any) -> ModelSpeed:
        """From a ``DiffusersModel`` table (or ``None``)."""
        if entry is None:
            return cls()
        return cls(
            lora=entry.lora, lora_2=entry.lora_2, lora_scale=entry.lora_scale, cache=entry.cache
        )


def lora_recipe(entry: Any) -> dict[str, float | int]:
    """The sampling recipe that comes with a step-distilled LoRA, or ``{}``.

    ``entry``: a ``DiffusersModel`` table, or the LoRA's path itself.
    """
    if isinstance(entry, str):
        configured = bool(entry)
    else:
        configured = bool(getattr(entry, "lora", None) or getattr(entry, "lora_2", None))
    return dict(DISTILLED_LORA_RECIPE) if configured else {}


# -- checks at worker start ------------------------------------------------------------------


def check_attention_backend(backend: str | None, device: str, allow_download: bool) -> None:
    """Refuse an attention backend that cannot run here, with the reason.

    Raises :class:`ConfigurationError` (the worker stops with one line) for an unknown
    name, a missing package, a kernel that needs downloads while they are off, or a
    CUDA-only kernel on another device.
    """
    if not backend:
        return
    from diffusers.models.attention_dispatch import (
        AttentionBackendName,
        _check_attention_backend_requirements,
    )

    names = [member.value for member in AttentionBackendName]
    if backend not in names:
        raise ConfigurationError(
            f"REELFORGE_DIFFUSERS_ATTENTION_BACKEND={backend!r} is not a diffusers attention "
            f"backend; this diffusers knows {', '.join(sorted(names))}"
        )
    if backend.endswith("_hub") and not allow_download:
        raise ConfigurationError(
            f"the attention backend {backend} fetches its kernel from the Hugging Face Hub, "
            "and downloads are off (REELFORGE_DIFFUSERS_ALLOW_DOWNLOAD); install the kernel's "
            "package instead (sage: sageattention, _flash_3: FlashAttention 3's hopper build)"
        )
    if not device.startswith("cuda") and backend not in CPU_BACKENDS:
        raise ConfigurationError(
            f"the attention backend {backend} needs a CUDA GPU; this worker's device is "
            f"{device} (on the CPU use native, _native_math or flex)"
        )
    try:
        _check_attention_backend_requirements(AttentionBackendName(backend))
    except (RuntimeError, ImportError) as error:
        raise ConfigurationError(f"the attention backend {backend} cannot run: {error}") from None


def check_quantization(quantization: str, device: str) -> None:
    """FP8 needs torchao and an NVIDIA GPU with FP8 tensor cores (Ada, Hopper or newer)."""
    if quantization == "none":
        return
    if importlib.util.find_spec("torchao") is None:
        raise ConfigurationError(
            "REELFORGE_DIFFUSERS_QUANTIZATION=fp8 needs torchao: pip install 'reelforge[gpu]'"
        )
    if not device.startswith("cuda"):
        raise ConfigurationError(
            f"REELFORGE_DIFFUSERS_QUANTIZATION=fp8 needs a CUDA GPU; this worker's device is "
            f"{device}"
        )
    import torch

    major, minor = torch.cuda.get_device_capability(torch.device(device))
    if (major, minor) < (8, 9):
        raise ConfigurationError(
            f"REELFORGE_DIFFUSERS_QUANTIZATION=fp8 needs FP8 tensor cores (compute capability "
            f"8.9+: L4, L40, H100, B200); this GPU has {major}.{minor}"
        )


def check_compile(compile_blocks: bool, device: str) -> None:
    """Triton, which ``torch.compile`` generates CUDA kernels with, builds with a C compiler."""
    if compile_blocks and device.startswith("cuda") and not c_compiler():
        raise ConfigurationError(
            "REELFORGE_DIFFUSERS_COMPILE needs a C compiler for Triton (cc, gcc or clang on "
            "PATH, or CC); the GPU image (Dockerfile.gpu) has one"
        )


def c_compiler() -> str | None:
    import os

    named = os.environ.get("CC")
    return (
        shutil.which(named)
        if named
        else next((path for name in ("cc", "gcc", "clang") if (path := shutil.which(name))), None)
    )


def check_lora(path: str | None, what: str) -> None:
    """A configured LoRA must be a local file or directory: nothing is fetched at start."""
    if path and not Path(path).expanduser().exists():
        raise ConfigurationError(
            f"the {what} LoRA {path} does not exist; give the path of its .safetensors file "
            "or of the directory holding it"
        )


# -- options applied when a checkpoint loads -------------------------------------------------


def quantization_config(quantization: str, components: Iterable[str]) -> Any:
    """diffusers' pipeline-level torchao config: FP8 weights and activations, per row.

    Only the transformers are quantized (they hold the compute); the text encoder and
    the VAE keep their dtype, as LightX2V and vLLM-Omni do.
    """
    if quantization == "none":
        return None
    from diffusers import PipelineQuantizationConfig, TorchAoConfig
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow

    # A mapping, not ``quant_backend="torchao"``: that form also builds transformers'
    # TorchAoConfig, whose signature differs from diffusers' and is refused.
    fp8 = TorchAoConfig(quant_type=Float8DynamicActivationFloat8WeightConfig(granularity=PerRow()))
    return PipelineQuantizationConfig(quant_mapping=dict.fromkeys(components, fp8))


def load_loras(pipe: Any, lora: str | None, lora_2: str | None, scale: float, fuse: bool) -> int:
    """Load (and fuse) the step-distilled LoRAs; the number of transformers changed.

    ``lora`` goes into ``transformer``; ``lora_2`` into Wan 2.2 A14B's low-noise
    ``transformer_2``. Fused, the LoRA costs nothing per step (no peft layers at run
    time); unfused (with FP8 weights, which cannot absorb it) peft applies it per step.
    """
    loaded: list[str] = []
    for path, into_second in ((lora, False), (lora_2, True)):
        if not path:
            continue
        if into_second and getattr(pipe, "transformer_2", None) is None:
            raise ServiceUnavailable(
                f"a LoRA for transformer_2 ({path}) was configured, but this checkpoint has "
                "one transformer; configure it as lora"
            )
        name = "distilled_2" if into_second else "distilled"
        location = Path(path).expanduser()
        source, weight_name = (
            (str(location.parent), location.name) if location.is_file() else (str(location), None)
        )
        extra = {"load_into_transformer_2": True} if into_second else {}
        try:
            pipe.load_lora_weights(source, weight_name=weight_name, adapter_name=name, **extra)
        except (OSError, ValueError, KeyError, RuntimeError) as error:
            raise ServiceUnavailable(
                f"the LoRA {location.name} could not be loaded: {error}"
            ) from None
        loaded.append(name)
    if not loaded:
        return 0
    pipe.set_adapters(loaded, [scale] * len(loaded))
    if fuse:
        components = [
            n for n in ("transformer", "transformer_2") if getattr(pipe, n, None) is not None
        ]
        pipe.fuse_lora(components=components, lora_scale=1.0, adapter_names=loaded)
        pipe.unload_lora_weights()
    log.info("step-distilled LoRA loaded", extra={"adapters": loaded, "fused": fuse})
    return len(loaded)


def compile_blocks(models: Iterable[Any]) -> int:
    """Regional compilation: each repeated transformer block compiled once, reused.

    Minutes less than compiling the whole model, the same speed (diffusers'
    ``compile_repeated_blocks``). Not ``fullgraph``: cache hooks break graphs on purpose.
    """
    count = 0
    for model in models:
        try:
            model.compile_repeated_blocks(fullgraph=False)
        except (AttributeError, ValueError) as error:
            raise ServiceUnavailable(
                f"torch.compile of {type(model).__name__}'s blocks is unavailable: {error}"
            ) from None
        count += 1
    return count


def enable_group_offload(pipe: Any, device: str) -> None:
    """Keep weights in CPU memory and stream each block group in on a CUDA stream.

    With ``use_stream`` the next group's copy overlaps the current group's compute, so a
    checkpoint larger than the GPU runs at close to resident speed (diffusers measured
    ~1.1-1.3x slower than resident for Wan, against 5-10x for sequential offload). Needs
    pinned CPU memory of the weights' size: the worker's memory limit must cover it.
    """
    import torch

    pipe.enable_group_offload(
        onload_device=torch.device(device),
        offload_device=torch.device("cpu"),
        offload_type="leaf_level",
        use_stream=True,
        record_stream=True,
        low_cpu_mem_usage=False,
        exclude_modules=["vae"],
    )
    # The VAE is small (under 1 GB) and decodes at the largest activations: resident.
    vae = getattr(pipe, "vae", None)
    if vae is not None:
        vae.to(device)


# -- host memory -----------------------------------------------------------------------------

TEXT_ENCODER_GIB = 10.6
"""UMT5-XXL's encoder (5.7B parameters) in bf16: Wan's text encoder, ~1/2 of a small Wan."""
CHECKPOINT_WEIGHTS_GIB: dict[str, float] = {
    # Parameters x 2 bytes (bf16) + the text encoder + the VAE in fp32; estimates from the
    # published parameter counts, not measured here.
    "Wan2.1-T2V-1.3B-Diffusers": 2.6 + TEXT_ENCODER_GIB + 0.5,
    "Wan2.1-T2V-14B-Diffusers": 26.6 + TEXT_ENCODER_GIB + 0.5,
    "Wan2.1-I2V-14B-720P-Diffusers": 26.6 + TEXT_ENCODER_GIB + 0.5 + 1.2,  # + CLIP ViT-H
    "Wan2.2-TI2V-5B-Diffusers": 9.3 + TEXT_ENCODER_GIB + 2.6,
    "Wan2.2-T2V-A14B-Diffusers": 2 * 26.6 + TEXT_ENCODER_GIB + 0.5,
    "Wan2.2-I2V-A14B-Diffusers": 2 * 26.6 + TEXT_ENCODER_GIB + 0.5,
    "LTX-Video-0.9.7-distilled": 24.6 + 8.9 + 1.7,  # 13B transformer, T5-XXL encoder, VAE
}
HOST_OVERHEAD_GIB = 10.0
"""Python, torch, CUDA's host allocations, input images and the clip being encoded."""


def host_memory_gib(weights_gib: float, offload: str) -> float:
    """CPU memory a GPU worker needs (its container's limit) for a checkpoint.

    Every mode loads the whole pipeline into CPU memory before placing it; without
    offload that copy is freed once on the GPU, so the limit must still cover it at start.
    ``model``, ``group`` and ``sequential`` keep every weight in CPU memory for good, and
    ``group`` pins it (page-locked memory counts against the limit like any other), plus
    one group in flight: 10% more.
    """
    factor = 1.1 if offload == "group" else 1.0
    return round(weights_gib * factor + HOST_OVERHEAD_GIB, 1)


# -- step caches -----------------------------------------------------------------------------


@dataclass
class CacheMeter:
    """Counts what a step cache did on one transformer.

    ``hooked``: modules the cache's hooks sit on. ``evaluations``: transformer calls
    (one per step and guidance branch). ``skipped``: calls in which the last hooked
    module did not compute (FBCache/MagCache skipped the remaining blocks, TaylorSeer
    predicted its features): measured by whether a linear layer inside it ran, not read
    from the cache's internals.
    """

    cache: str
    hooked: int
    evaluations: int = 0
    skipped: int = 0
    _ran: bool = field(default=False, repr=False)
    _handles: list[Any] = field(default_factory=list, repr=False)

    def reset(self) -> None:
        self.evaluations = 0
        self.skipped = 0

    def attach(self, model: Any, probe: Any) -> None:
        import torch

        @torch.compiler.disable
        def started(_module: Any, _args: Any) -> None:
            self._ran = False

        @torch.compiler.disable
        def computed(_module: Any, _args: Any) -> None:
            self._ran = True

        @torch.compiler.disable
        def finished(_module: Any, _args: Any, _output: Any) -> None:
            self.evaluations += 1
            if not self._ran:
                self.skipped += 1

        self._handles = [
            model.register_forward_pre_hook(started),
            probe.register_forward_pre_hook(computed),
            model.register_forward_hook(finished),
        ]


def cache_config(cache: str, threshold: float | None, steps: int) -> Any:
    """The diffusers config of ``cache``, with thresholds that skip work on video DiTs."""
    from diffusers.hooks import FirstBlockCacheConfig, MagCacheConfig, TaylorSeerCacheConfig

    if cache == "first_block":
        return FirstBlockCacheConfig(threshold=threshold or FIRST_BLOCK_THRESHOLD)
    if cache == "taylorseer":
        return TaylorSeerCacheConfig(
            cache_interval=TAYLORSEER_INTERVAL,
            disable_cache_before_step=TAYLORSEER_WARMUP,
            cache_identifiers=list(TAYLORSEER_PATTERNS),
            taylor_factors_dtype=None,  # the module's own dtype: no bf16 rounding of fp32
        )
    if cache == "magcache":
        return MagCacheConfig(
            threshold=threshold or MAGCACHE_THRESHOLD,
            max_skip_steps=MAGCACHE_MAX_SKIPS,
            num_inference_steps=steps,
            mag_ratios=list(MAG_RATIOS_WAN_T2V),
        )
    raise ConfigurationError(f"unknown diffusers cache {cache!r}; use one of {', '.join(CACHES)}")


def enable_cache(model: Any, cache: str, threshold: float | None, steps: int) -> CacheMeter:
    """Apply ``cache`` to one transformer and meter it; 0 hooked modules is an error.

    ``steps``: the step count MagCache's ratios are laid out for (it is set again per
    job with :func:`prepare_cache`).
    """
    name = type(model).__name__
    blocks = _blocks(model)
    if cache in ("first_block", "magcache"):
        register_blocks()
    if cache in ("first_block", "magcache") and len(blocks) < 2:
        raise ServiceUnavailable(
            f"the {cache} cache needs a transformer of at least 2 blocks (a head and a tail); "
            f"{name} has {len(blocks)}"
        )
    try:
        model.enable_cache(cache_config(cache, threshold, steps))
    except (ValueError, IndexError, AttributeError, TypeError) as error:
        raise ServiceUnavailable(f"the {cache} cache cannot hook {name}: {error}") from None
    hooked = [module for module in model.modules() if _has_cache_hook(module)]
    hooked = [module for module in hooked if module is not model]
    if not hooked:
        raise ServiceUnavailable(
            f"the {cache} cache hooked no module of {name}: its patterns match none of the "
            "model's layers, so it would run every step in full"
        )
    probe = next((m for m in hooked[-1].modules() if _is_linear(m)), None)
    meter = CacheMeter(cache=cache, hooked=len(hooked))
    if probe is not None:
        meter.attach(model, probe)
    log.info(
        "step cache enabled", extra={"cache": cache, "model": name, "hooked_modules": meter.hooked}
    )
    return meter


def register_blocks() -> None:
    """Teach diffusers' block caches the blocks of HunyuanVideo 1.5 and LTX-2.

    FBCache and MagCache skip whole blocks, so they must know what a block returns;
    diffusers 0.42 registers neither family. HunyuanVideo 1.5's block returns
    ``(hidden_states, encoder_hidden_states)`` like HunyuanVideo's. LTX-2's returns
    ``(hidden_states, audio_hidden_states)``: its second stream is the audio, so the
    caches carry the audio where they would carry text states (a skipped block passes
    the audio through; FBCache adds the audio's cached residual too).
    """
    from diffusers.hooks._helpers import TransformerBlockMetadata, TransformerBlockRegistry

    @dataclass
    class AudioSecondStream(TransformerBlockMetadata):
        def _get_parameter_from_args_kwargs(
            self, identifier: str, args: Any = (), kwargs: Any = None
        ) -> Any:
            if identifier == "encoder_hidden_states":
                identifier = "audio_hidden_states"
            return super()._get_parameter_from_args_kwargs(identifier, args, kwargs)

    blocks: list[tuple[str, str, type]] = [
        ("transformer_hunyuan_video15", "HunyuanVideo15TransformerBlock", TransformerBlockMetadata),
        ("transformer_ltx2", "LTX2VideoTransformerBlock", AudioSecondStream),
    ]
    for module_name, class_name, metadata in blocks:
        try:
            module = importlib.import_module(f"diffusers.models.transformers.{module_name}")
        except ImportError:
            continue
        block = getattr(module, class_name, None)
        if block is None:
            continue
        try:
            TransformerBlockRegistry.get(block)
        except ValueError:
            TransformerBlockRegistry.register(
                block,
                metadata(return_hidden_states_index=0, return_encoder_hidden_states_index=1),
            )


def prepare_cache(model: Any, cache: str, steps: int) -> None:
    """Before a job: MagCache lays its ratios out for this job's step count."""
    if cache != "magcache":
        return
    from diffusers.hooks.mag_cache import nearest_interp

    for module in model.modules():
        registry = getattr(module, "_diffusers_hook", None)
        for hook in getattr(registry, "hooks", {}).values():
            config = getattr(hook, "config", None)
            if config is not None and hasattr(config, "mag_ratios"):
                import torch

                if config.num_inference_steps != steps:
                    config.num_inference_steps = steps
                    config.mag_ratios = nearest_interp(torch.tensor(MAG_RATIOS_WAN_T2V), steps)


def _blocks(model: Any) -> list[Any]:
    import torch
    from diffusers.hooks._common import _ALL_TRANSFORMER_BLOCK_IDENTIFIERS

    found: list[Any] = []
    for name, child in model.named_children():
        if name in _ALL_TRANSFORMER_BLOCK_IDENTIFIERS and isinstance(child, torch.nn.ModuleList):
            found.extend(child)
    return found


_CACHE_HOOK = re.compile(r"taylorseer|fbc_|mag_cache|first_block")


def _has_cache_hook(module: Any) -> bool:
    registry = getattr(module, "_diffusers_hook", None)
    names = getattr(registry, "hooks", {}) or {}
    return any(_CACHE_HOOK.search(name) for name in names)


def _is_linear(module: Any) -> bool:
    import torch

    return isinstance(module, torch.nn.Linear)
