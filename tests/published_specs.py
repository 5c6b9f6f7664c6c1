"""The published OpenAPI specs of the AI/ML API's Veo models (copied into tests/specs).

They are public documents; tests read them to keep the catalogue and the fuzzing honest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SPECS_DIR = Path(__file__).resolve().parent / "specs"
GENERATIONS_PATH = "/v2/video/generations"


@dataclass(frozen=True)
class PublishedModel:
    """One spec's request body schema."""

    file: Path
    document: dict[str, Any]
    schema: dict[str, Any]

    @property
    def name(self) -> str:
        return self.schema["properties"]["model"]["enum"][0]

    @property
    def properties(self) -> dict[str, dict[str, Any]]:
        return self.schema["properties"]

    @property
    def required(self) -> set[str]:
        return set(self.schema.get("required", []))


def request_schema(document: dict[str, Any]) -> dict[str, Any] | None:
    post = document["paths"].get(GENERATIONS_PATH, {}).get("post")
    if post is None:
        return None
    return post["requestBody"]["content"]["application/json"]["schema"]


def published_models() -> list[PublishedModel]:
    """Every spec that defines a create request, sorted by file name."""
    found = []
    for path in sorted(SPECS_DIR.glob("*.json")):
        document = json.loads(path.read_text())
        schema = request_schema(document)
        if schema is not None:
            found.append(PublishedModel(path, document, schema))
    return found


def all_specs() -> list[Path]:
    return sorted(SPECS_DIR.glob("*.json"))
