"""The published Python examples, run unchanged against a live reelforge.

Only the base URL, the key and the image (a data URI instead of an internet URL) are
swapped. Each example polls with its own 10-15 s sleeps, so they run concurrently.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from reelforge.media.fit import fit_frame
from support import LiveServer, data_uri, difference, download, inspect_mp4, picture

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).parent.parent / "examples"
PUBLISHED_BASE = "https://api.aimlapi.com/v2"
PUBLISHED_IMAGE = "https://s2-111386.kwimgs.com/bs2/mmu-aiplatform-temp/kling/20240620/1.jpeg"
EXAMPLE_TIMEOUT_SECONDS = 240

CASES = {
    # example file: (model, duration s, size, has audio)
    "veo2_text_to_video.py": ("veo2", 5, (1280, 720), False),
    "veo2_image_to_video.py": ("veo2/image-to-video", 5, (1280, 720), False),
    "veo3_image_to_video.py": ("google/veo-3.0-i2v", 8, (1280, 720), True),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    live = LiveServer(home=tmp_path_factory.mktemp("published")).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def image():
    return picture((1024, 1024), seed=3)


@pytest.fixture(scope="module")
def results(server: LiveServer, image, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run all examples at once; returns each example's final printed response."""
    workdir = tmp_path_factory.mktemp("examples")
    uri = data_uri(image)
    running = {}
    for name in CASES:
        source = (EXAMPLES / name).read_text()
        assert PUBLISHED_BASE in source and "<YOUR_AIMLAPI_KEY>" in source
        source = source.replace(PUBLISHED_BASE, f"{server.url}/v2")
        source = source.replace("<YOUR_AIMLAPI_KEY>", server.key)
        source = source.replace(PUBLISHED_IMAGE, uri)
        script = workdir / name
        script.write_text(source)
        running[name] = subprocess.Popen(
            [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    outputs = {}
    for name, process in running.items():
        stdout, stderr = process.communicate(timeout=EXAMPLE_TIMEOUT_SECONDS)
        assert process.returncode == 0, stderr
        marker = stdout.index("Processing complete")
        outputs[name] = ast.literal_eval(stdout[stdout.index("{", marker) :].strip())
    return outputs


@pytest.mark.parametrize("name", list(CASES))
def test_example_completes_with_a_valid_video(name: str, results: dict, server, image, tmp_path):
    model, duration, (width, height), has_audio = CASES[name]
    result = results[name]
    assert result["status"] == "completed", result
    assert result["id"].endswith(f":{model}")
    assert result["error"] is None
    assert result["meta"]["usage"]["credits_used"] > 0
    video = result["video"]
    assert video["content_type"] == "video/mp4"
    assert video["url"].startswith(server.url)

    target = tmp_path / video["file_name"]
    response = download(video["url"], target)
    assert int(response.headers["content-length"]) == video["file_size"] == target.stat().st_size
    assert response.headers["content-type"] == "video/mp4"

    facts = inspect_mp4(target)
    assert (facts.codec, facts.pix_fmt) == ("h264", "yuv420p")
    assert (facts.width, facts.height) == (width, height)
    assert facts.fps == 24
    assert facts.frames == duration * 24
    assert facts.duration == pytest.approx(duration, abs=0.05)
    if has_audio:
        assert facts.audio_codec == "aac"
        assert facts.audio_duration == pytest.approx(duration, abs=0.05)
    else:
        assert facts.audio_codec is None
    # Motion throughout: every second of the clip changes visibly, and no frame repeats.
    assert min(facts.change_per_second) > 1.0, facts.change_per_second
    assert min(facts.motion) > 0.0
    if model != "veo2":
        assert difference(facts.first, fit_frame(image, (width, height))) < 3


def test_legacy_and_universal_paths_are_the_same_resource(results: dict, server) -> None:
    generation_id = results["veo2_text_to_video.py"]["id"]
    legacy = httpx.get(
        f"{server.url}/v2/generate/video/google/generation",
        params={"generation_id": generation_id},
        headers=server.headers(),
    ).json()
    universal = server.get(generation_id).json()
    assert unsigned(legacy) == unsigned(universal)


def unsigned(document: dict) -> dict:
    """The document without its URLs' signatures: each GET signs afresh, and two GETs
    may fall on both sides of a second (``expires`` differs)."""
    video = dict(document["video"] or {})
    for name in ("url", "thumbnail_url"):
        if video.get(name):
            video[name] = video[name].split("?", 1)[0]
    return {**document, "video": video}
