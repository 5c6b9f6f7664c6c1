"""The container image really builds and runs: a video generated through the containerised API.

These machines have no Docker daemon and refuse ``podman run`` (the sandbox denies
``setrlimit``), and public image registries cannot be reached. What works, and what this
test does:

1. A base image with Python: ``debootstrap --variant=minbase bookworm`` with python3,
   python3-venv and ca-certificates, imported with ``podman import`` (the root file system
   is cached as a tarball under ``~/.cache/reelforge-tests``, the image is kept in podman's
   store). ``REELFORGE_TEST_BASE_IMAGE`` names another base (e.g. ``python:3.12-slim``
   where a registry is reachable).
2. ``podman build --isolation chroot --network host`` of the repository's Dockerfile with
   ``--build-arg BASE_IMAGE=<that image>``, and the host's CA bundle mounted for pip
   (``--build-arg PIP_CERT=...``), as a user behind a TLS-inspecting proxy would.
3. The image's own configuration (user, environment, entrypoint, command, volume, port,
   health check) is read with ``podman image inspect``; its file system is mounted with
   ``podman image mount``, and its entrypoint and command run under ``chroot`` as the image's
   user, in a private mount namespace (``unshare``) with a fresh ``/data`` volume, ``/tmp``,
   ``/proc`` and ``/dev`` mounted the way a container runtime would.
4. ``reelforge db upgrade`` runs from the image, then ``reelforge serve``; the image's
   health check passes against it; a ``veo2`` video is created over HTTP, downloaded and
   decoded.

It takes minutes, so it is marked ``container`` and deselected from the default run
(pyproject addopts); ``.ci/run`` runs it as its own step after the README's test command:
``pytest -m container -n 0 -s tests/deploy/test_image_build.py``. It never skips: without
podman, debootstrap or root it fails and says what is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support import free_port, inspect_mp4

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "reelforge-tests"
BASE_IMAGE = "localhost/reelforge-test-base:bookworm-python3"
ROOTFS_TARBALL = CACHE / "bookworm-minbase-python3.tar"
DEBIAN_MIRROR = os.environ.get("REELFORGE_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
BUILD_TIMEOUT_SECONDS = 900

pytestmark = [pytest.mark.container, pytest.mark.timeout(1500)]


class Timings:
    """Wall time of each phase, printed as the test goes (run it with -s to watch)."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        print(f"[container] {name} ...", flush=True)
        start = time.monotonic()
        yield
        self.phases[name] = time.monotonic() - start
        print(f"[container] {name}: {self.phases[name]:.1f} s", flush=True)


def run(command: list[str], log: Path, timeout: float, **kwargs: object) -> None:
    """Run a command with its output in ``log``; fail with the log's tail if it fails."""
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(map(str, command))}\n".encode())
        out.flush()
        result = subprocess.run(
            command, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False, **kwargs
        )
    if result.returncode != 0:
        tail = log.read_text(errors="replace")[-6000:]
        pytest.fail(f"{command[0]} {command[1]} failed ({result.returncode}):\n{tail}")


def output(command: list[str], timeout: float = 60) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed:\n{result.stderr}")
    return result.stdout


def require_tools() -> None:
    tools = ["podman", "unshare", "chroot"]
    if not os.environ.get("REELFORGE_TEST_BASE_IMAGE"):
        tools.append("debootstrap")
    missing = [tool for tool in tools if not shutil.which(tool)]
    if missing:
        pytest.fail(
            f"the container test needs {', '.join(missing)}: "
            "apt-get install podman debootstrap (.ci/run installs them)"
        )
    if os.geteuid() != 0:
        pytest.fail("the container test needs root (debootstrap, podman's store, chroot)")


def base_image(log: Path) -> str:
    """The base image to build on: the configured one, or the cached Debian one."""
    configured = os.environ.get("REELFORGE_TEST_BASE_IMAGE")
    if configured:
        return configured
    exists = subprocess.run(["podman", "image", "exists", BASE_IMAGE], check=False)
    if exists.returncode == 0:
        return BASE_IMAGE
    if not ROOTFS_TARBALL.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        rootfs = CACHE / f"rootfs-{uuid.uuid4().hex[:8]}"
        try:
            run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    "--include=python3,python3-venv,ca-certificates",
                    "bookworm",
                    str(rootfs),
                    DEBIAN_MIRROR,
                ],
                log,
                timeout=900,
            )
            # Package caches are no part of an image.
            for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for path in (rootfs / leftover).glob("*"):
                    if path.is_file():
                        path.unlink()
            staging = ROOTFS_TARBALL.with_suffix(f".{uuid.uuid4().hex[:8]}")
            run(["tar", "-C", str(rootfs), "-cf", str(staging), "."], log, timeout=300)
            staging.rename(ROOTFS_TARBALL)
        finally:
            shutil.rmtree(rootfs, ignore_errors=True)
    run(["podman", "import", str(ROOTFS_TARBALL), BASE_IMAGE], log, timeout=300)
    return BASE_IMAGE


def host_index_url() -> str | None:
    """The package index pip uses on this machine, when it is one a build can reach."""
    url = os.environ.get("PIP_INDEX_URL")
    if not url:
        found = subprocess.run(
            [sys.executable, "-m", "pip", "config", "get", "global.index-url"],
            capture_output=True,
            text=True,
            check=False,
        )
        url = found.stdout.strip() if found.returncode == 0 else None
    return url if url and url.startswith(("http://", "https://")) else None


def build_image(tag: str, base: str, log: Path) -> None:
    command = [
        "podman",
        "build",
        "--isolation",
        "chroot",
        "--network",
        "host",
        "--format",
        "docker",  # keeps HEALTHCHECK (the OCI format has none)
        "--layers=false",
        "--file",
        str(ROOT / "Dockerfile"),
        "--build-arg",
        f"BASE_IMAGE={base}",
        "--tag",
        tag,
    ]
    if HOST_CA_BUNDLE.exists():
        command += [
            "--volume",
            f"{HOST_CA_BUNDLE.parent}:/etc/host-certs:ro",
            "--build-arg",
            f"PIP_CERT=/etc/host-certs/{HOST_CA_BUNDLE.name}",
        ]
    index = host_index_url()
    if index:
        command += ["--build-arg", f"PIP_INDEX_URL={index}"]
    run([*command, str(ROOT)], log, timeout=BUILD_TIMEOUT_SECONDS)


def in_image(
    rootfs: Path, data: Path, user: str, env: dict[str, str], argv: list[str]
) -> list[str]:
    """A command line running ``argv`` from the image as a container runtime would."""
    script = (
        'set -e; root="$1"; data="$2"; user="$3"; shift 3; '
        'mount --bind "$data" "$root/data"; '
        'mount -t tmpfs tmpfs "$root/tmp"; '
        'mount -t proc proc "$root/proc"; '
        'mount --rbind /dev "$root/dev"; '
        'exec chroot --userspec="$user" "$root" "$@"'
    )
    assignments = [f"{key}={value}" for key, value in env.items()]
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
        str(rootfs),
        str(data),
        user,
        "/usr/bin/env",
        "-i",
        "-C",
        "/data",
        *assignments,
        *argv,
    ]


def image_config(tag: str) -> dict:
    """The image's run configuration, with its health check (podman reports it beside)."""
    (inspected,) = json.loads(output(["podman", "image", "inspect", tag]))
    healthcheck = inspected["Config"].get("Healthcheck") or inspected.get("Healthcheck")
    return {**inspected["Config"], "Healthcheck": healthcheck}


def test_image_builds_and_serves_a_video(tmp_path: Path) -> None:
    require_tools()
    timings = Timings()
    log = tmp_path / "container.log"
    tag = f"localhost/reelforge-ci-test:{uuid.uuid4().hex[:12]}"
    server: subprocess.Popen[bytes] | None = None
    mounted = False
    try:
        with timings.phase("base image"):
            base = base_image(log)
        with timings.phase("podman build"):
            build_image(tag, base, log)
        size = int(output(["podman", "image", "inspect", "--format", "{{.Size}}", tag]))
        print(f"[container] image {tag}: {size / 1e6:.0f} MB (base {base})", flush=True)

        config = image_config(tag)
        assert config["User"] == "10001:10001"
        assert config["Entrypoint"] == ["reelforge"]
        assert config["Cmd"] == ["serve"]
        assert "/data" in config["Volumes"]
        assert "8000/tcp" in config["ExposedPorts"]
        assert config["WorkingDir"] == "/data"
        image_env = dict(item.split("=", 1) for item in config["Env"])
        assert image_env["REELFORGE_HOME"] == "/data"
        assert image_env["REELFORGE_HOST"] == "0.0.0.0"
        assert config["Healthcheck"], "a HEALTHCHECK (kept by --format docker)"
        healthcheck = config["Healthcheck"]["Test"]
        assert healthcheck[0] == "CMD"

        rootfs = Path(output(["podman", "image", "mount", tag]).strip())
        mounted = True
        assert not (rootfs / "opt/reelforge/bin/pip").exists(), "no pip in the runtime image"
        data = tmp_path / "data"
        data.mkdir()
        uid, gid = (int(part) for part in config["User"].split(":"))
        os.chown(data, uid, gid)
        port = free_port()
        env = {
            **image_env,
            # On this machine: loopback only, a free port, a key, fast encoding.
            "REELFORGE_HOST": "127.0.0.1",
            "REELFORGE_PORT": str(port),
            "REELFORGE_API_KEYS": "test",
            "REELFORGE_ENCODER_PRESET": "ultrafast",
        }

        def contained(argv: list[str]) -> list[str]:
            return in_image(rootfs, data, config["User"], env, argv)

        with timings.phase("reelforge db upgrade"):
            run(contained([*config["Entrypoint"], "db", "upgrade"]), log, timeout=120)
        assert (data / "reelforge.db").exists(), "REELFORGE_HOME is the /data volume"

        with timings.phase("reelforge serve starts"):
            server_log = tmp_path / "server.log"
            with server_log.open("wb") as out:
                server = subprocess.Popen(
                    contained([*config["Entrypoint"], *config["Cmd"]]),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                if server.poll() is not None:
                    pytest.fail(f"server exited early:\n{server_log.read_text()}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    pytest.fail(f"server did not answer:\n{server_log.read_text()}")
                time.sleep(0.3)

        with timings.phase("image health check"):
            run(contained(healthcheck[1:]), log, timeout=30)
            down = subprocess.run(
                in_image(
                    rootfs,
                    data,
                    config["User"],
                    {**env, "REELFORGE_PORT": str(free_port())},
                    healthcheck[1:],
                ),
                capture_output=True,
                timeout=30,
                check=False,
            )
            assert down.returncode != 0, "the health check must fail when nothing answers"

        with timings.phase("veo2 video through the containerised API"):
            headers = {"Authorization": "Bearer test"}
            created = httpx.post(
                f"{url}/v2/video/generations",
                json={"model": "veo2", "prompt": "A red kite over a green hill", "seed": 5},
                headers=headers,
                timeout=30,
            )
            assert created.status_code in (200, 201), created.text
            generation_id = created.json()["id"]
            deadline = time.monotonic() + 300
            while True:
                body = httpx.get(
                    f"{url}/v2/video/generations",
                    params={"generation_id": generation_id, "wait": 10},
                    headers=headers,
                    timeout=30,
                ).json()
                if body["status"] in ("completed", "error"):
                    break
                assert time.monotonic() < deadline, f"still {body['status']}"
            assert body["status"] == "completed", body
            video = httpx.get(body["video"]["url"], timeout=60)
            assert video.status_code == 200
            target = tmp_path / "veo2.mp4"
            target.write_bytes(video.content)
            facts = inspect_mp4(target)
        assert (facts.codec, facts.width, facts.height) == ("h264", 1280, 720)
        assert facts.frames == 5 * 24
        assert max(facts.motion) > 0, "a moving picture"
        stored = [path for path in (data / "files").rglob("*.mp4")]
        assert stored, "the video was stored under REELFORGE_HOME=/data"
        assert all(path.stat().st_uid == uid for path in stored), "written as the image's user"
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)
        if mounted:
            subprocess.run(["podman", "image", "unmount", tag], capture_output=True, check=False)
        subprocess.run(["podman", "rmi", "--force", tag], capture_output=True, check=False)
        summary = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.phases.items())
        print(f"[container] timings: {summary}", flush=True)
