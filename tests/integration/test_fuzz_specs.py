"""Every published spec (tests/specs) fuzzed with schemathesis against a live server.

For each spec, positive and negative cases (a bounded number of each, so the suite stays
fast) are sent to ``POST /v2/video/generations`` (and ``GET`` for the fetch spec). Every
answer must be below 500; a 200 must conform to the spec's response schema; and a body
that the spec rejects must be rejected (4xx), except where reelforge is documented to
be lenient (README "Models"): numeric strings for integer fields (``"duration": "5"``),
``null`` meaning "not given" for optional fields, and ``aspect_ratio: auto`` for
``veo2/image-to-video``. Those are normalised away before asking the spec whether the
body is invalid, so a lenient acceptance is not counted as a failure and everything
else is. A GET without ``generation_id`` lists the caller's generations (README
"Managing generations") and is checked as such.

The server runs with no workers: accepted jobs are only queued, never rendered.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance

from published_specs import all_specs, request_schema
from support import LiveServer

pytestmark = pytest.mark.integration

EXAMPLES_PER_MODE = 12
"""Cases per spec and generation mode; ~400 requests in all, well under a minute."""
LENIENT_ENUM_VALUES = {("veo2/image-to-video", "aspect_ratio"): "auto"}
SPECS = all_specs()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    live = LiveServer(tmp_path_factory.mktemp("fuzz"), env={"REELFORGE_WORKERS": "0"}).start()
    yield live
    live.stop()


def with_leniencies(schema: dict[str, Any], body: Any) -> Any:
    """``body`` as the spec would see it after reelforge's documented leniencies."""
    if not isinstance(body, dict):
        return body
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    model = body.get("model")
    normalised = {}
    for key, value in body.items():
        declared = properties.get(key, {})
        if value is None and key in properties and key not in required:
            continue  # null means "not given"
        if declared.get("type") == "integer" and isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                pass
            else:
                if number.is_integer():
                    value = int(number)
        if LENIENT_ENUM_VALUES.get((model, key)) == value:
            continue
        normalised[key] = value
    return normalised


def is_invalid(schema: dict[str, Any] | None, body: Any) -> bool:
    if schema is None:
        return False
    return not jsonschema.Draft4Validator(schema).is_valid(with_leniencies(schema, body))


@pytest.mark.parametrize("path", SPECS, ids=[path.stem for path in SPECS])
def test_fuzz_published_spec(server: LiveServer, path: Path) -> None:
    document = json.loads(path.read_text())
    body_schema = request_schema(document)
    schema = schemathesis.openapi.from_path(path)
    seen = {"accepted": 0, "rejected": 0, "invalid": 0}
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(server, operation, mode, body_schema, seen)
    assert seen["rejected"] > 0
    if body_schema is not None:
        assert seen["invalid"] > 0, seen
    print(f"{path.stem}: {seen}")


def fuzz(
    server: LiveServer,
    operation: Any,
    mode: GenerationMode,
    body_schema: dict[str, Any] | None,
    seen: dict[str, int],
) -> None:
    """Send ``EXAMPLES_PER_MODE`` cases of ``operation``; counts go to ``seen``."""
    creating = operation.method.upper() == "POST"

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_MODE,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=server.url, headers=server.headers(), timeout=30)
        if not creating and "generation_id" not in (case.query or {}):
            # The documented extension (README "Managing generations"): without an id,
            # GET lists the caller's generations instead of refusing.
            case.validate_response(response, checks=[not_a_server_error])
            if response.status_code == 200:
                assert set(response.json()) == {"data", "has_more", "next_cursor"}
            seen["accepted" if response.status_code < 300 else "rejected"] += 1
            return
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
        if creating and is_invalid(body_schema, copy.deepcopy(case.body)):
            seen["invalid"] += 1
            assert 400 <= response.status_code < 500, (
                f"an invalid body was accepted ({response.status_code}): {case.body!r}"
            )
        seen["accepted" if response.status_code < 300 else "rejected"] += 1

    run()


def test_the_leniencies_are_what_the_server_accepts(server: LiveServer) -> None:
    """The normalisation above matches the server: these are accepted, and the spec
    itself calls them invalid."""
    veo2 = request_schema(json_of("veo2.json"))
    i2v = request_schema(json_of("Veo2-Image-to-Video.json"))
    image = "https://example.com/a.jpg"
    for schema, body in (
        (veo2, {"model": "veo2", "prompt": "a fox", "duration": "6"}),
        (veo2, {"model": "veo2", "prompt": "a fox", "seed": None, "aspect_ratio": None}),
        (
            i2v,
            {
                "model": "veo2/image-to-video",
                "prompt": "x",
                "image_url": image,
                "aspect_ratio": "auto",
            },
        ),
    ):
        assert not jsonschema.Draft4Validator(schema).is_valid(body)
        assert not is_invalid(schema, body)
        assert server.create(body).status_code == 200
    began = time.monotonic()
    assert server.create({"model": "veo2", "prompt": "x", "duration": "6.5"}).status_code == 400
    assert time.monotonic() - began < 10


def json_of(name: str) -> dict[str, Any]:
    return json.loads((Path(__file__).resolve().parents[1] / "specs" / name).read_text())
