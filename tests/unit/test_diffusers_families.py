"""The families beyond Wan and LTX-Video, on tiny random-weight pipelines saved to disk.

Wan VACE: one checkpoint for text, a first frame, first and last frames, a last frame
alone, reference images and video extension, each shown to reach the pipeline (the
video changes, or known frames come back), and long clips as segments that continue the
last latent frame of the segment before.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tiny_pipelines
from reelforge.engines import EngineRouter
from reelforge.engines.base import Inputs, JobContext, VideoInput
from reelforge.engines.diffusers import DiffusersEngine
from reelforge.engines.diffusers.conditioning import last_frames
from reelforge.engines.diffusers.engine import segment_lengths
from reelforge.errors import EngineError, Interruption, JobInterrupted
from reelforge.media.fit import fit_frame
from reelforge.media.videos import probe_video
from reelforge.settings import DiffusersModel
from tiny_pipelines import request
from video_samples import numbered_frame, write_video

pytestmark = pytest.mark.unit

os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORK_AREA = 48 * 32
NAMES = ("wan_vace", "wan_t2v", "ltx2", "hunyuan15", "hunyuan15_i2v")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pipelines")
    return {name: tiny_pipelines.saved(name, root) for name in NAMES}


@pytest.fixture
def engine_for(settings, models):
    engines: list[DiffusersEngine] = []

    def make(name: str, **table) -> DiffusersEngine:
        entry = DiffusersModel(checkpoint=str(models[name]), steps=2, **table)
        values = {"diffusers_models": dict.fromkeys(MODELS, entry)}
        engine = DiffusersEngine.from_settings(
            settings.model_copy(update=values), work_area=WORK_AREA
        )
        engine.load()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


MODELS = (
    "veo2",
    "google/veo-3.0-i2v",
    "google/veo-3.1-reference-to-video",
    "google/veo3-1-extend-video",
)


def generate(engine, req=None, inputs=None):
    clip = engine.generate(req or request(), inputs or Inputs(), JobContext())
    return np.stack(list(clip.frames)), clip


def picture(color: str, size: tuple[int, int] = (96, 64)) -> Image.Image:
    image = Image.new("RGB", size, color)
    image.paste(Image.new("RGB", (size[0] // 3, size[1] // 3), "white"), (8, 8))
    return image


def difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# -- Wan VACE ---------------------------------------------------------------------------------


def test_vace_offers_every_visual_input(engine_for) -> None:
    engine = engine_for("wan_vace")
    kinds = engine.capabilities("veo2").inputs
    assert kinds == {"text", "image", "last_frame", "reference_images", "video"}
    plain = engine_for("wan_t2v").capabilities("veo2").inputs
    assert "reference_images" not in plain and "video" not in plain


@pytest.fixture
def vace_calls(monkeypatch) -> list[dict]:
    """The keyword arguments of every WanVACEPipeline call (the real call still runs)."""
    from diffusers import WanVACEPipeline

    calls: list[dict] = []
    original = WanVACEPipeline.__call__

    @functools.wraps(original)
    def spy(self, *args, **kwargs):
        calls.append(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(WanVACEPipeline, "__call__", spy)
    return calls


def masks(call: dict) -> list[int]:
    """Per frame of the conditioning video: 0 when known (black mask), 255 to generate."""
    return [int(np.asarray(mask).max()) for mask in call["mask"]]


def test_vace_gets_first_and_last_frames_as_known_frames(engine_for, vace_calls) -> None:
    engine = engine_for("wan_vace")
    _, clip = generate(engine)
    assert clip.facts["family"] == "wan-vace" and clip.facts["recipe"] == "wan2.1-vace"
    assert clip.facts["flow_shift"] == 16.0
    assert "video" not in vace_calls[-1]  # text alone: nothing known
    first, last = picture("orange"), picture("navy")
    _, clip = generate(engine, inputs=Inputs(image=first, last_frame=last))
    call = vace_calls[-1]
    assert clip.facts["tail_image"] == "used as the last frame"
    assert len(call["video"]) == call["num_frames"] == 17
    assert masks(call) == [0] + [255] * 15 + [0]
    size = (call["width"], call["height"])
    assert np.array_equal(np.asarray(call["video"][0]), np.asarray(fit_frame(first, size)))
    assert np.array_equal(np.asarray(call["video"][-1]), np.asarray(fit_frame(last, size)))
    assert np.asarray(call["video"][8]).mean() == 128  # grey: to be generated
    generate(engine, inputs=Inputs(last_frame=last))  # a last frame alone (Veo 3.1 Lite)
    assert masks(vace_calls[-1]) == [255] * 16 + [0]


def test_vace_reference_images_change_the_video(engine_for) -> None:
    engine = engine_for("wan_vace")
    model = "google/veo-3.1-reference-to-video"
    plain, _ = generate(engine, request(model))
    referenced, _ = generate(
        engine, request(model), Inputs(references=(picture("red"), picture("green")))
    )
    assert plain.shape == referenced.shape
    assert difference(plain, referenced) > 0.1


def test_other_checkpoints_refuse_references_and_extension(engine_for, tmp_path) -> None:
    engine = engine_for("wan_t2v")
    with pytest.raises(EngineError, match=r"no reference images.*Wan VACE"):
        engine.generate(request(), Inputs(references=(picture("red"),)), JobContext())
    video = video_input(write_video(tmp_path / "in.mp4", seconds=1, size=(64, 48)))
    with pytest.raises(EngineError, match=r"cannot extend a video.*Wan VACE"):
        engine.generate(request(), Inputs(video=video), JobContext())


def video_input(path: Path) -> VideoInput:
    facts = probe_video(path, field="video_url", max_seconds=30, max_pixels=10**7)
    return VideoInput(
        path=path,
        width=facts.width,
        height=facts.height,
        fps=facts.fps,
        frame_count=facts.frame_count,
        duration_seconds=facts.duration_seconds,
    )


def test_vace_extends_a_video_from_its_last_frames(engine_for, vace_calls, tmp_path) -> None:
    source = write_video(tmp_path / "in.mp4", seconds=1.5, size=(64, 48))
    engine = engine_for("wan_vace")
    model = "google/veo3-1-extend-video"
    frames, clip = generate(engine, request(model), Inputs(video=video_input(source)))
    # The input's 1.5 s at 24 fps, then the new second.
    assert clip.frame_count == frames.shape[0] == 36 + 24
    assert clip.facts["input_video_seconds"] == 1.5
    # 1 s at 16 fps is 16 new frames after 5 known ones from the input: one pass of 21.
    assert clip.facts["native_frames"] == 16
    call = vace_calls[-1]
    assert call["num_frames"] == 21 and masks(call) == [0] * 5 + [255] * 16
    size = (call["width"], call["height"])
    tail = last_frames(video_input(source), size, 16, 5)
    for given, known in zip(call["video"][:5], tail, strict=True):
        assert np.array_equal(np.asarray(given), known)
    # The input comes back first, decoded at 24 fps.
    assert difference(frames[0], numbered_frame(0, (64, 48))) < 6


def test_vace_long_clips_continue_whole_latent_frames(engine_for, vace_calls) -> None:
    assert segment_lengths(129, 81, 4, overlap=5) == (81, 53)
    assert segment_lengths(25, 13, 4, overlap=5) == (13, 13, 9)
    engine = engine_for("wan_vace", max_frames=13)
    frames, clip = generate(engine, request(duration_seconds=1))
    # 17 native frames at 16 fps: 13, then 9 of which 5 repeat the end of the first.
    assert clip.facts["segments"] == [13, 9]
    assert clip.facts["native_frames"] == 17
    assert frames.shape[0] == 24
    first, second = vace_calls[-2:]
    assert masks(second) == [0] * 5 + [255] * 4, "the second continues 5 known frames"
    assert "video" not in first


# -- LTX-2: picture and sound from one model -------------------------------------------------


def test_ltx2_makes_the_soundtrack_with_the_picture(engine_for, settings, models) -> None:
    engine = engine_for("ltx2")
    req = request(generate_audio=True, duration_seconds=1)
    frames, clip = generate(engine, req)
    assert clip.facts["family"] == "ltx2" and clip.facts["recipe"] == "ltx-2"
    assert clip.facts["audio"] == "generated with the picture by ltx2"
    assert clip.audio is not None and clip.audio.sample_rate == 16000
    assert clip.audio.samples.shape == (2, 16000)  # stereo, exactly the clip's second
    assert np.abs(clip.audio.samples).max() > 0
    assert frames.shape == (24, 48, 64, 3)
    silent, clip = generate(engine, request(duration_seconds=1))
    assert clip.audio is None and "audio" not in clip.facts
    assert np.array_equal(frames, silent), "one model, one picture, with or without its sound"


def test_ltx2_starts_from_an_image(engine_for) -> None:
    engine = engine_for("ltx2")
    text, _ = generate(engine)
    image, clip = generate(engine, inputs=Inputs(image=picture("orange")))
    assert clip.facts["family"] == "ltx2" and difference(text, image) > 0.1


# -- HunyuanVideo 1.5 --------------------------------------------------------------------------


def test_hunyuan15_runs_its_recipe_with_progress_and_cancellation(engine_for) -> None:
    engine = engine_for("hunyuan15")
    assert engine.capabilities("veo2").inputs == {"text"}
    reports: list[tuple[float, str]] = []
    clip = engine.generate(
        request(), Inputs(), JobContext(on_report=lambda f, s: reports.append((f, s)))
    )
    frames = np.stack(list(clip.frames))
    assert frames.shape == (24, 48, 64, 3) and np.std(frames) > 0
    assert clip.facts["family"] == "hunyuan1.5"
    assert clip.facts["recipe"] == "hunyuanvideo-1.5-480p"  # target_size 16: a 480p model
    assert (clip.facts["flow_shift"], clip.facts["guidance_scale"]) == (5.0, 6.0)
    (model,) = engine.models._models.values()
    pipe = next(iter(model.pipelines.values()))
    assert pipe.guider.guidance_scale == 6.0 and pipe.scheduler.config.shift == 5.0
    # No step callback in this pipeline: its scheduler's steps report instead.
    assert [stage for _, stage in reports].count("denoising") >= 2

    def report(fraction: float, stage: str) -> None:
        if stage == "denoising" and fraction > 0:  # after the first step
            job.cancel(Interruption.CANCELLED)

    job = JobContext(on_report=report)
    with pytest.raises(JobInterrupted):
        engine.generate(request(seed=8), Inputs(), job)
    assert "step" not in vars(pipe.scheduler), "the scheduler is itself again"
    again = np.stack(list(engine.generate(request(), Inputs(), JobContext()).frames))
    assert np.array_equal(frames, again)


def test_hunyuan15_image_checkpoint_takes_images_only(engine_for) -> None:
    engine = engine_for("hunyuan15_i2v")
    assert engine.capabilities("google/veo-3.0-i2v").inputs == {"image"}
    frames, clip = generate(engine, request("google/veo-3.0-i2v"), Inputs(image=picture("orange")))
    assert frames.shape == (24, 48, 64, 3)
    assert clip.facts["recipe"] == "hunyuanvideo-1.5-480p"
    with pytest.raises(EngineError, match="needs an input image"):
        engine.generate(request("google/veo-3.0-i2v"), Inputs(), JobContext())


def test_ltx2_segments_join_their_soundtracks(engine_for) -> None:
    engine = engine_for("ltx2", max_frames=9)
    frames, clip = generate(engine, request(generate_audio=True, duration_seconds=1))
    # 1 s at 24 fps: 25 native frames (the tiny VAE packs 2), three passes of 9 sharing
    # their joins; the sounds of the repeated frames are dropped, then fitted to 1 s.
    assert clip.facts["segments"] == [9, 9, 9]
    assert frames.shape[0] == 24
    assert clip.audio is not None and clip.audio.samples.shape == (2, 16000)


def test_the_router_lets_vace_take_what_others_cannot(settings, models, tmp_path) -> None:
    local = settings.model_copy(
        update={"engine": "diffusers", "diffusers_model_path": str(models["wan_vace"])}
    )
    router = EngineRouter(local)
    try:
        video = video_input(write_video(tmp_path / "in.mp4", seconds=1, size=(64, 48)))
        cases = {
            "google/veo-3.1-reference-to-video": Inputs(references=(picture("red"),)),
            "google/veo3-1-extend-video": Inputs(video=video),
            "veo-3.1-lite-generate-001": Inputs(last_frame=picture("navy")),
            "google/veo-3.1-first-last-image-to-video": Inputs(
                image=picture("orange"), last_frame=picture("navy")
            ),
        }
        for model, inputs in cases.items():
            engine = router.for_model(model)
            router.check(engine, request(model), inputs)  # raises if refused
    finally:
        router.close()
