"""Input videos (``video_url``): vetting the reference, probing and decoding the file.

A ``video_url`` is an http(s) URL or a ``data:video/...;base64,`` URI, as the published
schema describes ("a HTTPS URL pointing to a video or a data URI containing a video").
At submit time ``check_video_ref`` does what needs neither a fetch nor a decoder: the
URL's scheme and address, the data URI's size and the container's magic bytes. In the
worker the file is fetched (``fetch_to_file``: same SSRF guard as images, its own size
and time limits), ``probe_video`` checks container, codec, size, duration and that a
frame decodes, and ``video_frames`` decodes it lazily for an engine. PyAV never runs in
the API process.

Nothing here logs or echoes video bytes or data URIs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from reelforge.errors import InvalidRequest, InvalidVideo
from reelforge.media.fetch import format_seconds
from reelforge.media.fit import fit_frame
from reelforge.media.netguard import FetchPolicy, check_url, parse_target
from reelforge.media.refs import MediaRef, decode_data_uri_payload

if TYPE_CHECKING:
    import av

logger = logging.getLogger(__name__)

CONTAINERS = {"mov": "MP4/MOV", "mp4": "MP4/MOV", "webm": "WebM", "matroska": "Matroska"}
"""FFmpeg demuxer names we open (a demuxer lists several, e.g. ``mov,mp4,m4a,...``)."""
CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "av1", "mpeg4"})
"""Video codecs we decode: what cameras, phones, browsers and video models produce."""
SUPPORTED_TEXT = "an MP4, MOV, WebM or Matroska video (H.264, H.265, VP8, VP9, AV1 or MPEG-4)"
ACCEPTED_TEXT = "an http(s) URL or a data URI (data:video/mp4;base64,...)"
MAX_FPS = 240
"""Frames per second beyond which a file is refused (its frame count would be absurd)."""
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_IMAGE_BRANDS = (b"avif", b"avis", b"heic", b"heix", b"mif1", b"msf1")


@dataclass(frozen=True)
class VideoFacts:
    """What ``probe_video`` found; the frame count and duration come from demuxing."""

    container: str
    codec: str
    width: int
    height: int
    fps: float
    frame_count: int
    duration_seconds: float


def sniff_video_container(data: bytes) -> str | None:
    """``"mp4"`` (MP4/MOV/3GP) or ``"webm"`` (WebM/Matroska) from magic bytes, else None."""
    if data[4:8] == b"ftyp" and data[8:12] not in _IMAGE_BRANDS:
        return "mp4"
    if data[4:8] in (b"moov", b"mdat", b"wide", b"free"):
        return "mp4"  # QuickTime files without an ftyp box
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"
    return None


def video_mime(path: Path) -> str:
    """``video/mp4`` or ``video/webm`` for a vetted input video, from its magic bytes."""
    with path.open("rb") as handle:
        kind = sniff_video_container(handle.read(64))
    return "video/webm" if kind == "webm" else "video/mp4"


def parse_video_ref(value: str, *, field: str, max_bytes: int) -> MediaRef:
    """Classify and check a ``video_url`` without network access; raises ``InvalidRequest``."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise InvalidRequest(f"{field} is empty; expected {ACCEPTED_TEXT}", field)
    match = _SCHEME_RE.match(text)
    scheme = match.group(1).lower() if match else ""
    if scheme in ("http", "https"):
        parse_target(text, field=field)
        return MediaRef(kind="url", url=text)
    if scheme != "data":
        shown = f"the unsupported scheme '{scheme[:20]}'" if scheme else "no URL scheme"
        raise InvalidRequest(f"{field} has {shown}; expected {ACCEPTED_TEXT}", field)
    header, comma, payload = text.partition(",")
    params = [part.strip().lower() for part in header[len("data:") :].split(";")]
    if not comma or len(header) > 200 or "base64" not in params[1:]:
        raise InvalidRequest(
            f"{field} is not a valid video data URI; expected data:video/<type>;base64,<data>",
            field,
        )
    if not params[0].startswith("video/"):
        raise InvalidRequest(
            f"{field} data URI has the media type {params[0][:30] or 'none'}; "
            "expected a video type such as video/mp4",
            field,
        )
    data = decode_data_uri_payload(payload, field=field, max_bytes=max_bytes)
    if sniff_video_container(data) is None:
        raise InvalidRequest(f"{field} is not a supported video; send {SUPPORTED_TEXT}", field)
    return MediaRef(kind="data", data=data, mime=params[0])


def check_video_ref(value: str, policy: FetchPolicy, *, field: str, max_bytes: int) -> MediaRef:
    """Submit side: everything short of fetching and decoding (those run in the worker)."""
    ref = parse_video_ref(value, field=field, max_bytes=max_bytes)
    if ref.url is not None:
        check_url(ref.url, policy, field=field)
    return ref


def probe_video(path: Path, *, field: str, max_seconds: float, max_pixels: int) -> VideoFacts:
    """Check an untrusted video file before anyone decodes it; raises ``InvalidVideo``.

    Container and codec must be on the allow-lists; size, frame rate and duration are
    checked from headers and by demuxing every packet of the video stream (no decoding;
    a header that lies about the duration is caught); then one frame is decoded.
    """
    import av  # only workers decode videos; the API process never loads PyAV for them

    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, ValueError):
        raise InvalidVideo(
            f"{field} is not a video file reelforge can read; send {SUPPORTED_TEXT}"
        ) from None
    try:
        names = set(container.format.name.split(","))
        kinds = sorted({CONTAINERS[name] for name in names if name in CONTAINERS})
        if not kinds:
            raise InvalidVideo(
                f"{field} is a {container.format.long_name or container.format.name} file, "
                f"which is not supported; send {SUPPORTED_TEXT}"
            )
        if not container.streams.video:
            raise InvalidVideo(f"{field} contains no video stream")
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        if codec not in CODECS:
            raise InvalidVideo(
                f"{field} uses the {codec} codec, which is not supported; send {SUPPORTED_TEXT}"
            )
        width, height = stream.codec_context.width, stream.codec_context.height
        if width <= 0 or height <= 0:
            raise InvalidVideo(f"{field} has no picture size")
        if width * height > max_pixels:
            raise InvalidVideo(
                f"{field} is {width}x{height}; "
                f"the limit is {max_pixels / 1e6:g} megapixels per frame"
            )
        frames, seconds = _demux_length(container, stream, field, max_seconds)
        if frames == 0:
            raise InvalidVideo(f"{field} contains no frames")
        if seconds > max_seconds:
            raise InvalidVideo(
                f"{field} is {format_seconds(seconds)} long; "
                f"the limit is {format_seconds(max_seconds)}"
            )
        fps = frames / seconds if seconds > 0 else float(stream.average_rate or 0)
        if fps > MAX_FPS:
            raise InvalidVideo(f"{field} has {fps:.0f} frames per second; the limit is {MAX_FPS}")
        container.seek(0)
        if next(container.decode(stream), None) is None:
            raise InvalidVideo(f"{field} contains no decodable frame")
    except InvalidVideo:
        raise
    except (av.FFmpegError, OSError, ValueError, MemoryError) as error:
        logger.info("input video unreadable", extra={"field": field, "error": type(error).__name__})
        raise InvalidVideo(
            f"{field} could not be decoded: the file is truncated or corrupt"
        ) from None
    finally:
        container.close()
    return VideoFacts(
        container=kinds[0],
        codec=codec,
        width=width,
        height=height,
        fps=fps or 24.0,
        frame_count=frames,
        duration_seconds=seconds,
    )


def _demux_length(
    container: av.container.InputContainer, stream: av.VideoStream, field: str, max_seconds: float
) -> tuple[int, float]:
    """Packets of ``stream`` and the time its last one ends, stopping past the limits."""
    base = stream.time_base
    start = stream.start_time or 0
    frames, end = 0, 0.0
    for packet in container.demux(stream):
        if packet.size == 0 or packet.pts is None or base is None:
            continue
        frames += 1
        finish = float((packet.pts - start + (packet.duration or 0)) * base)
        end = max(end, finish)
        if end > max_seconds * 2 or frames > max_seconds * MAX_FPS:
            raise InvalidVideo(f"{field} is longer than {format_seconds(max_seconds)} (the limit)")
    return frames, end


def output_frame_count(duration_seconds: float, fps: int) -> int:
    """Frames a video of ``duration_seconds`` has at ``fps`` (at least one)."""
    return max(1, round(duration_seconds * fps))


def video_frames(path: Path, size: tuple[int, int], count: int, fps: int) -> Iterator[np.ndarray]:
    """``count`` RGB frames of the video at ``path`` at ``fps``, each fitted to ``size``.

    Frame ``k`` shows what the source shows at ``k / fps`` s (the latest source frame
    that started by then), so any source rate becomes ``fps`` without speeding up or
    slowing down. Decoding is lazy: one source frame at a time.
    """
    import av

    with av.open(str(path), mode="r") as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        start = stream.start_time or 0
        base = stream.time_base
        current: np.ndarray | None = None
        pending = None
        decoded = container.decode(stream)
        for index in range(count):
            moment = index / fps
            while True:
                if pending is None:
                    pending = next(decoded, None)
                    if pending is None:
                        break
                shown = float((pending.pts - start) * base) if pending.pts is not None else 0.0
                if current is not None and shown > moment + 1e-6:
                    break
                current = np.asarray(fit_frame(pending.to_image(), size))
                pending = None
            if current is None:
                raise InvalidVideo("the input video has no decodable frame")
            yield current
