"""The generation commands driven as a user would, as subprocesses against a live server."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from support import LiveServer, encode_image, inspect_mp4, picture

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(home=tmp_path_factory.mktemp("cli")).start()
    yield live
    live.stop()


def cli_env(server: LiveServer, **extra: str) -> dict[str, str]:
    env = {**os.environ, "REELFORGE_BASE_URL": server.url, "REELFORGE_API_KEY": server.key}
    env.pop("REELFORGE_HOME", None)
    return {**env, **extra}


def run(server: LiveServer, *args: str, cwd=None, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reelforge", *args],
        env=cli_env(server, **env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def job_total(server: LiveServer) -> int:
    return sum(httpx.get(f"{server.url}/health").json()["jobs"].values())


def test_generate_text_to_video(server, tmp_path) -> None:
    out = tmp_path / "clip.mp4"
    result = run(server, "generate", "a red kite over green hills", "-o", str(out), "--seed", "3")
    assert result.returncode == 0, result.stderr
    first_line = result.stdout.splitlines()[0]
    assert first_line.startswith("generation id: ") and first_line.endswith(":veo2")
    assert f"saved {out}" in result.stdout
    assert "completed" in result.stderr  # plain progress lines when not on a terminal
    facts = inspect_mp4(out)
    assert (facts.codec, facts.width, facts.height, facts.frames) == ("h264", 1280, 720, 120)


def test_generate_image_to_video_with_options_from_env(server, tmp_path) -> None:
    head, tail = tmp_path / "head.jpg", tmp_path / "tail.png"
    head.write_bytes(encode_image(picture((600, 900), seed=50)))
    tail.write_bytes(encode_image(picture((600, 900), seed=51), "PNG"))
    out = tmp_path / "portrait.mp4"
    result = run(
        server,
        "generate",
        "pan left",
        "--image",
        str(head),
        "--last-frame",
        str(tail),
        "--aspect-ratio",
        "auto",
        "-o",
        str(out),
        REELFORGE_MODEL="veo2/image-to-video",
        REELFORGE_DURATION="6",
    )
    assert result.returncode == 0, result.stderr
    facts = inspect_mp4(out)
    assert (facts.width, facts.height, facts.frames) == (720, 1280, 6 * 24)


def test_generate_veo3_without_audio(server, tmp_path) -> None:
    image = tmp_path / "in.webp"
    picture((800, 600), seed=52).save(image, "WEBP")
    out = tmp_path / "silent.mp4"
    result = run(
        server,
        "generate",
        "waves",
        "-m",
        "google/veo-3.0-i2v",
        "--image",
        str(image),
        "--duration",
        "4",
        "--no-audio",
        "-o",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    facts = inspect_mp4(out)
    assert facts.audio_codec is None and facts.frames == 96


def test_invalid_request_is_a_clear_error(server, tmp_path) -> None:
    result = run(server, "generate", "x", "--duration", "9", "-o", str(tmp_path / "x.mp4"))
    assert result.returncode == 1
    assert "duration" in result.stderr and "Expected 5 | 6 | 7 | 8" in result.stderr
    bad_key = run(server, "status", "x:veo2", REELFORGE_API_KEY="nope")
    assert bad_key.returncode == 1 and "API key" in bad_key.stderr


def test_status_download_and_models(server, tmp_path) -> None:
    job_id = server.create({"model": "veo2", "prompt": "a windmill", "seed": 9}).json()["id"]
    server.wait(job_id)
    status = run(server, "status", job_id)
    assert status.returncode == 0
    assert "status:   completed" in status.stdout and "/files/videos/" in status.stdout
    raw = json.loads(run(server, "status", job_id, "--json").stdout)
    assert raw["id"] == job_id and raw["video"]["file_size"] > 0
    out = tmp_path / "d.mp4"
    downloaded = run(server, "download", job_id, "-o", str(out))
    assert downloaded.returncode == 0, downloaded.stderr
    assert out.stat().st_size == raw["video"]["file_size"]
    models = run(server, "models")
    for name in ("veo2", "veo2/image-to-video", "google/veo-3.0-i2v", "105,000"):
        assert name in models.stdout


def test_ctrl_c_tells_how_to_resume(tmp_path) -> None:
    slow = LiveServer(
        home=tmp_path / "slow", env={"REELFORGE_PREVIEW_LATENCY_SECONDS": "6"}
    ).start()
    try:
        out = tmp_path / "later.mp4"
        process = subprocess.Popen(
            [sys.executable, "-m", "reelforge", "generate", "a slow sunrise", "-o", str(out)],
            env=cli_env(slow),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # A shell without job control starts background commands (`pytest ... &`) with
            # SIGINT ignored, and children inherit that: give the CLI the disposition a
            # terminal would, or the SIGINT below is silently dropped (exit 0, not 130).
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        first = process.stdout.readline()
        assert first.startswith("generation id: ")
        job_id = first.removeprefix("generation id: ").strip()
        # Interrupt once the CLI says it is following the running job (its piped display
        # prints a line per state), not after a guessed delay.
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(
            target=lambda: [lines.put(line) for line in process.stderr], daemon=True
        )
        reader.start()
        seen: list[str] = []
        deadline = time.monotonic() + 30
        while not any("generating" in line for line in seen):
            assert time.monotonic() < deadline, seen
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=0.5))
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        reader.join(timeout=10)
        while not lines.empty():
            seen.append(lines.get())
        stderr = "".join(seen)
        assert process.returncode == 130, stderr
        assert f"reelforge wait {job_id} -o {out}" in stderr
        assert not out.exists()

        resumed = run(slow, "wait", job_id, "-o", str(out))
        assert resumed.returncode == 0, resumed.stderr
        assert inspect_mp4(out).frames == 120
    finally:
        slow.stop()


def test_batch_runs_resumes_and_reports(server, tmp_path) -> None:
    (tmp_path / "start.jpg").write_bytes(encode_image(picture((800, 600), seed=53)))
    lines = [
        {"model": "veo2", "prompt": "a hot air balloon", "duration": "5", "output": "a.mp4"},
        {"model": "veo2/image-to-video", "prompt": "zoom in", "image_url": "start.jpg"},
        {"model": "veo2", "prompt": "broken", "duration": 9},
        "this is not json",
    ]
    source = tmp_path / "jobs.jsonl"
    source.write_text("\n".join(json.dumps(x) if isinstance(x, dict) else x for x in lines) + "\n")
    out_dir = tmp_path / "out"
    args = ("batch", str(source), "--out-dir", str(out_dir), "--concurrency", "2")
    first = run(server, *args)
    assert first.returncode == 1, first.stderr
    assert "2 of 4 completed" in first.stdout
    assert inspect_mp4(out_dir / "a.mp4").frames == 120
    assert inspect_mp4(out_dir / "line-0002.mp4").frames == 120
    manifest = json.loads((out_dir / "manifest.json").read_text())["entries"]
    assert manifest["1"]["status"] == "completed" and manifest["1"]["id"].endswith(":veo2")
    assert "duration" in manifest["3"]["error"]
    assert "invalid JSON" in manifest["4"]["error"]

    jobs_before = job_total(server)
    second = run(server, *args)
    assert second.returncode == 1
    assert job_total(server) == jobs_before  # nothing finished was submitted again
    again = json.loads((out_dir / "manifest.json").read_text())["entries"]
    assert again["1"]["id"] == manifest["1"]["id"]

    source.write_text(json.dumps(lines[0]) + "\n")
    only_good = run(server, *args)
    assert only_good.returncode == 0
    assert "1 of 1 completed" in only_good.stdout
