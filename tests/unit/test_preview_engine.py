"""The preview engine: determinism, prompt-driven looks, camera moves, audio, pacing."""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reelforge.engines.base import Engine, GenerationRequest, Inputs, JobContext
from reelforge.engines.preview import PreviewEngine
from reelforge.engines.preview.engine import default_render_threads
from reelforge.engines.preview.image import ImageToVideo, ease
from reelforge.errors import Interruption, JobInterrupted
from reelforge.media.clip import Clip
from reelforge.media.encode import encode_mp4, probe_mp4
from reelforge.media.fit import fit_frame
from reelforge.media.resample import place

pytestmark = pytest.mark.unit

SMALL = (320, 180)


def request(
    prompt: str = "a quiet valley",
    *,
    seed: int = 7,
    size: tuple[int, int] = SMALL,
    seconds: int = 1,
    negative: str | None = None,
    audio: bool = False,
    model: str = "veo2",
) -> GenerationRequest:
    return GenerationRequest(
        model=model,
        prompt=prompt,
        negative_prompt=negative,
        duration_seconds=seconds,
        width=size[0],
        height=size[1],
        seed=seed,
        generate_audio=audio,
    )


def render(req: GenerationRequest, inputs: Inputs | None = None) -> list[np.ndarray]:
    clip = PreviewEngine().generate(req, inputs or Inputs(), JobContext())
    assert clip.frames is not None
    return list(clip.frames)


def digest(frames: list[np.ndarray]) -> str:
    sha = hashlib.sha256()
    for frame in frames:
        sha.update(frame.tobytes())
    return sha.hexdigest()


def consecutive_diffs(frames: list[np.ndarray]) -> list[float]:
    return [
        float(np.abs(b.astype(np.int16) - a.astype(np.int16)).mean())
        for a, b in itertools.pairwise(frames)
    ]


def mean_rgb(frames: list[np.ndarray]) -> np.ndarray:
    return np.mean([frame.reshape(-1, 3).mean(axis=0) for frame in frames], axis=0)


def position_image(size: tuple[int, int] = (640, 400)) -> Image.Image:
    """Red encodes x and green encodes y, so a frame tells where the camera looks."""
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width]
    pixels = np.stack(
        [xs * 255 // (width - 1), ys * 255 // (height - 1), np.full_like(xs, 128)], axis=-1
    )
    return Image.fromarray(pixels.astype(np.uint8))


def test_implements_the_engine_protocol() -> None:
    engine = PreviewEngine()
    assert isinstance(engine, Engine)
    assert engine.name == "preview"
    caps = engine.capabilities("veo2")
    assert {"text", "image", "last_frame"} <= caps.inputs
    engine.load()
    engine.close()


def test_generate_is_lazy() -> None:
    calls: list[float] = []
    job = JobContext(on_report=lambda f, s: calls.append(f))
    clip = PreviewEngine().generate(request(), Inputs(), job)
    assert isinstance(clip.frames, Iterator)
    assert calls == []
    assert (clip.width, clip.height, clip.frame_count, clip.fps) == (320, 180, 24, 24)
    assert clip.audio is None
    assert "palette" in str(clip.facts["preview_scene"])


@pytest.mark.parametrize("size", [(320, 180), (180, 320), (256, 256)])
def test_frames_have_the_declared_shape_and_count(size: tuple[int, int]) -> None:
    frames = render(request("a dragon over the sea", size=size, seconds=1))
    assert len(frames) == 24
    for frame in frames:
        assert frame.shape == (size[1], size[0], 3)
        assert frame.dtype == np.uint8


def test_same_request_is_bit_identical_and_seed_changes_the_clip() -> None:
    first = render(request("a fox crosses a snowy forest", seed=11))
    again = render(request("a fox crosses a snowy forest", seed=11))
    other = render(request("a fox crosses a snowy forest", seed=12))
    assert digest(first) == digest(again)
    assert digest(first) != digest(other)
    difference = np.abs(first[0].astype(np.int16) - other[0].astype(np.int16)).mean()
    assert difference > 3, "different seeds should look visibly different"


@pytest.mark.parametrize(
    ("prompt", "negative"),
    [
        ("a dragon flies over a fiery sunset", None),
        ("deep ocean at night", None),
        ("", None),
        ("space nebula", None),
        ("a neon city skyline at night", None),
        ("a car drives through the desert", None),
        ("a sunset over the mountains", "sun, mountains, clouds, water, fog, particles, stars"),
    ],
)
def test_consecutive_text_to_video_frames_always_differ(prompt: str, negative: str | None) -> None:
    frames = render(request(prompt, negative=negative, seconds=2))
    diffs = consecutive_diffs(frames)
    assert min(diffs) > 0.1, f"a static stretch at frame {int(np.argmin(diffs))}"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_prompt_words_pick_the_palette(seed: int) -> None:
    warm = mean_rgb(render(request("a fiery sunset", seed=seed)))
    cool = mean_rgb(render(request("deep ocean at night", seed=seed)))
    assert warm[0] > warm[2] + 20
    assert cool[2] > cool[0] + 20


def test_black_and_white_prompts_render_greyscale() -> None:
    frames = render(request("black and white film of a harbour with boats"))
    for frame in frames[::6]:
        assert np.array_equal(frame[..., 0], frame[..., 1])
        assert np.array_equal(frame[..., 1], frame[..., 2])


def test_negative_prompt_removes_elements() -> None:
    prompt = "a dragon flies over the mountains at sunset"
    with_all = render(request(prompt))
    without = render(request(prompt, negative="dragon"))
    assert digest(with_all) != digest(without)
    clip = PreviewEngine().generate(request(prompt, negative="dragon"), Inputs(), JobContext())
    assert "subject" not in str(clip.facts["preview_scene"])
    assert "subject" in str(PreviewEngine().generate(request(prompt), Inputs(), JobContext()).facts)


def test_image_to_video_starts_exactly_on_the_fitted_image() -> None:
    image = position_image((500, 500))
    frames = render(request("a calm shot", model="veo2/image-to-video"), Inputs(image=image))
    assert len(frames) == 24
    assert np.array_equal(frames[0], np.asarray(fit_frame(image, SMALL)))
    assert not np.array_equal(frames[1], frames[0])
    diffs = consecutive_diffs(frames)
    assert min(diffs) > 0.05, "the camera must keep moving until the last frame"


def test_image_to_video_ends_exactly_on_the_tail_image() -> None:
    head, tail = position_image(), Image.new("RGB", (300, 500), (20, 200, 60))
    frames = render(request("zoom in", seconds=2), Inputs(image=head, last_frame=tail))
    assert np.array_equal(frames[0], np.asarray(fit_frame(head, SMALL)))
    assert np.array_equal(frames[-1], np.asarray(fit_frame(tail, SMALL)))
    greens = [frame[..., 1].mean() - frame[..., 0].mean() for frame in frames]
    assert greens[-2] > greens[len(frames) // 2] > greens[0]


def _last_frame(prompt: str) -> np.ndarray:
    frames = render(request(prompt, seconds=1), Inputs(image=position_image()))
    return frames[-1].astype(np.float64)


def _x_slope(frame: np.ndarray) -> float:
    """Red gained per pixel across the middle row: > 1 means the picture was magnified less."""
    row = frame[frame.shape[0] // 2, frame.shape[1] // 4 : 3 * frame.shape[1] // 4, 0]
    return float(np.polyfit(np.arange(row.size), row, 1)[0])


def test_camera_moves_follow_the_prompt() -> None:
    start = np.asarray(fit_frame(position_image(), SMALL)).astype(np.float64)
    slope0 = _x_slope(start)
    centre_red = start[:, :, 0].mean()
    centre_green = start[:, :, 1].mean()

    zoom_in = _last_frame("slow zoom in on the valley")
    zoom_out = _last_frame("zoom out to reveal the valley")
    pan_left = _last_frame("pan left across the valley")
    pan_right = _last_frame("pan right across the valley")
    tilt_up = _last_frame("tilt up to the sky")

    assert _x_slope(zoom_in) < 0.93 * slope0
    assert _x_slope(zoom_out) > 1.1 * slope0
    assert abs(zoom_in[:, :, 0].mean() - centre_red) < 4
    assert pan_left[:, :, 0].mean() < centre_red - 8
    assert pan_right[:, :, 0].mean() > centre_red + 8
    assert tilt_up[:, :, 1].mean() < centre_green - 8
    assert abs(tilt_up[:, :, 0].mean() - centre_red) < 4


@pytest.mark.parametrize("size", [(1280, 720), (720, 1280), (1920, 1080)])
def test_camera_windows_are_placed_within_a_tenth_of_a_pixel(size: tuple[int, int]) -> None:
    """Every move, gentle to dramatic: swscale places each window (``media.resample``) close
    enough that slow moves glide; the canvas's spare keeps the tightest framing off ratio 1,
    where only whole-pixel offsets exist (a strong zoom in would step by up to 0.7 px)."""
    image = Image.new("RGB", (64, 36))
    for prompt in ("a valley", "zoom in fast", "slow pan left", "tilt down", "orbit, dramatic"):
        video = ImageToVideo(image, None, size, 120, prompt, np.random.default_rng(1))
        camera = video.head
        _, padded_h, padded_w = camera.canvas.planes.shape
        errors = []
        for index in range(1, 119):
            left, top, right, bottom = camera.box(video.window(ease(index / 119)))
            errors.append(place(left, right - left, size[0], camera.canvas.pad, padded_w).error)
            errors.append(place(top, bottom - top, size[1], camera.canvas.pad, padded_h).error)
        assert max(errors) < 0.13, prompt
        assert float(np.mean(errors)) < 0.04, prompt


def test_audio_is_exact_stereo_bounded_and_deterministic() -> None:
    engine = PreviewEngine()
    req = request("waves crash on a beach at sunset", seconds=2, audio=True)
    first = engine.generate(req, Inputs(), JobContext()).audio
    again = engine.generate(req, Inputs(), JobContext()).audio
    other = engine.generate(
        request(req.prompt, seconds=2, audio=True, seed=99), Inputs(), JobContext()
    )
    assert first is not None and again is not None and other.audio is not None
    samples = first.samples
    assert first.sample_rate == 48_000
    assert samples.shape == (2, 2 * 48_000)
    assert samples.dtype == np.float32
    assert np.abs(samples).max() <= 0.9
    assert np.sqrt(np.mean(samples**2)) > 0.05
    assert not np.array_equal(samples[0], samples[1]), "stereo, not two copies of mono"
    assert np.array_equal(samples, again.samples)
    assert not np.array_equal(samples, other.audio.samples)
    quiet_start = np.abs(samples[:, :240]).max()
    assert quiet_start < np.abs(samples).max() / 4, "fades in"


def test_latency_is_spread_over_the_frames() -> None:
    engine = PreviewEngine(latency_seconds=0.3)
    calls: list[tuple[float, float]] = []
    began = time.monotonic()
    job = JobContext(on_report=lambda f, s: calls.append((time.monotonic(), f)))
    clip = engine.generate(request(), Inputs(), job)
    assert time.monotonic() - began < 0.3, "generate itself must not wait"
    assert clip.frames is not None
    frames = list(clip.frames)
    elapsed = time.monotonic() - began
    assert len(frames) == 24
    assert elapsed >= 0.3
    halfway = next(stamp for stamp, fraction in calls if fraction >= 0.5)
    assert halfway - began >= 0.12, "the wait is spread out, not all at the start"


def test_progress_is_monotonic_and_reaches_one() -> None:
    calls: list[tuple[float, str]] = []
    job = JobContext(on_report=lambda f, s: calls.append((f, s)))
    clip = PreviewEngine().generate(request(seconds=2), Inputs(), job)
    assert clip.frames is not None
    list(clip.frames)
    fractions = [fraction for fraction, _ in calls]
    assert {stage for _, stage in calls} == {"rendering"}
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0
    assert len(fractions) > 10


def test_cancellation_aborts_rendering_and_encoding(tmp_path: Path) -> None:
    def cancel_midway(fraction: float, _stage: str) -> None:
        if fraction >= 0.5:
            job.cancel(Interruption.CANCELLED)

    job = JobContext(on_report=cancel_midway)
    clip = PreviewEngine().generate(request(seconds=2), Inputs(), job)
    path = tmp_path / "cancelled.mp4"
    with pytest.raises(JobInterrupted) as stopped:
        encode_mp4(clip, path)
    assert stopped.value.reason is Interruption.CANCELLED
    assert not path.exists()


def test_cancellation_ends_an_emulated_latency_at_once() -> None:
    job = JobContext()
    clip = PreviewEngine(latency_seconds=60).generate(request(seconds=2), Inputs(), job)
    assert clip.frames is not None
    frames = iter(clip.frames)
    next(frames)
    timer = threading.Timer(0.2, job.cancel, args=(Interruption.CANCELLED,))
    began = time.monotonic()
    timer.start()
    with pytest.raises(JobInterrupted):
        list(frames)
    assert time.monotonic() - began < 5


def test_full_pipeline_at_720p(tmp_path: Path) -> None:
    """A real-size clip through render and encode; prints the timing (no threshold)."""
    req = request("a dragon flies over a fiery sunset", size=(1280, 720), seconds=5, audio=True)
    began = time.perf_counter()
    clip: Clip = PreviewEngine().generate(req, Inputs(), JobContext())
    result = encode_mp4(clip, tmp_path / "720p.mp4", preset="veryfast", threads=1)
    elapsed = time.perf_counter() - began
    print(f"\n720p 5 s text-to-video with audio, render + encode (1 thread): {elapsed:.2f} s")
    probe = probe_mp4(tmp_path / "720p.mp4")
    assert result.frame_count == probe.frame_count == 120
    assert (probe.width, probe.height, probe.fps) == (1280, 720, 24.0)
    assert probe.audio_codec == "aac"
    assert probe.faststart


@pytest.mark.parametrize(
    ("model", "inputs"),
    [
        ("veo2", None),
        ("veo2", "zoom"),
        ("veo2/image-to-video", "image"),
        ("veo2/image-to-video", "push"),
    ],
)
def test_rendering_on_several_threads_gives_the_same_frames(model: str, inputs: str | None) -> None:
    prompt = {"zoom": "slow zoom in on a desert", "push": "push in on the harbour"}.get(
        inputs or "", "a quiet valley"
    )
    given = Inputs()
    if inputs in ("image", "push"):
        ramp = np.linspace(0, 255, 640 * 480 * 3).reshape(480, 640, 3).astype(np.uint8)
        given = Inputs(image=Image.fromarray(ramp))
    req = request(prompt, model=model)
    one, three = (
        list(PreviewEngine(render_threads=threads).generate(req, given, JobContext()).frames)
        for threads in (1, 3)
    )
    assert digest(one) == digest(three)


@pytest.mark.parametrize(("cores", "threads"), [(1, 1), (2, 1), (3, 1), (4, 2), (64, 2)])
def test_one_render_thread_per_two_cores(monkeypatch, cores: int, threads: int) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert default_render_threads() == threads
    assert PreviewEngine().render_threads == threads
