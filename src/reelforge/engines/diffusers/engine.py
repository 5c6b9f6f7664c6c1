"""The ``diffusers`` engine: open-weight text- and image-to-video on a local GPU.

A request is served by the checkpoint configured for its published model
(``diffusers_models[model]``, else ``diffusers_model_path``): Wan 2.1/2.2 (VACE included),
LTX-Video, LTX-2 or HunyuanVideo 1.5 in diffusers format (see :mod:`.families`), sampled
with its official recipe (:mod:`.recipes`). A clip longer than one pass is made of
segments, each continuing the last frames of the one before. Text input runs the family's
text-to-video pipeline and image input its image-to-video one; a checkpoint that serves
both (Wan2.2 TI2V-5B, LTX-Video) builds the second pipeline over the first one's
components, so the weights are in memory once.

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
import dataclasses
import inspect
import itertools
import logging
import math
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image

from reelforge.catalog import MODELS
from reelforge.engines.base import Capabilities, GenerationRequest, Inputs, JobContext
from reelforge.engines.diffusers import acceleration
from reelforge.engines.diffusers.acceleration import ModelSpeed
from reelforge.engines.diffusers.audio import AudioGenerator, fit_length
from reelforge.engines.diffusers.conditioning import (
    Known,
    first_frame,
    last_frames,
    vace_arguments,
)
from reelforge.engines.diffusers.families import (
    WAN_VACE,
    InputKind,
    ModelInfo,
    Size,
    configured,
    native_frames,
    native_size,
)
from reelforge.engines.diffusers.loading import (
    LoadOptions,
    ModelStore,
    report_meters,
    require_extra,
    start_meters,
)
from reelforge.engines.diffusers.recipes import Sampling, resolve
from reelforge.engines.diffusers.resample import output_frames
from reelforge.errors import ConfigurationError, EngineError, ServiceUnavailable
from reelforge.media.clip import Audio, Clip
from reelforge.media.fit import fit_frame
from reelforge.media.videos import output_frame_count, video_frames
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
WARMUP_STEPS = 2
"""Denoising steps of the warm-up generation: compilation and kernel selection happen on
the first step; the second runs the compiled code once."""
WARMUP_SECONDS = 5
"""Length of the warm-up clip: the frame count most jobs of the default duration use."""
LOCK_POLL_SECONDS = 1.0
"""How often a job waiting for the GPU checks whether it was cancelled."""
MIN_SIZE_MULTIPLE = {"wan": 16, "wan-ti2v": 32, "ltx": 32, "ltx2": 32, "wan-vace": 16}
"""Sides the pipelines accept (their ``check_inputs``), whatever the VAE's ratio."""
TIME_RESAMPLING = "blend"

BUDGET_LOAD_SECONDS = 900.0
"""Time budget before the first step: loading a checkpoint (a 14B pair from a network
volume takes minutes), compiling, waiting for the GPU behind one other job's load."""
BUDGET_STEP_SECONDS_PER_MVOXEL = 0.5
"""Budget of one denoising step per million native pixels x frames, with guidance's two
passes: the official Wan 14B 720p 5 s recipe (50 steps of 1280x720x81) took 974 s on an
H200, 0.26; twice that covers a slower GPU, a VAE decode per segment and the encoder."""
BUDGET_OFFLOAD_FACTOR = {"none": 1.0, "model": 1.3, "group": 1.5, "sequential": 10.0}
"""How much longer a step takes with each CPU offload mode (weights streamed per call)."""
BUDGET_TEMPORAL_STEP = 4
"""Frames per latent frame assumed by the budget: the smallest VAE ratio (Wan), so the
estimate never counts fewer frames than the pipeline makes."""


TIMESTEP_PIPELINES = frozenset({"LTXConditionPipeline"})
"""Pipelines whose ``timesteps`` argument sets the schedule (LTXPipeline always passes its
own sigmas too, and diffusers refuses both), so a distilled schedule can be given."""


@dataclass(frozen=True)
class Plan:
    """What the pipeline calls of one job generate natively."""

    size: Size
    frames: int
    """Frames of the whole native clip (the segments joined)."""
    segments: tuple[int, ...]
    """Frames generated by each pipeline call; each after the first starts from the last
    frame of the one before, which it repeats (dropped when joining)."""
    sampling: Sampling
    overlap: int = 1
    """Frames each segment repeats from the one before (VACE: a whole latent frame more)."""
    context: tuple[np.ndarray, ...] = ()
    """The end of an input video that the first segment continues (video extension)."""

    @property
    def fps(self) -> int:
        return self.sampling.fps

    @property
    def steps(self) -> int:
        return self.sampling.steps

    @property
    def guidance(self) -> float:
        return self.sampling.guidance


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
        self._warming = False

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
                if info.references:
                    kinds.add("reference_images")
                if info.extends:
                    kinds.add("video")
        return Capabilities(inputs=frozenset(kinds), enhances_prompt=False)

    def time_budget(self, request: GenerationRequest) -> float | None:
        """Seconds one attempt of ``request`` may take, from what the engine knows without
        loading weights: the model's ``timeout_seconds`` if set, else an estimate that
        grows with steps, native frames (segments' repeated frames too), size and offload
        mode, never below the global ``job_timeout_seconds``. Step caches are ignored (the
        budget is an upper bound); ``None`` (the global limit) when no model is set up."""
        entry = self._entry(request.model)
        if entry is not None and entry.timeout_seconds is not None:
            return entry.timeout_seconds
        try:
            info = self.models.inspect(self._source_for(request.model))
        except ServiceUnavailable:
            return None
        if entry is not None:
            info = configured(info, entry.resolution, entry.distilled)
        sampling = resolve(info.recipe, entry, self.settings, _adapter_recipe(entry))
        step = BUDGET_TEMPORAL_STEP
        frames = native_frames(request.duration_seconds, sampling.fps, step, 1 << 30)
        longest = native_frames(10**6, sampling.fps, step, sampling.max_frames)
        overlap = step + 1 if info.family is WAN_VACE else 1
        frames = sum(segment_lengths(frames, longest, step, overlap))
        width, height = native_size(info.sizes, (request.width, request.height), 16, self.work_area)
        passes = 1.0 if sampling.guidance > 1.0 else 0.5
        step_seconds = BUDGET_STEP_SECONDS_PER_MVOXEL * width * height * frames / 1e6 * passes
        offload = BUDGET_OFFLOAD_FACTOR.get(self.options.cpu_offload, 1.0)
        estimate = BUDGET_LOAD_SECONDS + sampling.steps * step_seconds * offload
        return max(estimate, self.settings.job_timeout_seconds)

    def load(self) -> None:
        """At worker start: the extra is installed and every speed option can run here.

        An attention backend, FP8, compile or LoRA that cannot work stops the worker with
        the reason (``ConfigurationError``), not each job. With ``diffusers_warmup`` (or
        ``diffusers_compile``) every configured checkpoint is loaded and runs one short
        generation now, so the first user job pays neither loading nor compilation;
        otherwise weights load with the first job.
        """
        require_extra()
        options = self.options
        device = options.resolved_device()
        acceleration.check_attention_backend(
            options.attention_backend, device, options.allow_download
        )
        acceleration.check_quantization(options.quantization, device)
        acceleration.check_compile(options.compile, device)
        for model in self.settings.diffusers_models:
            entry = self._entry(model)
            if entry is not None:
                acceleration.check_lora(entry.lora, f"{model} transformer")
                acceleration.check_lora(entry.lora_2, f"{model} transformer_2")
        if self.settings.diffusers_warmup or options.compile:
            self.warm_up()

    def warm_up(self) -> float:
        """One short generation per configured checkpoint (and LoRA); the seconds it took.

        At the native size and frame count of a 16:9 720P clip of ``WARMUP_SECONDS`` (the
        shapes compiled kernels are specialised for) with ``WARMUP_STEPS`` steps.
        """
        started = time.monotonic()
        seen: set[tuple[str, ModelSpeed]] = set()
        for model, source in sorted(self._sources().items()):
            key = (source, ModelSpeed.of(self._entry(model)))
            if key in seen:
                continue
            seen.add(key)
            request = GenerationRequest(
                model=model,
                prompt="warm-up",
                duration_seconds=WARMUP_SECONDS,
                width=1280,
                height=720,
                seed=0,
            )
            try:
                info = self.models.inspect(source)
            except ServiceUnavailable as error:
                raise ConfigurationError(f"warm-up of {model}: {error.message}") from None
            photo = None if info.text else PIL.Image.new("RGB", (1280, 720), (128, 128, 128))
            last = photo if info.last_frame else None
            self._warming = True
            try:
                clip = self.generate(request, Inputs(image=photo, last_frame=last), JobContext())
                for _ in clip.frames or ():
                    pass
            except ServiceUnavailable as error:
                raise ConfigurationError(f"warm-up of {model}: {error.message}") from None
            finally:
                self._warming = False
        seconds = time.monotonic() - started
        log.info("diffusers warm-up done in %.1f s", seconds, extra={"checkpoints": len(seen)})
        return seconds

    def close(self) -> None:
        """Free the pipelines and the GPU memory they held."""
        with self._gpu:
            self.models.close()
            if self.audio is not None:
                self.audio.close()

    def generate(self, request: GenerationRequest, inputs: Inputs, job: JobContext) -> Clip:
        source = self._source_for(request.model)
        kind: InputKind = "image" if inputs.image is not None else "text"
        entry = self._entry(request.model)
        info = self.models.inspect(source)
        if entry is not None:
            info = configured(info, entry.resolution, entry.distilled)
        _check_inputs(request, info, inputs)
        if not info.supports(kind):
            raise EngineError(_wrong_input(request.model, info, kind))
        sampling = resolve(info.recipe, entry, self.settings, _adapter_recipe(entry))
        if self._warming:
            sampling = dataclasses.replace(sampling, steps=WARMUP_STEPS, timesteps=None)
        _check_length(request, info, sampling)
        facts: dict[str, object] = {"diffusers_model": info.label, "family": info.family.name}
        with self._exclusive(job):
            job.report(0.0, "loading model")
            speed = ModelSpeed.of(entry)
            model, pipe = self.models.pipeline(source, kind, speed)
            job.raise_if_cancelled()
            plan = self._plan(info, pipe, request, sampling, inputs)
            if len(plan.segments) > 1 and kind == "text":
                _, follow = self.models.pipeline(source, "image", speed)
            else:
                follow = pipe
            start_meters(model, plan.steps)
            tracks: list[Audio] = []
            video = self._segments(
                pipe, follow, model.device, info, plan, request, inputs, job, facts, tracks
            )
            report_meters(model, facts, request.job_id)
            if request.generate_audio and tracks:
                audio = _joined(tracks, float(request.duration_seconds))
                facts["audio"] = f"generated with the picture by {info.label}"
            else:
                audio = self._soundtrack(request, job, facts)
        facts.update(
            native_frames=int(video.shape[0]),
            native_size=[plan.size[0], plan.size[1]],
            native_fps=plan.fps,
            steps=plan.steps,
            guidance_scale=plan.guidance,
            recipe=sampling.recipe,
            time_resampling=TIME_RESAMPLING,
        )
        if sampling.guidance_2 is not None:
            facts["guidance_scale_2"] = sampling.guidance_2
        if sampling.shift is not None:
            facts["flow_shift"] = sampling.shift
        if len(plan.segments) > 1:
            facts["segments"] = list(plan.segments)

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
        frame_count = request.frame_count
        if inputs.video is not None:
            # An extension is the input video, then what continues it (as Veo returns it).
            given = output_frame_count(inputs.video.duration_seconds, request.fps)
            size = (request.width, request.height)
            frames = itertools.chain(
                video_frames(inputs.video.path, size, given, request.fps), frames
            )
            frame_count += given
            facts["input_video_seconds"] = round(inputs.video.duration_seconds, 3)
        return Clip(
            width=request.width,
            height=request.height,
            frame_count=frame_count,
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

    def _entry(self, model: str) -> DiffusersModel | None:
        """The model's own table in ``diffusers_models``, if it has one."""
        entry = self.settings.diffusers_models.get(model)
        return DiffusersModel.of(entry) if entry is not None else None

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

    def _plan(
        self,
        info: ModelInfo,
        pipe: Any,
        request: GenerationRequest,
        sampling: Sampling,
        inputs: Inputs,
    ) -> Plan:
        temporal, spatial = _compression(pipe)
        multiple = max(MIN_SIZE_MULTIPLE.get(info.family.name, 16), spatial)
        size = native_size(info.sizes, (request.width, request.height), multiple, self.work_area)
        frames = native_frames(request.duration_seconds, sampling.fps, temporal, 1 << 30)
        longest = native_frames(10**6, sampling.fps, temporal, sampling.max_frames)
        # VACE keeps whole latent frames of the clip it continues; I2V keeps one frame.
        overlap = temporal + 1 if info.family is WAN_VACE else 1
        context: tuple[np.ndarray, ...] = ()
        if inputs.video is not None:
            context = tuple(last_frames(inputs.video, size, sampling.fps, overlap))
            frames += len(context) - 1
        return Plan(
            size=size,
            frames=frames,
            segments=segment_lengths(frames, longest, temporal, max(overlap, len(context))),
            sampling=sampling,
            overlap=overlap,
            context=context,
        )

    def _segments(
        self,
        pipe: Any,
        follow: Any,
        device: str,
        info: ModelInfo,
        plan: Plan,
        request: GenerationRequest,
        inputs: Inputs,
        job: JobContext,
        facts: dict[str, object],
        tracks: list[Audio] | None = None,
    ) -> np.ndarray:
        """The native clip: one pipeline call, or segments each continuing the one before
        from its last frames (``plan.overlap``), which it repeats and which are dropped."""
        parts: list[np.ndarray] = []
        count = len(plan.segments)
        for index, frames in enumerate(plan.segments):
            if index:
                joined = parts[-1] if len(parts[-1]) >= plan.overlap else np.concatenate(parts)
                context: Sequence[np.ndarray] = list(joined[-plan.overlap :])
            else:
                context = plan.context
            known = Known(
                context=context,
                first=inputs.image if index == 0 else None,
                last=inputs.last_frame if index == count - 1 else None,
                references=inputs.references,
            )
            video = self._run(
                follow if index else pipe,
                device,
                info,
                plan,
                request,
                known,
                job,
                facts,
                frames=frames,
                seed=request.seed + index,
                share=(index / count, (index + 1) / count),
                tracks=tracks,
            )
            parts.append(video[len(context) :])
            if tracks and index and len(tracks) == index + 1:
                # The repeated frames' sound was heard at the end of the segment before.
                track = tracks[-1]
                skip = round(len(context) / plan.fps * track.sample_rate)
                tracks[-1] = Audio(track.samples[:, skip:], track.sample_rate)
        return parts[0] if count == 1 else np.concatenate(parts)

    def _run(
        self,
        pipe: Any,
        device: str,
        info: ModelInfo,
        plan: Plan,
        request: GenerationRequest,
        known: Known,
        job: JobContext,
        facts: dict[str, object],
        *,
        frames: int,
        seed: int,
        share: tuple[float, float] = (0.0, 1.0),
        tracks: list[Audio] | None = None,
    ) -> np.ndarray:
        """Denoise and decode ``frames`` frames; uint8 (frames, height, width, 3) on the CPU.

        ``share`` is this call's part of the denoising progress (segments split it).
        """
        import torch

        start, end = share

        def on_step(pipeline: Any, index: int, _timestep: Any, tensors: dict) -> dict:
            total = getattr(pipeline, "num_timesteps", None) or plan.steps
            done = min(1.0, (index + 1) / total)
            job.report(DENOISE_END * (start + (end - start) * done), "denoising")
            if done >= 1.0:
                job.report(DENOISE_END * end, "decoding")
            job.raise_if_cancelled()
            return tensors

        sampling = plan.sampling
        width, height = plan.size
        negative = request.negative_prompt
        if not (negative and negative.strip()):
            negative = sampling.negative_prompt or None
            facts["negative_prompt"] = "official default" if negative else "none"
        call: dict[str, Any] = {
            "prompt": request.prompt,
            "negative_prompt": negative,
            "height": height,
            "width": width,
            "num_frames": frames,
            "num_inference_steps": sampling.steps,
            "guidance_scale": sampling.guidance,
            "generator": torch.Generator(device=device).manual_seed(seed),
            "output_type": "pt",
            "callback_on_step_end": on_step,
            "frame_rate": sampling.fps,
            **dict(sampling.call_args),
        }
        if sampling.guidance_2 is not None and pipe.config.get("boundary_ratio") is not None:
            call["guidance_scale_2"] = sampling.guidance_2
        if sampling.timesteps is not None and type(pipe).__name__ in TIMESTEP_PIPELINES:
            call["timesteps"] = list(sampling.timesteps)
        if sampling.shift is not None:
            set_shift(pipe, sampling.shift)
        if info.family is WAN_VACE:
            call.update(vace_arguments(known, plan.size, frames))
            if known.last is not None:
                facts["tail_image"] = "used as the last frame"
        elif (image := first_frame(known, plan.size)) is not None:
            call["image"] = image
            if known.last is not None:
                if info.last_frame:
                    call["last_image"] = fit_frame(known.last, plan.size)
                    facts["tail_image"] = "used as the last frame"
                else:
                    facts["tail_image"] = "ignored: this checkpoint has no last-frame input"
        # Arguments a pipeline does not take (LTX's frame_rate for Wan) are dropped.
        accepted = inspect.signature(pipe.__call__).parameters
        if "guidance_scale" not in accepted:
            set_guidance(pipe, sampling.guidance)
        call = {key: value for key, value in call.items() if key in accepted}
        job.report(DENOISE_END * start, "denoising")
        steps = contextlib.nullcontext()
        if "callback_on_step_end" not in accepted:
            steps = _scheduler_steps(pipe, lambda index: on_step(pipe, index, None, {}))
        try:
            with steps:
                result = pipe(**call)
        except BaseException:
            _reset(pipe)
            raise
        frames = result.frames
        if not isinstance(frames, torch.Tensor):
            frames = torch.from_numpy(np.asarray(frames)).permute(0, 1, 4, 2, 3)
        # In place: at 720p the float clip is over a gigabyte; no second copy of it.
        video = frames[0].clamp_(0, 1).mul_(255).round_().to(torch.uint8).permute(0, 2, 3, 1)
        track = getattr(result, "audio", None)
        if tracks is not None and track is not None and info.audio:
            rate = int(pipe.vocoder.config.output_sampling_rate)
            samples = torch.as_tensor(track)[0].float().cpu().numpy()
            tracks.append(Audio(samples=samples, sample_rate=rate))
        job.report(DENOISE_END * end, "decoding")
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


def segment_lengths(frames: int, longest: int, step: int, overlap: int = 1) -> tuple[int, ...]:
    """Frames of each pipeline call for a clip of ``frames`` frames, none past ``longest``.

    Every call after the first starts from the last ``overlap`` frames of the one before
    (``step * j + 1`` of them), so each adds ``longest - overlap`` new frames; every length
    stays ``step * k + 1``.
    """
    if frames <= longest or longest <= overlap:
        return (frames,)
    count = math.ceil((frames - overlap) / (longest - overlap))
    last = frames - (count - 1) * (longest - overlap)
    return (longest,) * (count - 1) + (last,)


def set_shift(pipe: Any, shift: float) -> None:
    """Give ``pipe`` a scheduler with flow shift ``shift`` (a copy: others keep theirs).

    UniPC names it ``flow_shift``, FlowMatchEuler ``shift``; a scheduler that shifts by
    resolution (``use_dynamic_shifting``, LTX) or has no shift is left alone.
    """
    scheduler = pipe.scheduler
    config = scheduler.config
    if config.get("use_dynamic_shifting"):
        return
    key = next((name for name in ("flow_shift", "shift") if name in config), None)
    if key is None or config[key] == shift:
        return
    pipe.scheduler = type(scheduler).from_config(config, **{key: shift})


def _joined(tracks: list[Audio], seconds: float) -> Audio:
    """The segments' soundtracks one after the other, fitted to ``seconds``."""
    rate = tracks[0].sample_rate
    samples = np.concatenate([track.samples for track in tracks], axis=1)
    return Audio(samples=fit_length(samples, round(seconds * rate)), sample_rate=rate)


def set_guidance(pipe: Any, guidance: float) -> None:
    """Guidance of a pipeline that takes it from its ``guider`` (HunyuanVideo 1.5)."""
    guider = getattr(pipe, "guider", None)
    if guider is not None and getattr(guider, "guidance_scale", guidance) != guidance:
        pipe.guider = guider.new(guidance_scale=guidance)


@contextlib.contextmanager
def _scheduler_steps(pipe: Any, on_step: Any) -> Iterator[None]:
    """Progress and cancellation at every denoising step of a pipeline without a step
    callback: its scheduler's ``step`` reports (and raises when the job must stop)."""
    scheduler = pipe.scheduler
    original = scheduler.step
    count = itertools.count()

    def step(*args: Any, **kwargs: Any) -> Any:
        output = original(*args, **kwargs)
        on_step(next(count))
        return output

    scheduler.step = step
    try:
        yield
    finally:
        del scheduler.step


def _check_inputs(request: GenerationRequest, info: ModelInfo, inputs: Inputs) -> None:
    """Refuse inputs the checkpoint cannot use (the router refuses most before this)."""
    if inputs.last_frame is not None and inputs.image is None and info.family is not WAN_VACE:
        raise EngineError(
            f"'{request.model}' got a last frame without a first frame; the open "
            "first-last checkpoints (Wan FLF2V) need both (image_url and last_image_url); "
            "Wan VACE takes a last frame alone"
        )
    if inputs.references and not info.references:
        raise EngineError(
            f"'{request.model}' is served by {info.label}, which takes no reference images; "
            "the operator may configure a Wan VACE checkpoint for it"
        )
    if inputs.video is not None and not info.extends:
        raise EngineError(
            f"'{request.model}' is served by {info.label}, which cannot extend a video; "
            "the operator may configure a Wan VACE checkpoint for it"
        )


def _check_length(request: GenerationRequest, info: ModelInfo, sampling: Sampling) -> None:
    """Refuse a clip longer than one pass when the checkpoint cannot continue a clip.

    Segments continue from the previous segment's last frame, which needs image input;
    a text-only checkpoint would have to run past its trained length instead.
    """
    if info.image or math.ceil(request.duration_seconds * sampling.fps) < sampling.max_frames:
        return
    longest = (sampling.max_frames - 1) // sampling.fps
    raise EngineError(
        f"'{request.model}' is served by {info.label}, which makes at most {longest} s in "
        f"one pass ({sampling.max_frames} frames at {sampling.fps} fps) and cannot continue "
        f"a clip from its last frame; ask for {longest} s or less, or the operator may "
        "configure a checkpoint that takes images (Wan2.2-TI2V-5B, LTX-Video), which "
        "makes longer clips as segments"
    )


def _adapter_recipe(entry: DiffusersModel | None) -> dict[str, Any] | None:
    """The steps/guidance/shift of a step-distilled LoRA configured for the model."""
    lora = getattr(entry, "lora", None)
    if not lora:
        return None
    try:
        from reelforge.engines.diffusers.acceleration import lora_recipe
    except ImportError:
        return None
    return dict(lora_recipe(lora))


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
