"""Operator commands: ``serve``, ``keys``, ``db``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from reelforge.cli._app import app, console, err_console, print_table
from reelforge.cli._app import settings_with as _settings

keys_app = typer.Typer(help="Manage API keys (stored hashed; a key is shown once).")
db_app = typer.Typer(help="Database schema.")
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(envvar="REELFORGE_HOST", help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(envvar="REELFORGE_PORT", help="Port.")] = None,
    workers: Annotated[
        int | None,
        typer.Option(envvar="REELFORGE_WORKERS", help="Generation threads (0: API only)."),
    ] = None,
) -> None:
    """Start the API and an in-process worker."""
    import uvicorn

    from reelforge.api.app import build_services, create_app
    from reelforge.logs import configure_logging

    settings = _settings(host=host, port=port, workers=workers)
    configure_logging(settings.log_level)
    services = build_services(settings)
    if not services.keys.has_any():
        record, secret = services.keys.create("default")
        console.print(
            "[bold]No API key existed, so one was created. It is shown only this once:[/]\n"
            f"\n    {secret}\n\n"
            f"Use it as 'Authorization: Bearer <key>'. Manage keys with `reelforge keys`."
            f" (id {record.id})",
            highlight=False,
            soft_wrap=True,
        )
    console.print(
        f"reelforge listening on http://{settings.host}:{settings.port} "
        f"(data in {settings.home}, docs at /docs)",
        highlight=False,
        soft_wrap=True,
    )
    uvicorn.run(
        create_app(settings, services),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,
    )


def _key_store() -> Any:
    from reelforge.api.app import build_services

    return build_services(_settings()).keys


@keys_app.command("create")
def keys_create(
    name: Annotated[
        str, typer.Option(envvar="REELFORGE_KEY_NAME", help="A label to recognise the key by.")
    ] = "default",
) -> None:
    """Create a key and print it (once)."""
    record, secret = _key_store().create(name)
    # Only the key goes to stdout, so `KEY=$(reelforge keys create)` works.
    console.print(secret, highlight=False, soft_wrap=True)
    err_console.print(
        f"id {record.id}, name {record.name}; store the key now, it is not shown again",
        highlight=False,
    )


@keys_app.command("list")
def keys_list() -> None:
    """List keys (never the secrets)."""
    rows = []
    for key in _key_store().list():
        status = "active" if key.active else f"revoked {key.revoked_at:%Y-%m-%d %H:%M}"
        created = f"{key.created_at:%Y-%m-%d %H:%M}"
        rows.append([key.id, key.name, key.prefix + "…", created, status])
    print_table(["id", "name", "starts with", "created", "status"], rows)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (see `keys list`).")],
) -> None:
    """Revoke a key; requests with it fail from now on."""
    from reelforge.errors import NotFound

    try:
        key = _key_store().revoke(key_id)
    except NotFound as error:
        err_console.print(f"[red]{error.message}[/]", highlight=False)
        raise typer.Exit(1) from None
    console.print(f"revoked {key.id} ({key.name})")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema up to date."""
    from reelforge.jobs.db import current_revision, make_engine, upgrade

    engine = make_engine(_settings().resolved_database_url)
    upgrade(engine)
    console.print(f"database schema at revision {current_revision(engine)}")


@app.command()
def worker(
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency",
            "-c",
            envvar="REELFORGE_WORKER_CONCURRENCY",
            min=1,
            max=64,
            help="Jobs run at once by this process.",
        ),
    ] = 1,
) -> None:
    """Run workers without the API, on any machine that reaches the database and storage.

    SIGTERM or Ctrl-C stops claiming and lets the running jobs finish within
    REELFORGE_DRAIN_SECONDS, then hands the rest back; a second signal hands back at once.
    """
    import signal
    import threading

    from reelforge.engines import EngineRouter
    from reelforge.logs import configure_logging
    from reelforge.runtime import open_job_store
    from reelforge.storage import open_storage
    from reelforge.worker import WorkerPool

    settings = _settings()
    configure_logging(settings.log_level)
    store = open_job_store(settings)
    engines = EngineRouter(settings)
    pool = WorkerPool(settings, store, open_storage(settings), engines, concurrency)
    signals = 0

    def on_signal(number: int, _frame: object) -> None:
        nonlocal signals
        signals += 1
        drain = settings.drain_seconds if signals == 1 else 0.0
        err_console.print(
            f"{signal.Signals(number).name}: stopping; running jobs get {drain:g} s "
            "to finish before they are handed back",
            highlight=False,
        )
        pool.request_stop(drain)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    store.start_listening()
    pool.start()
    err_console.print(
        f"reelforge worker running {concurrency} job(s) at a time "
        f"(engine {settings.engine}, pid {threading.get_native_id()})",
        highlight=False,
    )
    try:
        while not pool.join(timeout=0.5):
            pass
    finally:
        engines.close()
        store.stop_listening()
    err_console.print("reelforge worker stopped", highlight=False)
