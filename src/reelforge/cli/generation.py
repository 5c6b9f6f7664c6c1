"""User commands over the SDK: ``generate``, ``status``, ``wait``, ``download``, ``models``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

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
from reelforge.client import Client, Generation, GenerationFailed, ReelforgeClientError

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130

OutputOption = Annotated[
    Path,
    typer.Option("--output", "-o", envvar="REELFORGE_OUTPUT", help="Where to save the MP4."),
]


def open_client(base_url: str | None, api_key: str | None) -> Client:
    try:
        return Client(api_key=api_key, base_url=base_url)
    except ReelforgeClientError as error:
        fail(str(error))


def fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    err_console.print(f"[red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def describe_state(generation: Generation) -> str:
    parts = [generation.status]
    stage = getattr(generation, "stage", None)
    if stage:
        parts.append(f"({stage})")
    return " ".join(parts)


def percent_of(generation: Generation) -> float | None:
    progress = getattr(generation, "progress", None)
    if isinstance(progress, int | float):
        return float(progress)
    return 100.0 if generation.status == "completed" else None


class StatusDisplay:
    """A live spinner and bar on a terminal; one line per change when output is piped."""

    PLAIN_STEP_PERCENT = 10.0

    def __init__(self, generation_id: str) -> None:
        self.generation_id = generation_id
        self.interactive = err_console.is_terminal
        self.started = time.monotonic()
        self._last_line = ""
        self._last_percent = -self.PLAIN_STEP_PERCENT
        self._last_shown: tuple[str, float | None] | None = None
        self._progress: Progress | None = None
        self._task: Any = None

    @contextmanager
    def shown(self) -> Iterator[StatusDisplay]:
        if not self.interactive:
            yield self
            return
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=False,
        )
        with self._progress:
            self._task = self._progress.add_task("submitted", total=100)
            yield self

    def update(self, generation: Generation) -> None:
        percent = percent_of(generation)
        state = describe_state(generation)
        if self._progress is not None:
            self._progress.update(self._task, description=state, completed=percent or 0)
            return
        elapsed = time.monotonic() - self.started
        stepped = percent is not None and percent >= self._last_percent + self.PLAIN_STEP_PERCENT
        if (state, percent) == self._last_shown:
            return
        if state != self._last_line or stepped or generation.is_done:
            self._last_shown = (state, percent)
            shown = f" {percent:.0f}%" if percent is not None else ""
            err_console.print(f"{state}{shown} after {elapsed:.1f} s", highlight=False)
            self._last_line = state
            if percent is not None:
                self._last_percent = percent


def wait_and_save(client: Client, generation_id: str, output: Path, timeout: float) -> None:
    """Wait with a live display, download, and explain how to resume if interrupted."""
    try:
        display = StatusDisplay(generation_id)
        with display.shown():
            generation = client.wait(generation_id, timeout=timeout, on_progress=display.update)
            display.update(generation)
        save(client, generation, output)
    except KeyboardInterrupt:
        err_console.print(
            "\nInterrupted. The generation goes on on the server; resume with:\n"
            f"  reelforge wait {generation_id} -o {output}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except GenerationFailed as error:
        fail(f"generation {generation_id} failed: {error.name}: {error.message}")
    except ReelforgeClientError as error:
        fail(f"{error} (generation {generation_id}; `reelforge wait {generation_id}` resumes)")


def save(client: Client, generation: Generation | str, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    if not err_console.is_terminal:
        path = client.download(generation, output)
        console.print(f"saved {path} ({path.stat().st_size} bytes)", highlight=False)
        return
    with Progress(
        TextColumn("downloading"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err_console,
    ) as progress:
        task = progress.add_task("download", total=None)

        def advance(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        path = client.download(generation, output, on_progress=advance)
    console.print(f"saved {path} ({path.stat().st_size} bytes)", highlight=False)


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="What the video should show.")],
    output: OutputOption = Path("output.mp4"),
    model: Annotated[
        str, typer.Option("--model", "-m", envvar="REELFORGE_MODEL", help="Model id.")
    ] = "veo2",
    image: Annotated[
        str | None,
        typer.Option("--image", envvar="REELFORGE_IMAGE", help="First frame: a path or URL."),
    ] = None,
    last_frame: Annotated[
        str | None,
        typer.Option(
            "--last-frame", envvar="REELFORGE_LAST_FRAME", help="Last frame: a path or URL."
        ),
    ] = None,
    aspect_ratio: Annotated[
        str | None,
        typer.Option("--aspect-ratio", envvar="REELFORGE_ASPECT_RATIO", help="16:9, 9:16, auto."),
    ] = None,
    duration: Annotated[
        int | None,
        typer.Option("--duration", envvar="REELFORGE_DURATION", help="Seconds."),
    ] = None,
    resolution: Annotated[
        str | None,
        typer.Option("--resolution", envvar="REELFORGE_RESOLUTION", help="720P or 1080P."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", envvar="REELFORGE_SEED", help="Reproducible runs.")
    ] = None,
    negative_prompt: Annotated[
        str | None,
        typer.Option(
            "--negative-prompt", envvar="REELFORGE_NEGATIVE_PROMPT", help="What to avoid."
        ),
    ] = None,
    no_enhance: Annotated[
        bool,
        typer.Option("--no-enhance", envvar="REELFORGE_NO_ENHANCE", help="Use the prompt as is."),
    ] = False,
    no_audio: Annotated[
        bool,
        typer.Option("--no-audio", envvar="REELFORGE_NO_AUDIO", help="No soundtrack (veo3)."),
    ] = False,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = DEFAULT_WAIT_TIMEOUT_SECONDS,
) -> None:
    """Generate a video and save it; shows progress and prints the id at once."""
    params: dict[str, Any] = {
        "image_url": image,
        "tail_image_url": last_frame,
        "aspect_ratio": aspect_ratio,
        "duration": duration,
        "resolution": resolution,
        "seed": seed,
        "negative_prompt": negative_prompt,
        "enhance_prompt": False if no_enhance else None,
        "generate_audio": False if no_audio else None,
    }
    params = {key: value for key, value in params.items() if value is not None}
    with open_client(base_url, api_key) as client:
        try:
            created = client.create(model, prompt, **params)
        except ReelforgeClientError as error:
            fail(str(error))
        console.print(f"generation id: {created.id}", highlight=False, soft_wrap=True)
        wait_and_save(client, created.id, output, timeout)


@app.command()
def status(
    generation_id: Annotated[str, typer.Argument(help="The generation id.")],
    as_json: Annotated[
        bool, typer.Option("--json", envvar="REELFORGE_JSON", help="Print the raw response.")
    ] = False,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Show a generation's state."""
    with open_client(base_url, api_key) as client:
        try:
            generation = client.get(generation_id)
        except ReelforgeClientError as error:
            fail(str(error))
    if as_json:
        console.print_json(json.dumps(generation.model_dump(mode="json")))
        return
    percent = percent_of(generation)
    console.print(f"id:       {generation.id}", highlight=False, soft_wrap=True)
    console.print(f"status:   {describe_state(generation)}", highlight=False)
    if percent is not None:
        console.print(f"progress: {percent:.0f}%", highlight=False)
    if generation.video is not None:
        console.print(f"video:    {generation.video.url}", highlight=False, soft_wrap=True)
    if generation.error is not None:
        console.print(
            f"error:    {generation.error.name}: {generation.error.message}",
            highlight=False,
            soft_wrap=True,
        )
    if generation.status == "error":
        raise typer.Exit(EXIT_FAILED)


@app.command()
def wait(
    generation_id: Annotated[str, typer.Argument(help="The generation id.")],
    output: OutputOption = Path("output.mp4"),
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = DEFAULT_WAIT_TIMEOUT_SECONDS,
) -> None:
    """Wait for a generation to finish, then download it."""
    with open_client(base_url, api_key) as client:
        wait_and_save(client, generation_id, output, timeout)


@app.command()
def download(
    generation_id: Annotated[str, typer.Argument(help="A generation id or a video URL.")],
    output: OutputOption = Path("output.mp4"),
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Download a finished generation (resumes a partial download)."""
    with open_client(base_url, api_key) as client:
        try:
            target: Generation | str = generation_id
            if not generation_id.startswith(("http://", "https://")):
                target = client.get(generation_id)
                if target.status == "error":
                    reason = f"{target.error.name}: {target.error.message}" if target.error else ""
                    fail(f"generation {generation_id} failed, so it has no video ({reason})")
                if target.status != "completed":
                    fail(
                        f"generation {generation_id} is {target.status}; "
                        f"`reelforge wait {generation_id} -o {output}` waits and downloads"
                    )
            save(client, target, output)
        except KeyboardInterrupt:
            err_console.print(f"\nInterrupted; run the same command again to resume {output}.")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except ReelforgeClientError as error:
            fail(str(error))


@app.command()
def models() -> None:
    """The models, their parameters, prices and (from this machine's settings) engines."""
    from reelforge.catalog import MODELS, describe_model, price_table
    from reelforge.cli._app import settings_with

    settings = settings_with()
    prices = price_table(settings.prices)
    rows = []
    for spec in MODELS.values():
        engine = settings.model_engines.get(spec.name, settings.engine)
        listed = describe_model(spec, engine, prices[spec.name])
        parameters = listed["parameters"]
        duration = parameters["duration"]
        durations = " ".join(str(d) for d in duration["enum"])
        aspect = parameters.get("aspect_ratio", {})
        inputs = [name for name in listed["required"] if name != "prompt"]
        other = sorted(set(parameters) - {"prompt", "duration", "aspect_ratio", *inputs})
        price = f"{listed['credits_per_second']:,}"
        if listed["credits_per_second_without_audio"] is not None:
            price += f" ({listed['credits_per_second_without_audio']:,} without audio)"
        rows.append(
            [
                spec.name,
                spec.input_kind + (f" ({', '.join(inputs)})" if inputs else ""),
                f"{durations} (default {duration['default']})",
                " ".join(aspect.get("enum", ["16:9 (fixed)"])),
                ", ".join(other),
                price,
                engine,
            ]
        )
    columns = ["model", "input", "duration (s)", "aspect ratio", "other", "credits/s", "engine"]
    print_table(columns, rows)
