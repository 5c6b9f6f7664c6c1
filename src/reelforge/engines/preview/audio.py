"""A short synthesized soundtrack: pad chords, a bass line, a soft beat and a noise bed.

Key, mode and tempo follow the scene (dark palettes play in minor, busy prompts play
faster and with a beat), the seed picks the root and the details. Everything is
vectorised numpy and deterministic for a given random generator. The mix is normalised
to a fixed peak below full scale, with short fades, so it never clips.
"""

from __future__ import annotations

import math

import numpy as np

from reelforge.engines.preview.scene import Scene
from reelforge.media.clip import AUDIO_SAMPLE_RATE_HZ

PEAK = 0.85
"""Peak sample value after normalisation (the contract allows at most 0.9)."""
FADE_IN_S = 0.25
FADE_OUT_S = 0.6
ROOTS_HZ = (98.0, 110.0, 123.47, 130.81, 146.83, 164.81, 174.61)
"""G2 .. F3: roots low enough for a warm pad, high enough for laptop speakers."""
MAJOR = ((0, 4, 7, 12), (7, 11, 14, 19), (9, 12, 16, 21), (5, 9, 12, 17))
"""I - V - vi - IV, in semitones above the root."""
MINOR = ((0, 3, 7, 12), (8, 12, 15, 20), (3, 7, 10, 15), (10, 14, 17, 22))
"""i - VI - III - VII."""
WATERY = frozenset({"water", "rain", "bubbles", "fog"})


def soundtrack(
    scene: Scene,
    duration_s: float,
    rng: np.random.Generator,
    sample_rate: int = AUDIO_SAMPLE_RATE_HZ,
) -> np.ndarray:
    """Stereo float32 samples, shape (2, round(duration_s * sample_rate)), peak ``PEAK``."""
    count = round(duration_s * sample_rate)
    t = np.arange(count, dtype=np.float64) / sample_rate
    minor = scene.dark or bool({"night", "abyss", "storm", "space"} & set(scene.palette_names))
    progression = MINOR if minor else MAJOR
    root = ROOTS_HZ[int(rng.integers(len(ROOTS_HZ)))]
    bpm = 66 + 60 * scene.energy + float(rng.uniform(-4, 4))
    beat_s = 60.0 / bpm
    bar_s = 4 * beat_s
    chord_index = (t // bar_s).astype(np.int64) % len(progression)

    mix = np.zeros((2, count), dtype=np.float64)
    mix += 0.5 * _pad(t, chord_index, progression, root, bar_s, rng)
    mix += 0.35 * _bass(t, chord_index, progression, root, beat_s, sample_rate)
    if scene.energy >= 0.3:
        mix += (0.25 + 0.35 * scene.energy) * _beat(t, beat_s, scene.energy, rng)
    watery = bool(WATERY & scene.elements)
    mix += (0.3 if watery else 0.12) * _noise_bed(count, t, rng, sample_rate, watery)

    mix *= _fades(count, sample_rate)[None, :]
    peak = float(np.max(np.abs(mix)))
    if peak > 0:
        mix *= PEAK / peak
    return mix.astype(np.float32)


def _pad(
    t: np.ndarray,
    chord_index: np.ndarray,
    progression: tuple[tuple[int, ...], ...],
    root: float,
    bar_s: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Detuned, slightly bright tones per chord note; each bar swells in and out."""
    out = np.zeros((2, t.shape[0]))
    position = (t % bar_s) / bar_s
    swell = np.minimum(1.0, position / 0.15) * np.minimum(1.0, (1.0 - position) / 0.12 + 0.35)
    for chord_number, chord in enumerate(progression):
        active = chord_index == chord_number
        if not active.any():
            continue
        span = t[active]
        for semitones in chord:
            freq = root * 2 ** (semitones / 12)
            for channel, detune in enumerate((0.997, 1.003)):
                phase = float(rng.uniform(0, 2 * math.pi))
                tone = np.zeros(span.shape[0])
                for harmonic, weight in ((1, 1.0), (2, 0.35), (3, 0.15), (4, 0.06)):
                    tone += weight * np.sin(2 * math.pi * freq * detune * harmonic * span + phase)
                out[channel, active] += tone
    return out * swell[None, :] / 8.0


def _bass(
    t: np.ndarray,
    chord_index: np.ndarray,
    progression: tuple[tuple[int, ...], ...],
    root: float,
    beat_s: float,
    sample_rate: int,
) -> np.ndarray:
    semitones = np.array([chord[0] for chord in progression])[chord_index]
    freq = root / 2 * 2 ** (semitones / 12)
    phase = 2 * math.pi * np.cumsum(freq) / sample_rate
    envelope = np.exp(-(t % (2 * beat_s)) / (1.2 * beat_s))
    tone = np.sin(phase) * (0.6 + 0.4 * envelope)
    return np.stack([tone, tone])


def _beat(t: np.ndarray, beat_s: float, energy: float, rng: np.random.Generator) -> np.ndarray:
    """A kick on every beat and, for busier scenes, a short noise hat on the off-beats."""
    since = t % beat_s
    sweep_s = 0.04
    kick = np.sin(2 * math.pi * (45 * since + 80 * sweep_s * (1 - np.exp(-since / sweep_s))))
    kick *= np.exp(-since / 0.18)
    out = np.stack([kick, kick])
    if energy >= 0.45:
        half = beat_s / 2
        since_half = (t + half) % beat_s
        noise = rng.standard_normal((2, t.shape[0]))
        bright = noise - np.roll(noise, 1, axis=1)
        out += 0.12 * bright * np.exp(-since_half / 0.035)[None, :]
    return out


def _noise_bed(
    count: int, t: np.ndarray, rng: np.random.Generator, sample_rate: int, watery: bool
) -> np.ndarray:
    """Low-passed noise that swells slowly: wind, or surf when the scene has water."""
    noise = rng.standard_normal((2, count))
    spectrum = np.fft.rfft(noise, axis=1)
    freqs = np.fft.rfftfreq(count, 1.0 / sample_rate)
    cutoff = 900.0 if watery else 500.0
    spectrum *= 1.0 / (1.0 + (freqs / cutoff) ** 2)[None, :]
    spectrum[:, freqs < 30.0] = 0
    filtered = np.fft.irfft(spectrum, n=count, axis=1)
    filtered /= max(float(np.max(np.abs(filtered))), 1e-9)
    rate = 0.12 if watery else 0.07
    phase = float(rng.uniform(0, 2 * math.pi))
    swell = 0.55 + 0.45 * np.sin(2 * math.pi * rate * t + phase)
    return filtered * swell[None, :]


def _fades(count: int, sample_rate: int) -> np.ndarray:
    envelope = np.ones(count)
    fade_in = min(count, round(FADE_IN_S * sample_rate))
    fade_out = min(count, round(FADE_OUT_S * sample_rate))
    if fade_in:
        envelope[:fade_in] *= np.linspace(0.0, 1.0, fade_in) ** 2
    if fade_out:
        envelope[count - fade_out :] *= np.linspace(1.0, 0.0, fade_out) ** 2
    return envelope
