"""encode_mp4 / probe_mp4 against real MP4s, decoded back with PyAV."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from reelforge.errors import EngineError
from reelforge.media.clip import Audio, Clip
from reelforge.media.encode import EncodeResult, encode_mp4, probe_mp4

pytestmark = pytest.mark.unit

WIDTH, HEIGHT, FPS = 320, 180, 24


def moving_frames(count: int, width: int = WIDTH, height: int = HEIGHT) -> Iterator[np.ndarray]:
    """A gradient with a bright square sliding across: cheap, and every frame differs."""
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([xs * 255 // width, ys * 255 // height, np.full_like(xs, 90)], axis=-1)
    for i in range(count):
        frame = base.astype(np.uint8)
        x = (i * 5) % (width - 20)
        frame[40:60, x : x + 20] = 255
        yield frame


def clip_of(count: int, audio: Audio | None = None, frames: object = None) -> Clip:
    return Clip(
        width=WIDTH,
        height=HEIGHT,
        frame_count=count,
        frames=moving_frames(count) if frames is None else frames,  # type: ignore[arg-type]
        audio=audio,
    )


def top_level_boxes(path: Path) -> list[bytes]:
    """ISO-BMFF top-level box types, in file order (independent of the code under test)."""
    kinds = []
    data = path.read_bytes()
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        elif size == 0:
            size = len(data) - offset
        kinds.append(kind)
        offset += size
    return kinds


def test_video_stream_is_h264_yuv420p_24fps_with_exact_frames(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    result = encode_mp4(clip_of(48), path)

    assert result == EncodeResult(
        file_size=path.stat().st_size,
        frame_count=48,
        width=WIDTH,
        height=HEIGHT,
        has_audio=False,
        duration_seconds=2.0,
    )
    probe = probe_mp4(path)
    assert (probe.codec, probe.pix_fmt) == ("h264", "yuv420p")
    assert (probe.width, probe.height) == (WIDTH, HEIGHT)
    assert probe.fps == pytest.approx(24.0)
    assert probe.frame_count == 48
    assert probe.duration_seconds == pytest.approx(2.0, abs=1e-3)
    assert not probe.has_audio
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = [frame.time for frame in container.decode(stream)]
        assert stream.codec_context.color_primaries == 1
        assert stream.codec_context.colorspace == 1
    assert len(times) == 48
    assert times == pytest.approx([i / FPS for i in range(48)])


def test_keyframes_at_most_two_seconds_apart(tmp_path: Path) -> None:
    path = tmp_path / "gop.mp4"
    encode_mp4(clip_of(120), path)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        keys = [round(p.pts * p.time_base * FPS) for p in container.demux(stream) if p.is_keyframe]
    assert keys[0] == 0
    assert max(np.diff([*keys, 120])) <= 2 * FPS


def test_pixels_survive_the_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "colors.mp4"
    encode_mp4(clip_of(4), path, crf=12)
    original = next(moving_frames(1)).astype(np.int16)
    with av.open(str(path)) as container:
        decoded = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(np.int16)
    assert np.abs(decoded - original).mean() < 4


def test_mono_audio_is_padded_to_video_length_as_stereo_aac(tmp_path: Path) -> None:
    path = tmp_path / "audio.mp4"
    tone = 0.3 * np.sin(np.arange(30_000) / 48_000 * 2 * np.pi * 440).astype(np.float32)
    result = encode_mp4(clip_of(48, audio=Audio(tone)), path)

    assert result.has_audio
    probe = probe_mp4(path)
    assert probe.has_audio
    assert (probe.audio_codec, probe.audio_sample_rate, probe.audio_channels) == ("aac", 48_000, 2)
    assert probe.audio_duration_seconds is not None
    assert abs(probe.audio_duration_seconds - 2.0) <= 1024 / 48_000
    with av.open(str(path)) as container:
        decoded = np.concatenate(
            [frame.to_ndarray() for frame in container.decode(audio=0)], axis=1
        )
    assert decoded.shape[0] == 2
    assert abs(decoded.shape[1] - 96_000) <= 2048
    start, silent = decoded[:, 4_800:24_000], decoded[:, 40_000:90_000]
    assert np.sqrt(np.mean(start**2)) > 0.1
    assert np.abs(silent).max() < 0.01


def test_long_stereo_audio_is_trimmed(tmp_path: Path) -> None:
    path = tmp_path / "trim.mp4"
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 5 * 48_000)).astype(np.float32)
    encode_mp4(clip_of(24, audio=Audio(noise)), path)
    probe = probe_mp4(path)
    assert probe.audio_duration_seconds is not None
    assert abs(probe.audio_duration_seconds - 1.0) <= 1024 / 48_000


def test_moov_atom_precedes_mdat(tmp_path: Path) -> None:
    path = tmp_path / "fast.mp4"
    encode_mp4(clip_of(24), path)
    boxes = top_level_boxes(path)
    assert b"moov" in boxes
    assert b"mdat" in boxes
    assert boxes.index(b"moov") < boxes.index(b"mdat")
    assert probe_mp4(path).faststart


def test_progress_is_monotonic_throttled_and_reaches_one(tmp_path: Path) -> None:
    calls: list[tuple[float, str]] = []
    encode_mp4(clip_of(240), tmp_path / "p.mp4", progress=lambda f, s: calls.append((f, s)))
    fractions = [fraction for fraction, _ in calls]
    assert {stage for _, stage in calls} == {"encoding"}
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0
    assert len(fractions) <= 101


@pytest.mark.parametrize(
    ("declared", "frames", "fragment"),
    [
        (10, 9, "produced 9 frames"),
        (10, 11, "more than the 10"),
    ],
)
def test_wrong_frame_count_fails_and_leaves_no_file(
    tmp_path: Path, declared: int, frames: int, fragment: str
) -> None:
    path = tmp_path / "bad.mp4"
    with pytest.raises(EngineError, match=fragment):
        encode_mp4(clip_of(declared, frames=moving_frames(frames)), path)
    assert not path.exists()


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((HEIGHT, WIDTH + 2, 3), np.uint8),
        np.zeros((HEIGHT, WIDTH, 4), np.uint8),
        np.zeros((HEIGHT, WIDTH, 3), np.float32),
    ],
    ids=["width", "channels", "dtype"],
)
def test_wrong_frame_shape_or_dtype_fails_and_leaves_no_file(
    tmp_path: Path, bad: np.ndarray
) -> None:
    def frames() -> Iterator[np.ndarray]:
        yield from moving_frames(3)
        yield bad

    path = tmp_path / "bad.mp4"
    with pytest.raises(EngineError, match="Frame 3"):
        encode_mp4(clip_of(6, frames=frames()), path)
    assert not path.exists()


def test_errors_from_the_frame_source_propagate_unchanged(tmp_path: Path) -> None:
    class Cancelled(Exception):
        pass

    def frames() -> Iterator[np.ndarray]:
        yield from moving_frames(5)
        raise Cancelled

    path = tmp_path / "cancel.mp4"
    with pytest.raises(Cancelled):
        encode_mp4(clip_of(10, frames=frames()), path)
    assert not path.exists()


def test_clip_with_a_file_is_not_encoded(tmp_path: Path) -> None:
    clip = Clip(width=WIDTH, height=HEIGHT, frame_count=24, file=tmp_path / "given.mp4")
    with pytest.raises(ValueError, match="frames"):
        encode_mp4(clip, tmp_path / "out.mp4")


def test_odd_sizes_are_rejected(tmp_path: Path) -> None:
    clip = Clip(width=321, height=180, frame_count=1, frames=iter([]))
    with pytest.raises(EngineError, match="even"):
        encode_mp4(clip, tmp_path / "odd.mp4")


def test_probe_rejects_files_that_are_not_video(tmp_path: Path) -> None:
    path = tmp_path / "junk.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"not really a movie" * 10)
    with pytest.raises(EngineError):
        probe_mp4(path)


def test_planar_frames_encode_to_the_same_bytes_as_interleaved_ones(tmp_path: Path) -> None:
    """Renderers may hand the encoder views of (3, h, w) planes (``planar_frame``) to
    skip interleaving; the video must not change."""
    from reelforge.media.clip import planar_frame

    frames = list(moving_frames(6))
    planar = [planar_frame(np.ascontiguousarray(frame.transpose(2, 0, 1))) for frame in frames]
    assert all(view.shape == frames[0].shape and not view.flags.c_contiguous for view in planar)
    outputs = []
    for name, source in (("packed", frames), ("planar", planar)):
        path = tmp_path / f"{name}.mp4"
        clip = Clip(width=WIDTH, height=HEIGHT, frame_count=6, fps=24, frames=iter(source))
        encode_mp4(clip, path, threads=1)
        outputs.append(path.read_bytes())
    assert outputs[0] == outputs[1]
