"""A custom engine for scale tests: instant, and it logs every execution.

Selected with ``REELFORGE_ENGINE=quick_engine:create`` (the tests put this directory on
``PYTHONPATH``). Each ``generate`` appends ``<job seed> <model> <pid>`` to the file named
by ``REELFORGE_TEST_EXECUTION_LOG`` (one ``write`` of a short line in append mode, so
lines from many processes never interleave) and returns a copy of a tiny real MP4, so a
test can count executions per job across processes without spending CPU on video.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from pathlib import Path

from reelforge.engines.base import Capabilities, GenerationRequest, Inputs, JobContext
from reelforge.media.clip import Clip
from reelforge.settings import Settings

SECONDS_ENV = "REELFORGE_TEST_ENGINE_SECONDS"
LOG_ENV = "REELFORGE_TEST_EXECUTION_LOG"


@functools.cache
def _sample() -> Path:
    from fakes import sample_mp4

    path = Path(tempfile.mkdtemp()) / "sample.mp4"
    path.write_bytes(sample_mp4())
    return path


class QuickEngine:
    name = "quick"

    def capabilities(self, model: str) -> Capabilities:
        return Capabilities()

    def load(self) -> None:
        _sample()

    def close(self) -> None:
        pass

    def generate(self, request: GenerationRequest, inputs: Inputs, job: JobContext) -> Clip:
        line = f"{request.seed} {request.model} {os.getpid()}\n".encode()
        fd = os.open(os.environ[LOG_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        seconds = float(os.environ.get(SECONDS_ENV, "0"))
        steps = max(1, int(seconds / 0.05))
        for step in range(steps):
            job.report(step / steps, "rendering")
            job.sleep(seconds / steps)
        copy = Path(tempfile.mkdtemp()) / "clip.mp4"
        shutil.copyfile(_sample(), copy)
        return Clip(width=320, height=180, frame_count=24, file=copy)


def create(settings: Settings) -> QuickEngine:
    return QuickEngine()
