"""The diffusers engine on tiny random-weight pipelines saved to disk, all on the CPU.

Every pipeline is built in the test (``tiny_pipelines``), written with
``save_pretrained`` and loaded by the engine from that directory with downloads off: the
path a user takes with a real checkpoint. Frames are meaningless noise; shapes, counts,
determinism, progress, loading and errors are what is checked.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tiny_pipelines
from reelforge.engines import EngineFactory, EngineRouter
from reelforge.engines.base import Inputs, JobContext
from reelforge.engines.diffusers import DiffusersEngine
from reelforge.engines.diffusers import loading as loading_module
from reelforge.engines.diffusers.audio import fit_length
from reelforge.engines.diffusers.families import (
    LTX_SIZES,
    WAN_480P_SIZES,
    WAN_720P_SIZES,
    WAN_TI2V_SIZES,
    detect,
    native_frames,
    native_size,
)
from reelforge.engines.diffusers.resample import (
    cover_box,
    frame_at,
    output_frames,
    source_positions,
)
from reelforge.errors import EngineError, Interruption, JobInterrupted, ServiceUnavailable
from tiny_pipelines import request

pytestmark = pytest.mark.unit

os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORK_AREA = 48 * 32
"""Pixels per native frame in these tests: 48x32 or 32x32 depending on the family."""
PIPELINES = ("wan_t2v", "wan_ti2v", "wan_i2v", "wan_flf2v", "ltx_t2v", "ltx_i2v", "stable_audio")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pipelines")
    return {name: tiny_pipelines.saved(name, root) for name in PIPELINES}


@pytest.fixture
def make_engine(settings, models):
    engines: list[DiffusersEngine] = []

    def make(name: str | None = "wan_t2v", **overrides) -> DiffusersEngine:
        values = {"diffusers_steps": 2, **overrides}
        if name is not None:
            values.setdefault("diffusers_model_path", str(models[name]))
        engine = DiffusersEngine.from_settings(
            settings.model_copy(update=values), work_area=WORK_AREA, audio_steps=2
        )
        engine.load()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


def photo(color: str = "orange", size: tuple[int, int] = (300, 200)) -> Image.Image:
    image = Image.new("RGB", size, color)
    image.paste(Image.new("RGB", (size[0] // 3, size[1] // 3), "navy"), (20, 20))
    return image


def run(engine, req=None, inputs=None, progress=None) -> tuple[list[np.ndarray], object]:
    clip = engine.generate(req or request(), inputs or Inputs(), JobContext(on_report=progress))
    return list(clip.frames), clip


# -- generation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "with_image", "family"),
    [
        ("wan_t2v", False, "wan"),
        ("ltx_t2v", False, "ltx"),
        ("wan_i2v", True, "wan"),
        ("ltx_i2v", True, "ltx"),
        ("wan_ti2v", False, "wan-ti2v"),
        ("wan_ti2v", True, "wan-ti2v"),
    ],
)
def test_frames_have_the_published_count_and_size(make_engine, name, with_image, family) -> None:
    inputs = Inputs(image=photo()) if with_image else Inputs()
    frames, clip = run(make_engine(name), request(duration_seconds=1), inputs)
    assert (clip.frame_count, clip.fps, clip.width, clip.height) == (24, 24, 64, 48)
    assert len(frames) == 24
    assert all(frame.shape == (48, 64, 3) and frame.dtype == np.uint8 for frame in frames)
    assert clip.facts["family"] == family
    assert clip.facts["diffusers_model"] == name
    # The official rates: Wan 2.1/2.2 16, TI2V-5B 24, LTX-Video 30 (test_diffusers_recipes).
    native_fps = {"wan": 16, "wan-ti2v": 24, "ltx": 30}[family]
    assert clip.facts["native_fps"] == native_fps
    assert clip.facts["native_frames"] == native_frames(1, native_fps, 4, 257)
    assert clip.facts["steps"] == 2 and clip.facts["time_resampling"] == "blend"
    assert np.std(np.stack(frames)) > 0


def test_same_seed_same_frames_and_another_seed_differs(make_engine) -> None:
    engine = make_engine("wan_t2v")
    first, _ = run(engine, request(seed=11))
    again, _ = run(engine, request(seed=11))
    other, _ = run(engine, request(seed=12))
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_progress_is_monotonic_named_and_complete(make_engine) -> None:
    events: list[tuple[float, str]] = []
    run(make_engine("ltx_t2v"), progress=lambda f, s: events.append((f, s)))
    fractions = [fraction for fraction, _ in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    stages = [stage for index, (_, stage) in enumerate(events) if events[index - 1][1] != stage]
    assert stages == ["loading model", "denoising", "decoding", "resampling"]


def test_cancellation_stops_the_job_and_the_engine_recovers(make_engine) -> None:
    engine = make_engine("wan_t2v")

    def stop_in(wanted: str, after: float) -> JobContext:
        def report(fraction: float, stage: str) -> None:
            if stage == wanted and fraction > after:
                job.cancel(Interruption.SHUTDOWN)

        job = JobContext(on_report=report)
        return job

    with pytest.raises(JobInterrupted):
        engine.generate(request(), Inputs(), stop_in("denoising", 0))

    clip = engine.generate(request(), Inputs(), stop_in("resampling", 0.5))
    with pytest.raises(JobInterrupted):
        list(clip.frames)
    frames, _ = run(engine)  # the lock was released and the pipeline still works
    assert len(frames) == 24


def test_two_jobs_load_the_checkpoint_once(make_engine) -> None:
    engine = make_engine("wan_t2v")
    run(engine)
    frames, clip = run(engine, request(seed=99, duration_seconds=2))
    assert engine.models.loads == 1
    assert len(frames) == clip.frame_count == 48 and clip.facts["native_frames"] == 33


def test_one_checkpoint_serves_text_and_image_without_a_second_copy(make_engine) -> None:
    engine = make_engine("wan_ti2v")
    run(engine)
    run(engine, inputs=Inputs(image=photo()))
    assert engine.models.loads == 1
    model, image_pipe = engine.models.pipeline(engine.settings.diffusers_model_path, "image")
    text_pipe = model.pipelines["text"]
    assert type(text_pipe).__name__ == "WanPipeline"
    assert type(image_pipe).__name__ == "WanImageToVideoPipeline"
    assert image_pipe.transformer is text_pipe.transformer and image_pipe.vae is text_pipe.vae


def test_last_frame_is_used_by_flf2v_and_ignored_elsewhere(make_engine) -> None:
    inputs = Inputs(image=photo("orange"), last_frame=photo("teal"))
    _, clip = run(make_engine("wan_flf2v"), inputs=inputs)
    assert clip.facts["tail_image"] == "used as the last frame"
    _, clip = run(make_engine("wan_i2v"), inputs=inputs)
    assert clip.facts["tail_image"].startswith("ignored")


# -- loading, detection, errors ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "family", "text", "image", "last_frame", "pipeline_class"),
    [
        ("wan_t2v", "wan", True, False, False, "WanPipeline"),
        ("wan_ti2v", "wan-ti2v", True, True, False, "WanPipeline"),
        ("wan_i2v", "wan", False, True, False, "WanImageToVideoPipeline"),
        ("wan_flf2v", "wan", False, True, True, "WanImageToVideoPipeline"),
        ("ltx_t2v", "ltx", True, True, False, "LTXPipeline"),
        ("ltx_i2v", "ltx", True, True, False, "LTXImageToVideoPipeline"),
    ],
)
def test_family_is_detected_from_the_saved_directory(
    make_engine, models, name, family, text, image, last_frame, pipeline_class
) -> None:
    engine = make_engine(name)
    info = engine.models.inspect(str(models[name]))
    assert (info.family.name, info.text, info.image, info.last_frame) == (
        family,
        text,
        image,
        last_frame,
    )
    assert info.pipeline_class == pipeline_class and engine.models.loads == 0


REAL_CHECKPOINTS = {
    # label: (model_index extras, transformer config) as published in diffusers format
    "Wan2.1-T2V-1.3B-Diffusers": (
        {"_class_name": "WanPipeline"},
        {
            "in_channels": 16,
            "out_channels": 16,
            "num_attention_heads": 12,
            "attention_head_dim": 128,
        },
    ),
    "Wan2.1-I2V-14B-720P-Diffusers": (
        {"_class_name": "WanImageToVideoPipeline"},
        {
            "in_channels": 36,
            "out_channels": 16,
            "num_attention_heads": 40,
            "attention_head_dim": 128,
        },
    ),
    "Wan2.1-FLF2V-14B-720P-diffusers": (
        {"_class_name": "WanImageToVideoPipeline"},
        {"in_channels": 36, "out_channels": 16, "pos_embed_seq_len": 514},
    ),
    "Wan2.2-T2V-A14B-Diffusers": (
        {"_class_name": "WanPipeline", "transformer_2": ["diffusers", "WanTransformer3DModel"]},
        {
            "in_channels": 16,
            "out_channels": 16,
            "num_attention_heads": 40,
            "attention_head_dim": 128,
        },
    ),
    "Wan2.2-TI2V-5B-Diffusers": (
        {"_class_name": "WanPipeline", "expand_timesteps": True},
        {
            "in_channels": 48,
            "out_channels": 48,
            "num_attention_heads": 24,
            "attention_head_dim": 128,
        },
    ),
    "LTX-Video": ({"_class_name": "LTXPipeline"}, {"in_channels": 128, "out_channels": 128}),
}


@pytest.mark.parametrize(
    ("label", "family", "text", "image", "last_frame", "sizes", "steps"),
    [
        ("Wan2.1-T2V-1.3B-Diffusers", "wan", True, False, False, WAN_480P_SIZES, 50),
        ("Wan2.1-I2V-14B-720P-Diffusers", "wan", False, True, False, WAN_720P_SIZES, 40),
        ("Wan2.1-FLF2V-14B-720P-diffusers", "wan", False, True, True, WAN_720P_SIZES, 50),
        ("Wan2.2-T2V-A14B-Diffusers", "wan", True, False, False, WAN_720P_SIZES, 40),
        ("Wan2.2-TI2V-5B-Diffusers", "wan-ti2v", True, True, False, WAN_TI2V_SIZES, 50),
        ("LTX-Video", "ltx", True, True, False, LTX_SIZES, 40),
    ],
)
def test_published_checkpoints_are_recognised_from_their_configs(
    label, family, text, image, last_frame, sizes, steps
) -> None:
    index, transformer = REAL_CHECKPOINTS[label]
    info = detect(f"Org/{label}", label, index, transformer)
    assert (info.family.name, info.text, info.image, info.last_frame) == (
        family,
        text,
        image,
        last_frame,
    )
    assert info.sizes == sizes and info.default_steps == steps


def test_unsupported_pipelines_are_refused_by_name() -> None:
    with pytest.raises(ServiceUnavailable, match="CogVideoXPipeline"):
        detect("x", "x", {"_class_name": "CogVideoXPipeline"}, {})


@pytest.mark.parametrize(
    ("sizes", "target", "multiple", "expected"),
    [
        (WAN_480P_SIZES, (1280, 720), 16, (832, 480)),
        (WAN_480P_SIZES, (720, 1280), 16, (480, 832)),
        (WAN_720P_SIZES, (1920, 1080), 16, (1280, 720)),
        (WAN_TI2V_SIZES, (720, 1280), 32, (704, 1280)),
        (LTX_SIZES, (1280, 720), 32, (1216, 704)),
        (LTX_SIZES, (1000, 1000), 32, (832, 832)),
    ],
)
def test_native_size_is_the_trained_size_closest_in_shape(
    sizes, target, multiple, expected
) -> None:
    assert native_size(sizes, target, multiple) == expected


def test_work_area_overrides_the_native_size_in_multiples() -> None:
    assert native_size(WAN_480P_SIZES, (1280, 720), 16, work_area=64 * 36) == (64, 32)
    assert native_size(LTX_SIZES, (720, 1280), 32, work_area=10) == (32, 32)


@pytest.mark.parametrize(
    ("seconds", "fps", "step", "cap", "expected"),
    [(5, 16, 4, 129, 81), (8, 16, 4, 129, 129), (5, 24, 8, 257, 121), (8, 24, 4, 193, 193)],
)
def test_native_frames_cover_the_duration_in_whole_latent_frames(
    seconds, fps, step, cap, expected
) -> None:
    assert native_frames(seconds, fps, step, cap) == expected
    assert native_frames(60, fps, step, cap) <= cap


def test_a_missing_directory_is_unavailable_and_says_where(make_engine, tmp_path) -> None:
    missing = tmp_path / "no-such-model"
    engine = make_engine(None, diffusers_model_path=str(missing))
    with pytest.raises(ServiceUnavailable, match="no-such-model"):
        engine.generate(request(), Inputs(), JobContext())
    assert engine.capabilities("veo2").inputs == frozenset()


def test_a_directory_that_is_no_pipeline_is_unavailable(make_engine, tmp_path) -> None:
    engine = make_engine(None, diffusers_model_path=str(tmp_path))
    with pytest.raises(ServiceUnavailable, match=r"model_index\.json"):
        engine.generate(request(), Inputs(), JobContext())


def test_an_uncached_hub_model_is_unavailable_with_the_download_hint(make_engine) -> None:
    engine = make_engine(None, diffusers_model_path="reelforge-tests/no-such-checkpoint")
    with pytest.raises(ServiceUnavailable) as caught:
        engine.generate(request(), Inputs(), JobContext())
    assert "Hugging Face cache" in caught.value.message
    assert "REELFORGE_DIFFUSERS_ALLOW_DOWNLOAD" in caught.value.message


def test_no_configured_model_names_the_settings(make_engine) -> None:
    engine = make_engine(None)
    with pytest.raises(ServiceUnavailable, match="REELFORGE_DIFFUSERS_MODEL_PATH"):
        engine.generate(request(), Inputs(), JobContext())


def test_wrong_input_kind_fails_the_job_before_loading(make_engine) -> None:
    engine = make_engine("wan_t2v")
    with pytest.raises(EngineError, match="text-to-video checkpoint"):
        engine.generate(request(), Inputs(image=photo()), JobContext())
    engine = make_engine("wan_i2v")
    with pytest.raises(EngineError, match="needs an input image"):
        engine.generate(request(), Inputs(), JobContext())
    assert engine.models.loads == 0


def test_capabilities_follow_the_configured_checkpoints(make_engine, models) -> None:
    engine = make_engine("wan_t2v")
    caps = engine.capabilities("veo2/image-to-video")
    assert (caps.inputs, caps.enhances_prompt) == (frozenset({"text"}), False)
    per_model = {"veo2": str(models["wan_t2v"]), "veo2/image-to-video": str(models["wan_i2v"])}
    engine = make_engine(None, diffusers_models=per_model)
    assert engine.capabilities("veo2").inputs == {"text"}
    assert engine.capabilities("veo2/image-to-video").inputs == {"image", "last_frame"}
    assert engine.capabilities("google/veo-3.0-i2v").inputs == frozenset()


def test_the_router_refuses_what_the_checkpoint_cannot_take(settings, models) -> None:
    local = settings.model_copy(
        update={"engine": "diffusers", "diffusers_model_path": str(models["wan_t2v"])}
    )
    router = EngineRouter(local)
    engine = router.for_model("veo2/image-to-video")
    with pytest.raises(EngineError, match="cannot take image inputs"):
        router.check(engine, request(model="veo2/image-to-video"), Inputs(image=photo()))
    router.check(engine, request(), Inputs())
    router.close()


def test_per_model_checkpoints_route_each_model(make_engine, models) -> None:
    per_model = {"veo2": str(models["ltx_t2v"]), "veo2/image-to-video": str(models["wan_i2v"])}
    engine = make_engine(None, diffusers_models=per_model)
    _, text_clip = run(engine)
    _, image_clip = run(engine, request(model="veo2/image-to-video"), Inputs(image=photo()))
    assert (text_clip.facts["family"], image_clip.facts["family"]) == ("ltx", "wan")
    assert engine.models.loads == 2


@pytest.mark.parametrize(
    ("name", "options", "warns"),
    [
        ("wan_t2v", {"diffusers_cache": "taylorseer"}, None),
        ("wan_t2v", {"diffusers_cache": "first_block", "diffusers_vae_tiling": True}, None),
        ("ltx_t2v", {"diffusers_cache": "first_block"}, None),
        ("wan_t2v", {"diffusers_attention_backend": "native"}, None),
        # Backends that cannot run stop the worker at start: test_diffusers_speed.py.
        ("wan_t2v", {"diffusers_cpu_offload": "model"}, "ignored: the device is the CPU"),
    ],
)
def test_speed_and_memory_options_apply_or_warn_and_continue(
    make_engine, caplog, name, options, warns
) -> None:
    caplog.set_level(logging.WARNING, logger=loading_module.__name__)
    frames, _ = run(make_engine(name, **options))
    assert len(frames) == 24
    ours = [record for record in caplog.records if record.name == loading_module.__name__]
    messages = " ".join(record.getMessage() for record in ours)
    if warns:
        assert warns in messages
    else:
        assert not ours, messages


# -- audio ---------------------------------------------------------------------------------


def test_audio_model_renders_the_clip_length(make_engine, models) -> None:
    engine = make_engine("wan_t2v", diffusers_audio_model_path=str(models["stable_audio"]))
    events: list[str] = []
    _, clip = run(engine, request(generate_audio=True), progress=lambda f, s: events.append(s))
    assert clip.audio is not None and clip.audio.sample_rate == 4  # the tiny VAE's rate
    assert clip.audio.samples.shape == (2, 4) and clip.audio.samples.dtype == np.float32
    assert clip.facts["audio"] == "generated by stable_audio" and "audio" in events
    _, clip = run(engine, request(generate_audio=True, duration_seconds=2))
    assert clip.audio.samples.shape == (2, 8) and engine.audio.loads == 1


def test_without_an_audio_model_the_clip_is_silent_and_says_so(make_engine) -> None:
    _, clip = run(make_engine("wan_t2v"), request(generate_audio=True))
    assert clip.audio is None and clip.facts["audio"] == "not configured"


def test_fit_length_trims_pads_and_cleans() -> None:
    stereo = np.ones((2, 10), dtype=np.float64)
    assert fit_length(stereo, 4).shape == (2, 4)
    padded = fit_length(stereo, 12)
    assert padded.dtype == np.float32 and padded[:, 10:].sum() == 0
    mono = fit_length(np.array([np.nan, 3.0, -0.5]), 3)
    assert mono.tolist() == [[0.0, 1.0, -0.5]]


# -- resampling ------------------------------------------------------------------------------


def test_positions_play_in_real_time_or_stretch_when_short() -> None:
    positions = source_positions(81, 16, 120, 24)
    assert positions[0] == 0 and positions[1] == pytest.approx(2 / 3)
    assert positions[-1] == pytest.approx(119 * 16 / 24)
    assert np.array_equal(source_positions(121, 24, 120, 24), np.arange(120))
    stretched = source_positions(81, 16, 192, 24)  # 8 s requested, 5 s generated
    assert stretched[0] == 0 and stretched[-1] == pytest.approx(80)


def test_blending_mixes_neighbours_and_copies_exact_frames() -> None:
    video = np.stack([np.zeros((2, 2, 3), np.uint8), np.full((2, 2, 3), 90, np.uint8)])
    assert np.shares_memory(frame_at(video, 0.0), video[0])
    assert frame_at(video, 1 / 3).max() == 30
    assert np.array_equal(frame_at(video, 5.0), video[1])


def test_cover_fit_crops_the_overflow_without_distortion() -> None:
    assert cover_box((48, 32), (64, 48)) == pytest.approx((8 / 3, 0.0, 48 - 8 / 3, 32.0))
    assert cover_box((32, 48), (1280, 720)) == pytest.approx((0.0, 15.0, 32.0, 33.0))
    video = np.zeros((3, 32, 48, 3), np.uint8)
    frames = list(output_frames(video, 16, 5, 24, (1280, 720), lambda fraction: None))
    assert len(frames) == 5 and frames[0].shape == (720, 1280, 3)


# -- packaging and the worker --------------------------------------------------------------


def test_importing_the_engine_imports_no_heavy_library() -> None:
    code = (
        "import sys, reelforge.engines.diffusers\n"
        "heavy = {'torch', 'diffusers', 'transformers'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_missing_extra_names_the_install_command(monkeypatch) -> None:
    real = loading_module.importlib.util.find_spec
    monkeypatch.setattr(
        loading_module.importlib.util,
        "find_spec",
        lambda name, *args: None if name == "diffusers" else real(name, *args),
    )
    with pytest.raises(ServiceUnavailable, match=r"pip install 'reelforge\[diffusers\]'"):
        loading_module.require_extra()


def test_worker_runs_a_job_through_the_engine_into_a_real_mp4(settings, models, tmp_path) -> None:
    from reelforge.jobs import JobStatus, JobStore, NewJob
    from reelforge.jobs.db import make_engine as make_db
    from reelforge.jobs.db import upgrade
    from reelforge.media.encode import probe_mp4
    from reelforge.storage import LocalStorage
    from reelforge.worker import Worker

    local = settings.model_copy(
        update={
            "engine": "diffusers",
            "diffusers_model_path": str(models["wan_t2v"]),
            "diffusers_steps": 2,
            "enhancer": "off",
            "encoder_preset": "ultrafast",
        }
    )
    db = make_db(local.resolved_database_url)
    upgrade(db)
    store = JobStore(db)
    storage = LocalStorage(tmp_path / "files")
    router = EngineRouter(
        local,
        {
            "diffusers": EngineFactory(
                lambda s: DiffusersEngine.from_settings(s, work_area=WORK_AREA)
            )
        },
    )
    job_id = f"{uuid.uuid4()}:veo2"
    store.create(
        NewJob(
            id=job_id,
            model="veo2",
            owner="o",
            params={"model": "veo2", "prompt": "a fox in the snow", "duration": 5},
            seed=5,
            credits=10,
            video_token=uuid.uuid4().hex,
        )
    )
    try:
        assert Worker(local, store, storage, router, worker_id="w1").run_once()
    finally:
        router.close()
        db.dispose()
    job = store.get(job_id)
    assert job.status is JobStatus.COMPLETED, (job.error_name, job.error_message)
    facts = probe_mp4(storage.local_path(job.video_key))
    assert (facts.width, facts.height, facts.frame_count) == (1280, 720, 120)
    assert job.info["engine"] == "diffusers" and job.info["family"] == "wan"
    assert job.info["native_frames"] == 81


FIRST_LAST = "google/veo-3.1-first-last-image-to-video"


def test_first_last_models_need_a_first_last_checkpoint(make_engine, models) -> None:
    """A Wan I2V checkpoint ignores a tail image for veo2/image-to-video only; the first-last
    models are refused by it, served by FLF2V, and references or videos by none."""
    engine = make_engine("wan_i2v")
    assert engine.capabilities("veo2/image-to-video").inputs == {"image", "last_frame"}
    assert engine.capabilities(FIRST_LAST).inputs == {"image"}
    flf2v = make_engine("wan_flf2v")
    assert flf2v.capabilities(FIRST_LAST).inputs == {"image", "last_frame"}
    text = make_engine("wan_t2v")
    for model in ("google/veo-3.1-reference-to-video", "google/veo3-1-extend-video"):
        assert not {"reference_images", "video"} & text.capabilities(model).inputs
    inputs = Inputs(image=photo("orange"), last_frame=photo("teal"))
    _, clip = run(flf2v, inputs=inputs)
    assert clip.facts["tail_image"] == "used as the last frame"


def test_the_router_refuses_kinds_diffusers_cannot_serve(settings, models) -> None:
    local = settings.model_copy(
        update={"engine": "diffusers", "diffusers_model_path": str(models["wan_i2v"])}
    )
    router = EngineRouter(local)
    engine = router.for_model(FIRST_LAST)
    inputs = Inputs(image=photo("orange"), last_frame=photo("teal"))
    with pytest.raises(EngineError, match="cannot take last frame inputs"):
        router.check(engine, request(model=FIRST_LAST), inputs)
    refs = Inputs(references=(photo("orange"),))
    with pytest.raises(EngineError, match="cannot take reference images inputs"):
        router.check(engine, request(model="google/veo-3.1-reference-to-video"), refs)
    router.close()


def test_a_last_frame_without_a_first_is_refused(make_engine) -> None:
    engine = make_engine("wan_flf2v")
    with pytest.raises(EngineError, match="without a first frame"):
        engine.generate(
            request(model="veo-3.1-lite-generate-001"), Inputs(last_frame=photo()), JobContext()
        )
