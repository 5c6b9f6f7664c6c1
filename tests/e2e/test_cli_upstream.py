"""The CLI against a fake of the real AI/ML API: no long-poll, faults, a separate CDN host."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fakes.aimlapi import FakeAimlApi
from support import inspect_mp4

pytestmark = pytest.mark.e2e


def test_generate_against_the_upstream_protocol(tmp_path) -> None:
    with FakeAimlApi(time_scale=0.01) as fake:
        fake.add_fault(429, every=1, method="POST", retry_after=1, limit=1)
        fake.add_fault(503, every=2, method="GET")
        out = tmp_path / "upstream.mp4"
        env = {
            **os.environ,
            "REELFORGE_BASE_URL": f"{fake.base_url}/v2",  # as the published examples spell it
            "REELFORGE_API_KEY": fake.key,
        }
        result = subprocess.run(
            [sys.executable, "-m", "reelforge", "generate", "a dragon", "-o", str(out)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert len(fake.generations) == 1  # the 429 was retried, nothing duplicated
        assert out.read_bytes() == fake.video
        assert inspect_mp4(out).frames == 24
        cdn = fake.cdn_requests()
        assert cdn
        assert all("authorization" not in {k.lower() for k in r.headers} for r in cdn)
