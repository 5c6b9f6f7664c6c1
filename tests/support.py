"""Test helpers: a real ``reelforge serve`` on loopback, test images, MP4 inspection."""

from __future__ import annotations

import base64
import contextlib
import io
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import av
import httpx
import numpy as np
from PIL import Image, ImageDraw

if TYPE_CHECKING:
    from reelforge.engines.upstream import UpstreamOptions

SERVER_START_TIMEOUT_SECONDS = 60.0


def wait_until(condition, timeout: float = 10.0, interval: float = 0.01) -> None:
    """Poll ``condition`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    """``python -m reelforge serve`` in a subprocess, with its own home directory."""

    home: Path
    keys: tuple[str, ...] = ("test-key-1", "test-key-2")
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def key(self) -> str:
        return self.keys[0]

    @property
    def log_path(self) -> Path:
        return self.home / "server.log"

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    def start(self) -> LiveServer:
        self.home.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "REELFORGE_HOME": str(self.home),
            "REELFORGE_API_KEYS": ",".join(self.keys),
            "REELFORGE_LOG_LEVEL": "info",
            # Tests check content and structure, not compression: encode fast.
            "REELFORGE_ENCODER_PRESET": "ultrafast",
            **self.env,
        }
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reelforge", "serve", "--port", str(self.port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + SERVER_START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"server did not start:\n{self.log_path.read_text()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def create(self, body: dict, key: str | None = None) -> httpx.Response:
        return httpx.post(
            f"{self.url}/v2/video/generations", json=body, headers=self.headers(key), timeout=30
        )

    def get(self, generation_id: str, key: str | None = None) -> httpx.Response:
        return httpx.get(
            f"{self.url}/v2/video/generations",
            params={"generation_id": generation_id},
            headers=self.headers(key),
            timeout=30,
        )

    def wait(self, generation_id: str, timeout: float = 120.0, key: str | None = None) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.get(generation_id, key).json()
            if body["status"] in ("completed", "error"):
                return body
            time.sleep(0.2)
        raise TimeoutError(f"{generation_id} still {body['status']} after {timeout} s")


def picture(size: tuple[int, int] = (1024, 768), seed: int = 1) -> Image.Image:
    """A recognisable test picture: gradient, shapes and fine texture (so motion shows)."""
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / width * 255, y / height * 255, (x + y) / (width + height) * 255], -1)
    noise = rng.integers(0, 40, (height, width, 3))
    image = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, width - 60)), int(rng.integers(0, height - 60))
        radius = int(rng.integers(20, 120))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        draw.ellipse((x0, y0, x0 + radius, y0 + radius), fill=colour)
    return image


def encode_image(image: Image.Image, fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, quality=92)
    return buffer.getvalue()


def data_uri(image: Image.Image, fmt: str = "JPEG") -> str:
    mime = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}[fmt]
    return f"data:{mime};base64," + base64.b64encode(encode_image(image, fmt)).decode()


@dataclass
class VideoFacts:
    codec: str
    pix_fmt: str
    width: int
    height: int
    fps: float
    frames: int
    duration: float
    audio_codec: str | None
    audio_rate: int | None
    audio_duration: float | None
    first: np.ndarray
    last: np.ndarray
    motion: list[float]
    """Mean absolute difference between consecutive frames."""
    change_per_second: list[float]
    """Mean absolute difference between the first and last frame of each second."""


def inspect_mp4(path: Path) -> VideoFacts:
    """Decode every frame with PyAV and collect what the tests check."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        frames: list[np.ndarray] = []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
        audio_duration = None
        if audio is not None and audio.duration is not None:
            audio_duration = float(audio.duration * audio.time_base)
        small = [f[::8, ::8].astype(np.int16) for f in frames]
        motion = [float(np.abs(b - a).mean()) for a, b in itertools.pairwise(small)]
        fps = round(float(video.average_rate))
        change = [
            float(np.abs(small[end] - small[start]).mean())
            for start in range(0, len(small) - 1, fps)
            for end in [min(start + fps - 1, len(small) - 1)]
        ]
        return VideoFacts(
            codec=video.codec_context.name,
            pix_fmt=video.codec_context.pix_fmt,
            width=video.width,
            height=video.height,
            fps=float(video.average_rate),
            frames=len(frames),
            duration=float(video.duration * video.time_base) if video.duration else 0.0,
            audio_codec=audio.codec_context.name if audio else None,
            audio_rate=audio.codec_context.sample_rate if audio else None,
            audio_duration=audio_duration,
            first=frames[0],
            last=frames[-1],
            motion=motion,
            change_per_second=change,
        )


def first_frame(mp4: bytes) -> np.ndarray:
    """The first decoded frame of an MP4, without decoding the rest."""
    with av.open(io.BytesIO(mp4)) as container:
        frame = next(container.decode(video=0))
        return frame.to_ndarray(format="rgb24")


def download(url: str, target: Path) -> httpx.Response:
    response = httpx.get(url, timeout=60)
    response.raise_for_status()
    target.write_bytes(response.content)
    return response


def difference(a: np.ndarray, b: np.ndarray, block: int = 8) -> float:
    """Mean absolute difference of ``block``-pixel averages: structure, not codec noise."""
    height, width = (a.shape[0] // block) * block, (a.shape[1] // block) * block

    def pooled(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)[:height, :width]
        return x.reshape(height // block, block, width // block, block, -1).mean(axis=(1, 3))

    return float(np.abs(pooled(a) - pooled(b)).mean())


TESTS_DIR = Path(__file__).resolve().parent


@dataclass
class WorkerProcess:
    """``python -m reelforge worker`` in a subprocess (a worker "machine")."""

    home: Path
    env: dict[str, str] = field(default_factory=dict)
    concurrency: int = 1
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.home / "worker.log"

    def start(self) -> WorkerProcess:
        self.home.mkdir(parents=True, exist_ok=True)
        python_path = os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")]))
        env = {
            **os.environ,
            "REELFORGE_HOME": str(self.home),
            "REELFORGE_ENCODER_PRESET": "ultrafast",
            "PYTHONPATH": python_path,
            **self.env,
        }
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reelforge", "worker", "--concurrency", str(self.concurrency)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def signal(self, sig: int) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)

    def wait(self, timeout: float = 60) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def upstream_options(**overrides: object) -> UpstreamOptions:
    """An upstream engine's options as ``from_settings`` would pass them, at test speed;
    the fakes' CDN (``localhost``) is admitted, as an operator would a private upstream."""
    from reelforge.engines.upstream import UpstreamOptions
    from reelforge.media.netguard import FetchPolicy

    values: dict = {"policy": FetchPolicy(allow=("localhost",)), "poll_seconds": 0.02}
    values.update(timeout_seconds=60.0, max_video_bytes=2**30)
    return UpstreamOptions(**{**values, **overrides})


@contextlib.contextmanager
def stores_in_two_processes(url: str, api_store: type | None = None):
    """Two job stores on separate engines and event hubs, listening: an API process and
    a worker process sharing one database (events cross as LISTEN/NOTIFY on
    PostgreSQL, as Unix datagrams beside a SQLite file)."""
    from reelforge.jobs import JobStore
    from reelforge.jobs.db import make_engine, upgrade
    from reelforge.jobs.events import EventHub, transport_for

    api_engine, worker_engine = make_engine(url), make_engine(url)
    upgrade(api_engine)
    api = (api_store or JobStore)(api_engine, events=EventHub(transport_for(api_engine)))
    worker = JobStore(worker_engine, events=EventHub(transport_for(worker_engine)))
    worker.events.start()
    api.events.start()
    try:
        yield api, worker
    finally:
        worker.events.stop()
        api.events.stop()
        api_engine.dispose()
        worker_engine.dispose()
