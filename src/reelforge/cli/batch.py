"""``reelforge batch``: many generations from a JSONL file, resumable through a manifest.

Each line is a request body (``{"model": ..., "prompt": ..., ...}``), optionally with
``"output"`` (a file name inside the output directory). The manifest
(``<out-dir>/manifest.json``) records each line's generation id as soon as it exists and
its result when it ends, so a rerun skips finished lines, resumes waiting for submitted
ones instead of creating them again, and retries failed ones. Creates carry an
idempotency key derived from the line, so even a crash between create and manifest write
does not duplicate work on a server that honours keys.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from reelforge.cli._app import (
    DEFAULT_WAIT_TIMEOUT_SECONDS,
    ApiKeyOption,
    BaseUrlOption,
    TimeoutOption,
    app,
    console,
    err_console,
    print_table,
)
from reelforge.cli.generation import EXIT_FAILED, EXIT_INTERRUPTED, open_client
from reelforge.client import Client, GenerationFailed, ReelforgeClientError

MANIFEST_NAME = "manifest.json"
IMAGE_FIELDS = ("image_url", "tail_image_url")


@dataclass
class Item:
    line: int
    body: dict[str, Any] | None
    output: str
    digest: str
    problem: str | None = None


def _read_items(source: Path) -> list[Item]:
    items = []
    for number, raw in enumerate(source.read_text().splitlines(), start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        digest = hashlib.sha256(text.encode()).hexdigest()
        default_output = f"line-{number:04d}.mp4"
        try:
            body = json.loads(text)
        except json.JSONDecodeError as error:
            items.append(Item(number, None, default_output, digest, f"invalid JSON: {error.msg}"))
            continue
        if not isinstance(body, dict):
            items.append(Item(number, None, default_output, digest, "a line must be an object"))
            continue
        output = str(body.pop("output", default_output))
        if Path(output).name != output:
            items.append(Item(number, None, default_output, digest, "output must be a file name"))
            continue
        for field in IMAGE_FIELDS:
            value = body.get(field)
            if isinstance(value, str) and (source.parent / value).is_file():
                body[field] = source.parent / value
        items.append(Item(number, body, output, digest))
    return items


class Manifest:
    """The record of a batch; every change is written atomically at once."""

    def __init__(self, path: Path, source: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.entries: dict[str, dict[str, Any]] = {}
        if path.exists():
            self.entries = json.loads(path.read_text()).get("entries", {})
        self.source = str(source)

    def get(self, item: Item) -> dict[str, Any]:
        entry = self.entries.get(str(item.line), {})
        return entry if entry.get("digest") == item.digest else {}

    def record(self, item: Item, **values: Any) -> None:
        with self._lock:
            entry = self.get(item) | {"digest": item.digest, "output": item.output, **values}
            self.entries[str(item.line)] = entry
            payload = json.dumps({"source": self.source, "entries": self.entries}, indent=2)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
            with os.fdopen(fd, "w") as handle:
                handle.write(payload)
            os.replace(tmp, self.path)


def _say(message: str) -> None:
    err_console.print(message, highlight=False, soft_wrap=True)


def _run_item(
    client: Client, manifest: Manifest, item: Item, out_dir: Path, timeout: float
) -> None:
    entry = manifest.get(item)
    target = out_dir / item.output
    if entry.get("status") == "completed" and target.is_file():
        return
    if item.body is None:
        manifest.record(item, status="error", error=item.problem, id=None)
        return
    generation_id = entry.get("id") if entry.get("status") == "submitted" else None
    try:
        if generation_id is None:
            attempt = int(entry.get("attempt", 0)) + 1
            key = f"batch-{item.digest[:32]}-{attempt}"
            body = dict(item.body)
            model, prompt = body.pop("model", None), body.pop("prompt", None)
            created = client.create(model, prompt, idempotency_key=key, **body)
            generation_id = created.id
            manifest.record(item, status="submitted", id=generation_id, attempt=attempt)
            _say(f"line {item.line}: submitted {generation_id}")
        generation = client.wait(generation_id, timeout=timeout)
        client.download(generation, target)
    except GenerationFailed as error:
        manifest.record(item, status="error", error=f"{error.name}: {error.message}")
        _say(f"line {item.line}: failed: {error.name}: {error.message}")
        return
    except ReelforgeClientError as error:
        status = "submitted" if generation_id else "error"
        manifest.record(item, status=status, error=str(error))
        _say(f"line {item.line}: {error}")
        return
    manifest.record(item, status="completed", error=None, file=str(target))
    _say(f"line {item.line}: saved {target}")


@app.command()
def batch(
    source: Annotated[Path, typer.Argument(help="JSONL file: one request body per line.")],
    out_dir: Annotated[
        Path, typer.Option("--out-dir", envvar="REELFORGE_OUT_DIR", help="Where videos go.")
    ] = Path("videos"),
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency", envvar="REELFORGE_BATCH_CONCURRENCY", min=1, max=64, help="In flight."
        ),
    ] = 4,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = DEFAULT_WAIT_TIMEOUT_SECONDS,
) -> None:
    """Run every request of a JSONL file; rerun to resume. Exits non-zero if any failed."""
    if not source.is_file():
        err_console.print(f"[red]error:[/] {source} is not a file")
        raise typer.Exit(EXIT_FAILED)
    out_dir.mkdir(parents=True, exist_ok=True)
    items = _read_items(source)
    manifest = Manifest(out_dir / MANIFEST_NAME, source.resolve())
    with open_client(base_url, api_key) as client, ThreadPoolExecutor(concurrency) as pool:
        futures = [pool.submit(_run_item, client, manifest, i, out_dir, timeout) for i in items]
        try:
            for future in futures:
                future.result()
        except KeyboardInterrupt:
            for future in futures:
                future.cancel()
            _say(f"\nInterrupted; rerun the same command to resume ({manifest.path}).")
            raise typer.Exit(EXIT_INTERRUPTED) from None
    failed = _summary(items, manifest)
    if failed:
        raise typer.Exit(EXIT_FAILED)


def _summary(items: list[Item], manifest: Manifest) -> int:
    rows = []
    failed = 0
    for item in items:
        entry = manifest.get(item)
        status = entry.get("status", "not run")
        if status != "completed":
            failed += 1
        model = str((item.body or {}).get("model", "?"))
        detail = entry.get("file") if status == "completed" else entry.get("error") or ""
        rows.append([str(item.line), model, status, entry.get("id") or "", str(detail)])
    print_table(["line", "model", "status", "id", "file / error"], rows)
    done = len(items) - failed
    console.print(f"{done} of {len(items)} completed, {failed} not completed", highlight=False)
    return failed
