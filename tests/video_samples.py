"""Small input videos made on the spot with PyAV, for the ``video_url`` tests."""

from __future__ import annotations

import base64
import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def numbered_frame(index: int, size: tuple[int, int]) -> np.ndarray:
    """A frame whose colour encodes ``index`` (survives compression), with a moving bar."""
    width, height = size
    frame = np.zeros((height, width, 3), np.uint8)
    frame[..., 0] = (index * 37) % 256
    frame[..., 1] = (index * 11 + 60) % 256
    frame[..., 2] = 200 - (index * 5) % 150
    bar = (index * 7) % max(1, width - 16)
    frame[:, bar : bar + 16] = 255
    return frame


def make_video(
    seconds: float = 2.0,
    *,
    size: tuple[int, int] = (320, 180),
    fps: int = 24,
    codec: str = "libx264",
    container: str = "mp4",
    pix_fmt: str = "yuv420p",
) -> bytes:
    """An encoded video whose frame ``i`` is ``numbered_frame(i)``."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as output:
        stream = output.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height = size
        stream.pix_fmt = pix_fmt
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "crf": "18"}
        for index in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(numbered_frame(index, size), format="rgb24")
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return buffer.getvalue()


def video_data_uri(data: bytes, mime: str = "video/mp4") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def write_video(path: Path, **options: object) -> Path:
    path.write_bytes(make_video(**options))  # type: ignore[arg-type]
    return path
