"""Encoding clips to MP4 and probing MP4 files.

Every clip we publish has the same shape: H.264 (libx264) yuv420p with BT.709 tags at
the clip's frame rate, optional AAC 48 kHz stereo, and the ``moov`` atom up front
(``+faststart``) so browsers can start playing before the download ends. ``encode_mp4``
pulls frames lazily, so a long clip never sits in memory; ``probe_mp4`` checks files we
did not encode ourselves (uploads, upstream engines) against the same expectations.
Encoding is reproducible: the same frames, settings and thread count give the same bytes
(see ``X264_PARAMS``).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

from reelforge.errors import DISK_FULL_RETRY_SECONDS, EngineError, InsufficientStorage
from reelforge.logs import throttle
from reelforge.media.clip import AUDIO_SAMPLE_RATE_HZ, Audio, Clip, ReportProgress, planes_of

logger = logging.getLogger(__name__)

GOP_SECONDS = 2.0
"""Keyframe interval: short enough for quick seeking, long enough to stay small."""

AUDIO_BIT_RATE_BPS = 128_000
AUDIO_CHANNELS = 2
PROGRESS_STEP = 0.01
"""Smallest progress advance reported, as a fraction of the clip."""

_BT709 = 1
"""AVCOL_PRI_BT709 == AVCOL_TRC_BT709 == AVCOL_SPC_BT709 in FFmpeg."""

X264_PARAMS = "cpu-independent=1"
"""Portable MB-tree kernels in x264, so the output never depends on stray memory.

On CPUs with AVX-512, x264 (core 165, as PyAV bundles it) propagates MB-tree costs 8
macroblocks at a time and, when the frame is not a multiple of 8 macroblocks wide
(both 9:16 sizes: 720 px = 45, 1080 px = 68), also scatters the lanes past the end of
each row. Those lanes carry costs read from memory x264 never initialised, so the
quantisers of the first GOP, and with them every frame of that GOP, depended on what the
heap held before. ``cpu-independent`` swaps in the C kernels: the bytes are then the same
whatever the CPU's SIMD level (checked from SSE2 to AVX-512), at no measurable cost.
"""


@dataclass(frozen=True)
class EncodeResult:
    """What ``encode_mp4`` wrote."""

    file_size: int
    frame_count: int
    width: int
    height: int
    has_audio: bool
    duration_seconds: float


@dataclass(frozen=True)
class ProbeResult:
    """Facts about an MP4, read from its container and streams (video is never decoded)."""

    codec: str
    pix_fmt: str | None
    width: int
    height: int
    fps: float
    frame_count: int
    duration_seconds: float
    has_audio: bool
    audio_codec: str | None = None
    audio_sample_rate: int | None = None
    audio_channels: int | None = None
    audio_duration_seconds: float | None = None
    faststart: bool = False
    """True when the ``moov`` atom precedes ``mdat`` (playable while downloading)."""


def encode_mp4(
    clip: Clip,
    path: Path,
    *,
    preset: str = "veryfast",
    crf: int = 23,
    threads: int = 0,
    progress: ReportProgress | None = None,
) -> EncodeResult:
    """Encode ``clip.frames`` (and ``clip.audio``) to an MP4 at ``path``.

    Raises ``EngineError`` when the frames do not match the clip's declared size or
    count, or when FFmpeg fails; exceptions raised by the frame iterator or ``progress``
    (e.g. a cancellation) propagate unchanged. On any failure the partial file is removed.
    ``threads=0`` lets x264 pick; pass 1 to keep a worker on one core.
    """
    if clip.frames is None:
        raise ValueError("encode_mp4 needs clip.frames; a clip with a file is already encoded")
    if clip.frame_count <= 0 or clip.fps <= 0:
        raise EngineError(f"Cannot encode a clip of {clip.frame_count} frames at {clip.fps} fps.")
    if clip.width <= 0 or clip.height <= 0 or clip.width % 2 or clip.height % 2:
        raise EngineError(
            f"Cannot encode {clip.width}x{clip.height}: width and height must be even "
            "and positive for yuv420p."
        )
    path = Path(path)
    audio = None
    if clip.audio is not None:
        audio = _prepare_audio(clip.audio, clip.frame_count, clip.fps)
    frames = iter(clip.frames)
    try:
        _encode(
            clip, path, frames, audio, preset=preset, crf=crf, threads=threads, progress=progress
        )
    except BaseException:
        _close_iterator(frames)
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
        raise
    size = path.stat().st_size
    logger.debug(
        "encoded mp4",
        extra={
            "frames": clip.frame_count,
            "width": clip.width,
            "height": clip.height,
            "audio": audio is not None,
            "bytes": size,
        },
    )
    return EncodeResult(
        file_size=size,
        frame_count=clip.frame_count,
        width=clip.width,
        height=clip.height,
        has_audio=audio is not None,
        duration_seconds=clip.frame_count / clip.fps,
    )


def _encode(
    clip: Clip,
    path: Path,
    frames: Iterator[np.ndarray],
    audio: np.ndarray | None,
    *,
    preset: str,
    crf: int,
    threads: int,
    progress: ReportProgress | None,
) -> None:
    try:
        container = av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"})
    except av.FFmpegError as exc:
        raise _ffmpeg_failure("Could not create the video file", exc) from None
    closed = False
    try:
        video = _add_video_stream(container, clip, preset=preset, crf=crf, threads=threads)
        audio_stream = _add_audio_stream(container) if audio is not None else None
        samples_per_frame = AUDIO_SAMPLE_RATE_HZ / clip.fps
        audio_sent = 0
        reported = 0.0
        expected_shape = (clip.height, clip.width, 3)
        converter = _Converter(clip.width, clip.height, threads)
        index = -1
        for index, array in enumerate(frames):
            if index >= clip.frame_count:
                raise EngineError(
                    f"The engine produced more than the {clip.frame_count} frames it declared."
                )
            _check_frame(array, expected_shape, index)
            container.mux(video.encode(converter.convert(array, index, clip.fps)))
            if audio_stream is not None and audio is not None:
                upto = round((index + 1) * samples_per_frame)
                audio_sent = _mux_audio(container, audio_stream, audio, audio_sent, upto)
            done = (index + 1) / clip.frame_count
            if progress is not None and (done - reported >= PROGRESS_STEP or done >= 1.0):
                reported = done
                progress(done, "encoding")
        if index + 1 != clip.frame_count:
            raise EngineError(
                f"The engine produced {index + 1} frames but declared {clip.frame_count}."
            )
        container.mux(video.encode(None))
        if audio_stream is not None and audio is not None:
            _mux_audio(container, audio_stream, audio, audio_sent, audio.shape[1])
            container.mux(audio_stream.encode(None))
        closed = True
        container.close()  # writes the index (faststart rewrites the file): may fail too
    except av.FFmpegError as exc:
        raise _ffmpeg_failure("Video encoding failed", exc) from None
    finally:
        if not closed:
            with contextlib.suppress(av.FFmpegError):
                container.close()


def _ffmpeg_failure(what: str, error: av.FFmpegError) -> EngineError | InsufficientStorage:
    """A job-facing error: FFmpeg's own text names server paths, so it goes to the log
    only; a full disk is ``InsufficientStorage``."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        throttle.log(logger, logging.ERROR, "disk full", f"disk full: {what}: {error}")
        return InsufficientStorage(
            "The server is out of disk space; try again later",
            retry_after_seconds=DISK_FULL_RETRY_SECONDS,
        )
    logger.warning("%s: %s", what, error)
    return EngineError(f"{what}: {error.strerror or type(error).__name__}")


def _add_video_stream(
    container: av.container.OutputContainer, clip: Clip, *, preset: str, crf: int, threads: int
) -> av.VideoStream:
    stream = container.add_stream(
        "libx264",
        rate=clip.fps,
        options={"preset": preset, "crf": str(crf), "x264-params": X264_PARAMS},
    )
    stream.width = clip.width
    stream.height = clip.height
    stream.pix_fmt = "yuv420p"
    stream.time_base = Fraction(1, clip.fps)
    ctx = stream.codec_context
    ctx.time_base = Fraction(1, clip.fps)
    ctx.framerate = Fraction(clip.fps, 1)
    ctx.gop_size = max(1, round(GOP_SECONDS * clip.fps))
    ctx.thread_count = threads
    ctx.color_primaries = _BT709
    ctx.color_trc = _BT709
    ctx.colorspace = _BT709
    ctx.color_range = ColorRange.MPEG.value
    return stream


def _add_audio_stream(container: av.container.OutputContainer) -> av.AudioStream:
    stream = container.add_stream("aac", rate=AUDIO_SAMPLE_RATE_HZ, layout="stereo")
    stream.bit_rate = AUDIO_BIT_RATE_BPS
    stream.time_base = Fraction(1, AUDIO_SAMPLE_RATE_HZ)
    stream.codec_context.time_base = Fraction(1, AUDIO_SAMPLE_RATE_HZ)
    return stream


def _check_frame(array: object, expected: tuple[int, int, int], index: int) -> None:
    if not isinstance(array, np.ndarray):
        raise EngineError(f"Frame {index} is a {type(array).__name__}, not a numpy array.")
    if array.dtype != np.uint8 or array.shape != expected:
        h, w, c = expected
        raise EngineError(
            f"Frame {index} has shape {array.shape} and dtype {array.dtype}; "
            f"expected ({h}, {w}, {c}) uint8 RGB."
        )


class _Converter:
    """RGB → yuv420p with the BT.709 matrix, so the pixels match the tags we write.

    A frame is an (height, width, 3) array either way; when it is a view of planar data
    (``planar_frame``), its three planes go to swscale as they are (``gbrp``), which
    spares the renderer interleaving them. Otherwise one RGB frame is reused and filled
    with a single buffer copy when its rows are not padded (``VideoFrame.from_ndarray``
    copies row by row and costs several times more). Both give the same pixels.
    """

    def __init__(self, width: int, height: int, threads: int) -> None:
        self.rgb = av.VideoFrame(width, height, "rgb24")
        self.packed = self.rgb.planes[0].line_size == width * 3
        self.gbr = av.VideoFrame(width, height, "gbrp")
        self.planar = self.gbr.planes[0].line_size == width
        self.threads = threads

    def convert(self, array: np.ndarray, index: int, fps: int) -> av.VideoFrame:
        planes = planes_of(array) if self.planar else None
        if planes is not None:
            for plane, channel in zip(self.gbr.planes, (1, 2, 0), strict=True):  # G, B, R
                plane.update(planes[channel])
            source = self.gbr
        elif self.packed:
            self.rgb.planes[0].update(np.ascontiguousarray(array))
            source = self.rgb
        else:
            source = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
        frame = source.reformat(
            format="yuv420p",
            src_colorspace=Colorspace.ITU709,
            dst_colorspace=Colorspace.ITU709,
            src_color_range=ColorRange.JPEG,
            dst_color_range=ColorRange.MPEG,
            dst_color_trc=_BT709,
            dst_color_primaries=_BT709,
            threads=self.threads,
        )
        frame.pts = index
        frame.time_base = Fraction(1, fps)
        return frame


def _prepare_audio(audio: Audio, frame_count: int, fps: int) -> np.ndarray:
    """Return float32 (2, n) at 48 kHz, exactly as long as the video, within [-1, 1]."""
    samples = np.asarray(audio.samples, dtype=np.float32)
    if samples.ndim == 1:
        samples = samples[np.newaxis, :]
    if samples.ndim != 2 or samples.shape[0] not in (1, 2) or samples.shape[1] == 0:
        raise EngineError(
            f"Audio has shape {samples.shape}; expected (channels, samples) with 1 or 2 channels."
        )
    if audio.sample_rate <= 0:
        raise EngineError(f"Audio sample rate {audio.sample_rate} Hz is not valid.")
    if audio.sample_rate != AUDIO_SAMPLE_RATE_HZ:
        samples = _resample_linear(samples, audio.sample_rate, AUDIO_SAMPLE_RATE_HZ)
    if samples.shape[0] == 1:
        samples = np.repeat(samples, AUDIO_CHANNELS, axis=0)
    target = round(frame_count * AUDIO_SAMPLE_RATE_HZ / fps)
    if samples.shape[1] >= target:
        samples = samples[:, :target]
    else:
        samples = np.pad(samples, ((0, 0), (0, target - samples.shape[1])))
    samples = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.ascontiguousarray(np.clip(samples, -1.0, 1.0), dtype=np.float32)


def _resample_linear(samples: np.ndarray, source_hz: int, target_hz: int) -> np.ndarray:
    """Good enough for the rare engine that does not already produce 48 kHz."""
    count = max(1, math.floor(samples.shape[1] * target_hz / source_hz))
    positions = np.arange(count, dtype=np.float64) * (source_hz / target_hz)
    source = np.arange(samples.shape[1], dtype=np.float64)
    return np.stack([np.interp(positions, source, channel) for channel in samples]).astype(
        np.float32
    )


def _mux_audio(
    container: av.container.OutputContainer,
    stream: av.AudioStream,
    audio: np.ndarray,
    start: int,
    upto: int,
) -> int:
    """Encode whole AAC frames from ``start`` up to ``upto``; return where it stopped.

    Only the final call (``upto`` = end of audio) sends a short last frame, so every
    other frame has exactly the encoder's ``frame_size`` samples.
    """
    frame_size = stream.codec_context.frame_size or 1024
    total = audio.shape[1]
    while start + frame_size <= min(upto, total):
        _encode_audio_frame(container, stream, audio, start, frame_size)
        start += frame_size
    if upto >= total and start < total:
        _encode_audio_frame(container, stream, audio, start, total - start)
        start = total
    return start


def _encode_audio_frame(
    container: av.container.OutputContainer,
    stream: av.AudioStream,
    audio: np.ndarray,
    start: int,
    size: int,
) -> None:
    chunk = np.ascontiguousarray(audio[:, start : start + size])
    frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
    frame.sample_rate = AUDIO_SAMPLE_RATE_HZ
    frame.pts = start
    frame.time_base = Fraction(1, AUDIO_SAMPLE_RATE_HZ)
    container.mux(stream.encode(frame))


def _close_iterator(frames: Iterable[np.ndarray]) -> None:
    close = getattr(frames, "close", None)
    if callable(close):
        with contextlib.suppress(Exception):
            close()


def probe_mp4(path: Path) -> ProbeResult:
    """Describe the MP4 at ``path``; raise ``EngineError`` if it is not a usable video.

    The frame count comes from the container's sample table, falling back to counting
    packets (no decoding) when the muxer did not record it.
    """
    path = Path(path)
    try:
        container = av.open(str(path), mode="r")
    except av.FFmpegError as exc:
        raise _ffmpeg_failure("The video file could not be read", exc) from None
    except OSError as exc:
        logger.warning("the video file could not be read: %s", exc)
        raise EngineError("The video file could not be read") from None
    try:
        if not container.streams.video:
            raise EngineError("The file contains no video stream.")
        video = container.streams.video[0]
        ctx = video.codec_context
        rate = video.average_rate or video.base_rate or video.guessed_rate
        fps = float(rate) if rate else 0.0
        frame_count = video.frames or _count_packets(container, video.index)
        duration = _stream_seconds(video)
        if duration is None:
            duration = frame_count / fps if fps else float(container.duration or 0) / 1e6
        audio_codec = audio_rate = audio_channels = audio_duration = None
        has_audio = bool(container.streams.audio)
        if has_audio:
            audio = container.streams.audio[0]
            audio_codec = audio.codec_context.name
            audio_rate = audio.codec_context.sample_rate
            audio_channels = audio.codec_context.channels
            audio_duration = _stream_seconds(audio)
        return ProbeResult(
            codec=ctx.name,
            pix_fmt=ctx.pix_fmt,
            width=ctx.width,
            height=ctx.height,
            fps=fps,
            frame_count=frame_count,
            duration_seconds=duration,
            has_audio=has_audio,
            audio_codec=audio_codec,
            audio_sample_rate=audio_rate,
            audio_channels=audio_channels,
            audio_duration_seconds=audio_duration,
            faststart=_moov_before_mdat(path),
        )
    except av.FFmpegError as exc:
        raise _ffmpeg_failure("The video file could not be read", exc) from None
    finally:
        container.close()


def _stream_seconds(stream: av.stream.Stream) -> float | None:
    if stream.duration is None or stream.time_base is None:
        return None
    return float(stream.duration * stream.time_base)


def _count_packets(container: av.container.InputContainer, index: int) -> int:
    count = 0
    for packet in container.demux(container.streams[index]):
        if packet.size:
            count += 1
    container.seek(0)
    return count


def _moov_before_mdat(path: Path) -> bool:
    """Walk the top-level ISO-BMFF boxes; only headers are read, never the media data."""
    seen: list[bytes] = []
    with path.open("rb") as handle:
        size_total = path.stat().st_size
        offset = 0
        while offset + 8 <= size_total and len(seen) < 64:
            handle.seek(offset)
            header = handle.read(8)
            size, kind = struct.unpack(">I4s", header)
            if size == 1:
                size = struct.unpack(">Q", handle.read(8))[0]
            elif size == 0:
                size = size_total - offset
            if size < 8:
                break
            seen.append(kind)
            if kind in (b"moov", b"mdat"):
                return kind == b"moov"
            offset += size
    return False
