"""Reusing a seed reproduces the video bit for bit, whatever the heap held before.

Each request is rendered and encoded in several fresh processes, some with glibc's
``MALLOC_PERTURB_`` (new allocations filled with a pattern, so anything that reads memory
it never wrote sees different garbage in each process). Every raw frame, the soundtrack
and the MP4 bytes must be identical. 9:16 sizes matter: x264's AVX-512 MB-tree kernel
read uninitialised memory when the frame is not a multiple of 8 macroblocks wide, which
changed the first GOP (see ``reelforge.media.encode.X264_PARAMS``). One second is
enough to show it.

Run as a script, this file is the child process: it renders the requests described in
a JSON file and prints the digests.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from reelforge.engines.base import GenerationRequest, Inputs, JobContext
from reelforge.engines.preview import PreviewEngine
from reelforge.media.encode import encode_mp4

pytestmark = pytest.mark.integration

AUDIT_PROMPT = "A paper boat drifts down a rainy street at dusk"
REQUESTS: dict[str, dict[str, Any]] = {
    # The audit's request (veo2, 9:16 720P, seed 7), one second instead of six.
    "text": {"model": "veo2", "prompt": AUDIT_PROMPT, "seed": 7, "size": [720, 1280]},
    "image": {
        "model": "veo2/image-to-video",
        "prompt": "Slow zoom in on the harbour at dusk",
        "seed": 3,
        "size": [720, 1280],
        "image": True,
    },
    "audio": {
        "model": "google/veo-3.0-i2v",
        "prompt": "Waves roll onto the beach, pan left",
        "seed": 5,
        "size": [1080, 1920],
        "image": True,
        "audio": True,
    },
}
PERTURB = (None, "77", "13", "200")
"""``MALLOC_PERTURB_`` per process; None leaves it unset."""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _render(spec: dict[str, Any], image: Image.Image, out: Path) -> dict[str, Any]:
    width, height = spec["size"]
    request = GenerationRequest(
        model=spec["model"],
        prompt=spec["prompt"],
        duration_seconds=1,
        width=width,
        height=height,
        seed=spec["seed"],
        generate_audio=bool(spec.get("audio")),
        aspect_ratio="9:16" if height > width else "16:9",
    )
    inputs = Inputs(image=image) if spec.get("image") else Inputs()
    clip = PreviewEngine().generate(request, inputs, JobContext())
    assert clip.frames is not None
    frames: list[str] = []

    def tap(source: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        for frame in source:
            frames.append(_sha(np.ascontiguousarray(frame).tobytes()))
            yield frame

    clip.frames = tap(clip.frames)
    encode_mp4(clip, out)
    audio = None
    if clip.audio is not None:
        audio = _sha(np.ascontiguousarray(clip.audio.samples).tobytes())
    return {"frames": frames, "audio": audio, "mp4": _sha(out.read_bytes())}


def _child(spec_path: Path) -> None:
    job = json.loads(spec_path.read_text())
    out = Path(job["out"])
    image = Image.open(job["image"]).convert("RGB")
    digests = {
        name: _render(spec, image, out / f"{name}.mp4") for name, spec in job["requests"].items()
    }
    print(json.dumps(digests))


def _spawn(tmp_path: Path, index: int, perturb: str | None, image: Path) -> subprocess.Popen:
    out = tmp_path / f"run-{index}"
    out.mkdir()
    spec = out / "job.json"
    spec.write_text(json.dumps({"out": str(out), "image": str(image), "requests": REQUESTS}))
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_PERTURB_"}
    if perturb is not None:
        env["MALLOC_PERTURB_"] = perturb
    return subprocess.Popen(
        [sys.executable, __file__, str(spec)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _differences(expected: dict[str, Any], got: dict[str, Any]) -> list[str]:
    problems = []
    pairs = zip(expected["frames"], got["frames"], strict=True)
    frames = [i for i, (a, b) in enumerate(pairs) if a != b]
    if frames:
        problems.append(f"raw frames {frames} differ")
    if expected["audio"] != got["audio"]:
        problems.append("the soundtrack differs")
    if expected["mp4"] != got["mp4"]:
        problems.append("the MP4 bytes differ")
    return problems


def test_same_requests_give_identical_bytes_in_fresh_processes(tmp_path: Path) -> None:
    from support import picture

    image = tmp_path / "input.png"
    picture((640, 480), seed=2).save(image)
    processes = [_spawn(tmp_path, i, p, image) for i, p in enumerate(PERTURB)]
    results = []
    for perturb, process in zip(PERTURB, processes, strict=True):
        stdout, stderr = process.communicate(timeout=240)
        assert process.returncode == 0, f"MALLOC_PERTURB_={perturb}: {stderr}"
        results.append(json.loads(stdout))

    baseline = results[0]
    for name in REQUESTS:
        assert len(baseline[name]["frames"]) == 24
    failures = [
        f"{name} with MALLOC_PERTURB_={perturb}: " + ", ".join(problems)
        for perturb, result in zip(PERTURB[1:], results[1:], strict=True)
        for name in REQUESTS
        if (problems := _differences(baseline[name], result[name]))
    ]
    assert not failures, "\n".join(failures)


if __name__ == "__main__":
    _child(Path(sys.argv[1]))
