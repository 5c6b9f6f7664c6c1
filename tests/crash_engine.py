"""An engine that misbehaves on request, for the crash-isolation tests.

Selected with ``REELFORGE_ENGINE=crash_engine:create`` (the tests put this directory on
``PYTHONPATH``). The prompt says what to do: ``segfault`` dereferences a null pointer
(as a broken native library would), ``exit`` calls ``os._exit``, ``hang`` blocks without
ever looking at its job context (a stuck model load), ``linger`` waits politely until
its job is cancelled or handed back; anything else returns a tiny real MP4 at once.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import tempfile
import threading
from pathlib import Path

from quick_engine import _sample
from reelforge.engines.base import Capabilities, GenerationRequest, Inputs, JobContext
from reelforge.media.clip import Clip
from reelforge.settings import Settings


class CrashEngine:
    name = "crash"

    def capabilities(self, model: str) -> Capabilities:
        return Capabilities()

    def load(self) -> None:
        _sample()

    def close(self) -> None:
        pass

    def generate(self, request: GenerationRequest, inputs: Inputs, job: JobContext) -> Clip:
        if "segfault" in request.prompt:
            ctypes.string_at(0)
        if "exit" in request.prompt:
            os._exit(3)
        if "hang" in request.prompt:
            threading.Event().wait()
        if "linger" in request.prompt:
            while True:
                job.report(0.5, "lingering")
                job.sleep(1.0)  # raises once the job must stop
        copy = Path(tempfile.mkdtemp()) / "clip.mp4"
        shutil.copyfile(_sample(), copy)
        return Clip(width=320, height=180, frame_count=24, file=copy)


def create(settings: Settings) -> CrashEngine:
    return CrashEngine()
