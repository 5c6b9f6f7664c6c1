"""The ``diffusers`` engine: open-weight text- and image-to-video on a local GPU.

A request is served by the checkpoint configured for its published model
(``diffusers_models[model]``, else ``diffusers_model_path``): Wan 2.1/2.2 or LTX-Video in
diffusers format (see :mod:`.families`). Text input runs the family's text-to-video
pipeline and image input its image-to-video one; a checkpoint that serves both (Wan2.2
TI2V-5B, LTX-Video) builds the second pipeline over the first one's components, so the
weights are in memory once.

One job runs at a time per engine (pipelines keep per-call state and a GPU runs one
video model well, not two): other worker threads wait, reporting "waiting for the GPU",
which also lets them be cancelled while they wait.

The model generates at its native rate, frame count and size (``Clip.extra`` reports
them); :mod:`.resample` turns that into exactly ``duration x 24`` frames of the published
size, lazily as the encoder pulls them. Progress: loading and denoising steps up to
``DENOISE_END``, decoding, the soundtrack, then the output frames up to 1.0. Whatever the
job context raises when the job must stop (checked at every denoising step and while
waiting for the GPU) propagates and ends the job.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from reelforge.catalog import MODELS
from reelforge.engines.base import Capabilities, GenerationRequest, Inputs, JobContext
from reelforge.engines.diffusers.audio import AudioGenerator
from reelforge.engines.diffusers.families import (
    InputKind,
    ModelInfo,
    Size,
    native_frames,
    native_size,
)
from reelforge.engines.diffusers.loading import LoadOptions, ModelStore, require_extra
from reelforge.engines.diffusers.resample import output_frames
from reelforge.errors import EngineError, ServiceUnavailable
from reelforge.media.clip import Audio, Clip
from reelforge.media.fit import fit_frame
from reelforge.settings import DiffusersModel, Settings

log = logging.getLogger(__name__)

PUBLISHED_MODELS = frozenset(MODELS)
"""Served by ``diffusers_model_path`` when it is set (the catalog's models)."""
TAIL_OPTIONAL_MODELS = frozenset({"veo2/image-to-video"})
"""Models whose last frame a checkpoint without last-frame input may ignore (and say so,
as it always has); any other model's last frame needs a first-last (FLF2V) checkpoint."""

DENOISE_END = 0.80
DECODE_END = 0.85
AUDIO_END = 0.90
"""Shares of the engine's progress bar at the end of each stage; frames fill the rest."""
LOCK_POLL_SECONDS = 1.0
"""How often a job waiting for the GPU checks whether it was cancelled."""
MIN_SIZE_MULTIPLE = {"wan": 16, "wan-ti2v": 32, "ltx": 32}
"""Sides the pipelines accept (their ``check_inputs``), whatever the VAE's ratio."""
TIME_RESAMPLING = "blend"


@dataclass(frozen=True)
class Plan:
    """What one pipeline call generates natively."""

    size: Size
    frames: int
    fps: int
    steps: int
    guidance: float


class DiffusersEngine:
    """Wan and LTX-Video pipelines, loaded on first use and kept resident."""

    name = "diffusers"

    def __init__(
        self,
        settings: Settings,
        *,
        work_area: int | None = None,
        audio_steps: int | None = None,
    ) -> None:
        """``work_area`` (pixels) replaces the families' native sizes: tests and previews
        generate tiny clips with it. ``audio_steps`` overrides the audio model's steps."""
        self.settings = settings
        self.options = LoadOptions.from_settings(settings)
        self.models = ModelStore(self.options)
        self.work_area = work_area
        audio_source = settings.diffusers_audio_model_path
        self.audio = (
            AudioGenerator(audio_source, self.options, audio_steps) if audio_source else None
        )
        self._gpu = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> DiffusersEngine:
        return cls(settings, **overrides)

    # -- Engine protocol -------------------------------------------------------------------

    def capabilities(self, model: str) -> Capabilities:
        """From the model's checkpoint's config files (read once; no weights).

        Text and image as the checkpoint takes them; a last frame with a first-last
        checkpoint (Wan FLF2V), or ignored for ``TAIL_OPTIONAL_MODELS``. Reference images
        and video extension have no open checkpoint here: never offered, so the router
        refuses them with a clear message.
        """
        source = self._sources().get(model)
        kinds: set[str] = set()
        if source:
            try:
                info = self.models.inspect(source)
            except ServiceUnavailable as error:
                log.warning("diffusers model unavailable: %s", error.message)
            else:
                if info.text:
                    kinds.add("text")
                if info.image:
                    kinds.add("image")
                    if info.last_frame or model in TAIL_OPTIONAL_MODELS:
                        kinds.add("last_frame")
        return Capabilities(inputs=frozenset(kinds), enhances_prompt=False)

    def load(self) -> None:
        """Cheap: checks that the extra is installed; weights load with the first job."""
        require_extra()

    def close(self) -> None:
        """Free the pipelines and the GPU memory they held."""
        with self._gpu:
            self.models.close()
            if self.audio is not None:
                self.audio.close()

    def generate(self, request: GenerationRequest, inputs: Inputs, job: JobContext) -> Clip:
        source = self._source_for(request.model)
        if inputs.last_frame is not None and inputs.image is None:
            raise EngineError(
                f"'{request.model}' got a last frame without a first frame; the open "
                "first-last checkpoints (Wan FLF2V) need both (image_url and last_image_url)"
            )
        kind: InputKind = "image" if inputs.image is not None else "text"
        info = self.models.inspect(source)
        if not info.supports(kind):
            raise EngineError(_wrong_input(request.model, info, kind))
        facts: dict[str, object] = {"diffusers_model": info.label, "family": info.family.name}
        with self._exclusive(job):
            job.report(0.0, "loading model")
            model, pipe = self.models.pipeline(source, kind)
            job.raise_if_cancelled()
            plan = self._plan(info, pipe, request)
            video = self._run(pipe, model.device, info, plan, request, inputs, job, facts)
            audio = self._soundtrack(request, job, facts)
        facts.update(
            native_frames=int(video.shape[0]),
            native_size=[plan.size[0], plan.size[1]],
            native_fps=plan.fps,
            steps=plan.steps,
            guidance_scale=plan.guidance,
            time_resampling=TIME_RESAMPLING,
        )

        def report(fraction: float) -> None:
            job.report(AUDIO_END + (1.0 - AUDIO_END) * fraction, "resampling")
            job.raise_if_cancelled()

        frames = output_frames(
            video,
            plan.fps,
            request.frame_count,
            request.fps,
            (request.width, request.height),
            report,
        )
        return Clip(
            width=request.width,
            height=request.height,
            frame_count=request.frame_count,
            fps=request.fps,
            frames=frames,
            audio=audio,
            facts=facts,
        )

    # -- internals ---------------------------------------------------------------------------

    def _sources(self) -> dict[str, str]:
        """Checkpoint by published model, as configured."""
        sources: dict[str, str] = {}
        if self.settings.diffusers_model_path:
            sources = dict.fromkeys(PUBLISHED_MODELS, self.settings.diffusers_model_path)
        for model, entry in self.settings.diffusers_models.items():
            sources[model] = DiffusersModel.of(entry).checkpoint
        return sources

    def _source_for(self, model: str) -> str:
        source = self._sources().get(model)
        if not source:
            raise ServiceUnavailable(
                f"no diffusers model is configured for '{model}': set "
                "REELFORGE_DIFFUSERS_MODEL_PATH (every model) or REELFORGE_DIFFUSERS_MODELS "
                f"(per model, e.g. {model}=/models/Wan2.1-T2V-1.3B-Diffusers)"
            )
        return source

    @contextlib.contextmanager
    def _exclusive(self, job: JobContext) -> Iterator[None]:
        while not self._gpu.acquire(timeout=LOCK_POLL_SECONDS):
            job.report(0.0, "waiting for the GPU")
            job.raise_if_cancelled()
        try:
            yield
        finally:
            self._gpu.release()

    def _plan(self, info: ModelInfo, pipe: Any, request: GenerationRequest) -> Plan:
        temporal, spatial = _compression(pipe)
        multiple = max(MIN_SIZE_MULTIPLE.get(info.family.name, 16), spatial)
        fps = info.family.native_fps
        return Plan(
            size=native_size(info.sizes, (request.width, request.height), multiple, self.work_area),
            frames=native_frames(request.duration_seconds, fps, temporal, info.family.max_frames),
            fps=fps,
            steps=self.settings.diffusers_steps or info.default_steps,
            guidance=(
                self.settings.diffusers_guidance_scale
                if self.settings.diffusers_guidance_scale is not None
                else info.default_guidance
            ),
        )

    def _run(
        self,
        pipe: Any,
        device: str,
        info: ModelInfo,
        plan: Plan,
        request: GenerationRequest,
        inputs: Inputs,
        job: JobContext,
        facts: dict[str, object],
    ) -> np.ndarray:
        """Denoise and decode; the native clip as uint8 (frames, height, width, 3) on the CPU."""
        import torch

        def on_step(pipeline: Any, index: int, _timestep: Any, tensors: dict) -> dict:
            total = getattr(pipeline, "num_timesteps", None) or plan.steps
            done = min(1.0, (index + 1) / total)
            job.report(DENOISE_END * done, "denoising")
            if done >= 1.0:
                job.report(DENOISE_END, "decoding")
            job.raise_if_cancelled()
            return tensors

        width, height = plan.size
        call: dict[str, Any] = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            "height": height,
            "width": width,
            "num_frames": plan.frames,
            "num_inference_steps": plan.steps,
            "guidance_scale": plan.guidance,
            "generator": torch.Generator(device=device).manual_seed(request.seed),
            "output_type": "pt",
            "callback_on_step_end": on_step,
            "frame_rate": plan.fps,
            **dict(info.family.extra_call_args),
        }
        if inputs.image is not None:
            call["image"] = fit_frame(inputs.image, plan.size)
            if inputs.last_frame is not None:
                if info.last_frame:
                    call["last_image"] = fit_frame(inputs.last_frame, plan.size)
                    facts["tail_image"] = "used as the last frame"
                else:
                    facts["tail_image"] = "ignored: this checkpoint has no last-frame input"
        # Arguments a pipeline does not take (LTX's frame_rate for Wan) are dropped.
        accepted = inspect.signature(pipe.__call__).parameters
        call = {key: value for key, value in call.items() if key in accepted}
        job.report(0.0, "denoising")
        try:
            result = pipe(**call)
        except BaseException:
            _reset(pipe)
            raise
        frames = result.frames
        if not isinstance(frames, torch.Tensor):
            frames = torch.from_numpy(np.asarray(frames)).permute(0, 1, 4, 2, 3)
        # In place: at 720p the float clip is over a gigabyte; no second copy of it.
        video = frames[0].clamp_(0, 1).mul_(255).round_().to(torch.uint8).permute(0, 2, 3, 1)
        job.report(DECODE_END, "decoding")
        return video.contiguous().cpu().numpy()

    def _soundtrack(
        self, request: GenerationRequest, job: JobContext, facts: dict[str, object]
    ) -> Audio | None:
        if not request.generate_audio:
            return None
        if self.audio is None:
            facts["audio"] = "not configured"
            return None

        def report(fraction: float) -> None:
            job.report(DECODE_END + (AUDIO_END - DECODE_END) * fraction, "audio")
            job.raise_if_cancelled()

        audio = self.audio.generate(
            request.prompt,
            request.negative_prompt,
            float(request.duration_seconds),
            request.seed,
            report,
        )
        facts["audio"] = f"generated by {self.audio.label}"
        return audio


def _compression(pipe: Any) -> tuple[int, int]:
    """(frames per latent frame, pixels per latent-token side) of a loaded pipeline."""
    temporal = getattr(pipe, "vae_scale_factor_temporal", None) or getattr(
        pipe, "vae_temporal_compression_ratio", 4
    )
    spatial = getattr(pipe, "vae_scale_factor_spatial", None) or getattr(
        pipe, "vae_spatial_compression_ratio", 8
    )
    patch = getattr(pipe.transformer.config, "patch_size", 1) or 1
    if isinstance(patch, list | tuple):
        patch = patch[-1]
    return int(temporal), int(spatial) * int(patch)


def _reset(pipe: Any) -> None:
    """After an aborted call: offload models again and clear step caches' state."""
    with contextlib.suppress(Exception):
        pipe.maybe_free_model_hooks()


def _wrong_input(model: str, info: ModelInfo, kind: InputKind) -> str:
    if kind == "image":
        return (
            f"'{model}' is served by {info.label}, a text-to-video checkpoint that cannot "
            "start from an image; the operator must configure an image-to-video checkpoint "
            "for it (REELFORGE_DIFFUSERS_MODELS, e.g. Wan2.1-I2V, Wan2.2-TI2V-5B or LTX-Video)"
        )
    return (
        f"'{model}' is served by {info.label}, an image-to-video checkpoint that needs an "
        "input image; the operator must configure a text-to-video checkpoint for it "
        "(REELFORGE_DIFFUSERS_MODELS, e.g. Wan2.1-T2V, Wan2.2-TI2V-5B or LTX-Video)"
    )
