"""Fallback soundtracks from a text-to-audio pipeline (Stable Audio Open).

LTX-2 checkpoints make the soundtrack with the picture (the engine uses theirs). Other
video checkpoints are silent, so for them ``generate_audio`` is served by a second,
independent model when ``diffusers_audio_model_path`` names one: it hears only the
(enhanced) prompt, not the picture, and renders exactly the clip's duration. The
pipeline loads on first use and stays resident next to the video pipelines (about
2.5 GB in half precision for Stable Audio Open 1.0); the offload and dtype settings apply
to it as to them.

Stable Audio Open 1.0's published scheduler (``CosineDPMSolverMultistepScheduler``)
needs the ``torchsde`` package; without it the model cannot load and the job says so.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from reelforge.engines.diffusers.loading import (
    LoadOptions,
    dtype_argument,
    label_for,
    missing_hint,
    quiet_progress_bars,
    read_configs,
)
from reelforge.errors import ServiceUnavailable
from reelforge.media.clip import Audio

log = logging.getLogger(__name__)

DEFAULT_AUDIO_STEPS = 100
"""Stable Audio Open's recommended minimum; 200 is a little cleaner and twice as slow."""
DEFAULT_AUDIO_GUIDANCE = 7.0


def fit_length(samples: np.ndarray, length: int) -> np.ndarray:
    """``samples`` (channels, n) trimmed or padded with silence to exactly ``length``."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 1:
        samples = samples[np.newaxis, :]
    if samples.shape[1] >= length:
        samples = samples[:, :length]
    else:
        samples = np.pad(samples, ((0, 0), (0, length - samples.shape[1])))
    samples = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.ascontiguousarray(np.clip(samples, -1.0, 1.0), dtype=np.float32)


class AudioGenerator:
    """Text to a soundtrack of a given length; loads its pipeline once, on first use."""

    def __init__(self, source: str, options: LoadOptions, steps: int | None = None) -> None:
        self.source = source
        self.label = label_for(source)
        self.options = options
        self.steps = steps or DEFAULT_AUDIO_STEPS
        self.loads = 0
        self._pipe: Any = None
        self._lock = threading.Lock()

    def generate(
        self,
        prompt: str,
        negative_prompt: str | None,
        seconds: float,
        seed: int,
        report: Callable[[float], None],
    ) -> Audio:
        """A soundtrack exactly ``seconds`` long; ``report`` gets the fraction of steps done.

        Past the model's longest output (47 s for Stable Audio Open) the rest is silence.
        """
        import torch

        pipe = self._pipeline()
        sample_rate = int(pipe.vae.config.sampling_rate)
        longest = pipe.transformer.config.sample_size * pipe.vae.hop_length / sample_rate
        device = self.options.resolved_device()
        generator = torch.Generator(device=device).manual_seed(seed)

        def on_step(step: int, _timestep: Any, _latents: Any) -> None:
            report(min(1.0, (step + 1) / self.steps))

        result = pipe(
            prompt,
            negative_prompt=negative_prompt,
            audio_end_in_s=min(float(seconds), float(longest)),
            num_inference_steps=self.steps,
            guidance_scale=DEFAULT_AUDIO_GUIDANCE,
            generator=generator,
            callback=on_step,
            callback_steps=1,
            output_type="pt",
        )
        waveform = result.audios[0].float().cpu().numpy()
        report(1.0)
        return Audio(fit_length(waveform, round(seconds * sample_rate)), sample_rate=sample_rate)

    def close(self) -> None:
        with self._lock:
            self._pipe = None

    def _pipeline(self) -> Any:
        with self._lock:
            if self._pipe is None:
                self._pipe = self._load()
            return self._pipe

    def _load(self) -> Any:
        import diffusers
        import torch

        index, _ = read_configs(self.source, self.options.allow_download)
        class_name = str(index.get("_class_name", ""))
        pipeline_class = getattr(diffusers, class_name, None)
        if pipeline_class is None or "Audio" not in class_name:
            raise ServiceUnavailable(
                f"the audio model '{self.label}' is a {class_name or 'unknown pipeline'}; "
                "diffusers_audio_model_path needs a text-to-audio pipeline such as "
                "StableAudioPipeline"
            )
        device = self.options.resolved_device()
        dtype = torch.float32 if device == "cpu" else getattr(torch, self.options.dtype)
        try:
            quiet_progress_bars()
            pipe = pipeline_class.from_pretrained(
                self.source,
                local_files_only=not self.options.allow_download,
                **dtype_argument(dtype),
            )
        except ImportError as error:
            raise ServiceUnavailable(
                f"the audio model '{self.label}' needs a package that is missing: {error}"
            ) from None
        except (OSError, ValueError) as error:
            raise ServiceUnavailable(
                f"the audio model '{self.label}' could not be loaded: {error}"
                f"{missing_hint(self.options.allow_download)}"
            ) from None
        self.loads += 1
        pipe.set_progress_bar_config(disable=True)
        offload = self.options.cpu_offload
        if offload != "none" and device != "cpu":
            try:
                if offload == "model":
                    pipe.enable_model_cpu_offload(device=device)
                else:
                    pipe.enable_sequential_cpu_offload(device=device)
                return pipe
            except (ImportError, RuntimeError, ValueError) as error:
                log.warning("audio CPU offload unavailable (%s)", error)
        return pipe.to(device)
