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
    """Start the API and its workers (a supervised child process unless
    REELFORGE_WORKER_ISOLATION=thread)."""

    from reelforge.api.connections import bind, run_server
    from reelforge.logs import configure_logging

    settings = _settings(host=host, port=port, workers=workers)
    configure_logging(settings.log_level, settings.log_format)
    if settings.metrics_token is not None:
        _count_across_processes(settings)
    # Only now: the API imports prometheus_client, which reads the setting above.
    from reelforge.api.app import build_services, create_app

    services = build_services(settings)
    app = create_app(settings, services)  # checks the engine configuration first
    sock = bind(settings)  # a port in use stops us here, before any worker starts
    keys = services.database.keys
    if not keys.has_any():
        record, secret = keys.create("default")
        console.print(
            "[bold]No API key existed, so one was created. It is shown only this once:[/]\n"
            f"\n    {secret}\n\n"
            f"Use it as 'Authorization: Bearer <key>'. Manage keys with `reelforge keys`."
            f" (id {record.id})",
            highlight=False,
            soft_wrap=True,
        )
    address = f"http://{_url_host(settings.host)}:{sock.getsockname()[1]}"
    console.print(
        f"reelforge listening on {address} (data in {settings.home})\n"
        f"  playground: {address}/   docs: {address}/docs\n"
        f"  {_engines_line(app.state.engines)}\n"
        f"  {_workers_line(settings)}",
        highlight=False,
        soft_wrap=True,
    )

    def on_signal(number: int, again: bool) -> None:
        import signal

        name = "Ctrl-C" if number == signal.SIGINT else signal.Signals(number).name
        workers = getattr(app.state, "workers", None)
        if again:
            err_console.print(f"{name} again: handing running generations back now")
            if workers is not None:
                workers.hurry()
        elif workers is not None:
            err_console.print(
                f"{name}: stopping; running generations get up to "
                f"{settings.drain_seconds:g} s (REELFORGE_DRAIN_SECONDS) to finish, then go "
                f"back to the queue; {name} again hands them back now",
                highlight=False,
            )
        else:
            err_console.print(f"{name}: stopping", highlight=False)

    run_server(app, settings, sock=sock, on_signal=on_signal)


def _url_host(host: str) -> str:
    """The host as a browser takes it (all interfaces: this machine's loopback)."""
    if host in ("0.0.0.0", "::"):  # noqa: S104 - only naming it
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _engines_line(engines: Any) -> str:
    """Which engine serves which model, and whether the videos are real."""
    from reelforge.catalog import MODELS

    served: dict[str, list[str]] = {}
    for name in MODELS:
        served.setdefault(engines.engine_name(name), []).append(name)
    parts = [
        f"{engine} for {'all models' if len(names) == len(MODELS) else ', '.join(names)}"
        for engine, names in served.items()
    ]
    line = "engines: " + "; ".join(parts)
    if "preview" in served:
        line += (
            "\n  preview makes procedural placeholder clips on the CPU (not what the prompt "
            "describes); for real video set REELFORGE_ENGINE (see README, Engines)"
        )
    return line


def _workers_line(settings: Any) -> str:
    if settings.workers <= 0:
        return "workers: none here (REELFORGE_WORKERS=0); run `reelforge worker` elsewhere"
    where = "a child process" if settings.worker_isolation == "process" else "this process"
    return f"workers: {settings.workers} job(s) at a time, in {where}"


def _count_across_processes(settings: Any) -> None:
    """Metrics of the API and its worker processes go to one fresh directory, which
    ``/metrics`` merges (prometheus_client's multiprocess mode)."""
    import os
    import shutil

    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        return
    directory = settings.home / "run" / "metrics"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def _key_store() -> Any:
    from reelforge.runtime import open_database

    return open_database(_settings()).keys


def _limit_option(name: str, help_text: str) -> Any:
    return typer.Option(
        f"--{name.replace('_', '-')}",
        envvar=f"REELFORGE_KEY_{name.upper()}",
        help=help_text + " A number, or 'default' for the service's default.",
        show_default=False,
    )


RpmOption = Annotated[str | None, _limit_option("rpm", "Creates per minute.")]
ReadRpmOption = Annotated[str | None, _limit_option("read_rpm", "Reads per minute.")]
MaxQueuedOption = Annotated[
    str | None, _limit_option("max_queued", "Generations that may wait at once.")
]
MaxRunningOption = Annotated[
    str | None, _limit_option("max_running", "Generations that may run at once.")
]
PriorityOption = Annotated[
    str | None, _limit_option("priority", "Weight in fair scheduling (default 1).")
]
CreditsOption = Annotated[
    str | None,
    typer.Option(
        "--credits",
        envvar="REELFORGE_KEY_CREDITS",
        help="Credit balance: a number, or 'unlimited'.",
        show_default=False,
    ),
]


def _parse_limits(
    rpm: str | None,
    read_rpm: str | None,
    max_queued: str | None,
    max_running: str | None,
    priority: str | None,
    credits: str | None,
) -> dict[str, Any]:
    """The limit options as given, as ``KeyStore`` values (what was not given is left
    out); ``default`` and ``unlimited`` mean None."""
    from reelforge.errors import ConfigurationError

    given = {
        "rpm": rpm,
        "read_rpm": read_rpm,
        "max_queued": max_queued,
        "max_running": max_running,
        "priority": priority,
        "credits": credits,
    }
    values: dict[str, Any] = {}
    for name, text in given.items():
        if text is None:
            continue
        word = text.strip().lower()
        if word in ("default", "unlimited", "none"):
            values[name] = None
            continue
        try:
            values[name] = int(word)
        except ValueError:
            raise ConfigurationError(
                f"--{name.replace('_', '-')} takes a whole number or 'default', not {text!r}"
            ) from None
    return values


@keys_app.command("create")
def keys_create(
    name: Annotated[
        str, typer.Option(envvar="REELFORGE_KEY_NAME", help="A label to recognise the key by.")
    ] = "default",
    rpm: RpmOption = None,
    read_rpm: ReadRpmOption = None,
    max_queued: MaxQueuedOption = None,
    max_running: MaxRunningOption = None,
    priority: PriorityOption = None,
    credits: CreditsOption = None,
) -> None:
    """Create a key and print it (once); limits default to the service's."""
    values = _parse_limits(rpm, read_rpm, max_queued, max_running, priority, credits)
    record, secret = _key_store().create(name, **values)
    # Only the key goes to stdout, so `KEY=$(reelforge keys create)` works.
    console.print(secret, highlight=False, soft_wrap=True)
    err_console.print(
        f"id {record.id}, name {record.name}; store the key now, it is not shown again",
        highlight=False,
    )


@keys_app.command("list")
def keys_list() -> None:
    """List keys (never the secrets) with their limits, credits and usage."""

    def shown(value: int | None) -> str:
        return "-" if value is None else f"{value:,}"

    store = _key_store()
    rows = []
    for key in store.list():
        status = "active" if key.active else f"revoked {key.revoked_at:%Y-%m-%d %H:%M}"
        created = f"{key.created_at:%Y-%m-%d %H:%M}"
        usage = store.usage(key.id)
        limits = key.limits
        rows.append(
            [
                key.id,
                key.name,
                key.prefix + "…",
                created,
                status,
                f"{shown(limits.rpm)}/{shown(limits.read_rpm)}",
                f"{shown(limits.max_queued)}/{shown(limits.max_running)}",
                str(limits.priority),
                "unlimited" if usage.balance is None else f"{usage.available:,}",
                f"{usage.spent:,}",
                f"{usage.queued}/{usage.running}/{usage.completed}/{usage.failed}",
                key.webhook_url or "",
            ]
        )
    print_table(
        [
            "id",
            "name",
            "starts with",
            "created",
            "status",
            "rpm create/read",
            "max queued/running",
            "priority",
            "credits left",
            "spent",
            "queued/running/done/failed",
            "webhook",
        ],
        rows,
    )


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


@keys_app.command("update")
def keys_update(
    key_id: Annotated[str, typer.Argument(help="The key's id (see `keys list`).")],
    webhook_url: Annotated[
        str | None,
        typer.Option(
            "--webhook-url",
            envvar="REELFORGE_KEY_WEBHOOK_URL",
            help="Default webhook of the key's generations ('' removes it). Setting a URL "
            "that answered 410 Gone before enables it again.",
        ),
    ] = None,
    rpm: RpmOption = None,
    read_rpm: ReadRpmOption = None,
    max_queued: MaxQueuedOption = None,
    max_running: MaxRunningOption = None,
    priority: PriorityOption = None,
    credits: CreditsOption = None,
) -> None:
    """Change a key's settings: webhook, limits, credit balance."""
    from reelforge.generations import vet_webhook_url
    from reelforge.media.netguard import FetchPolicy
    from reelforge.runtime import open_database

    values = _parse_limits(rpm, read_rpm, max_queued, max_running, priority, credits)
    settings = _settings()
    if webhook_url:
        webhook_url = vet_webhook_url(webhook_url, FetchPolicy.from_settings(settings))
    database = open_database(settings)
    key = database.keys.update(key_id, webhook_url=webhook_url, **values)
    if webhook_url:
        database.jobs.outbox.enable(key.id, webhook_url)
    limits = ", ".join(
        f"{name} {value}" for name, value in (key.own_limits or {}).items() if value is not None
    )
    console.print(
        f"updated {key.id} ({key.name}); own limits: {limits or 'none'}; "
        f"webhook: {key.webhook_url or 'none'}",
        highlight=False,
    )


@keys_app.command("webhook-secret")
def keys_webhook_secret(
    key_id: Annotated[str, typer.Argument(help="The key's id (see `keys list`).")],
    rotate: Annotated[
        bool,
        typer.Option(
            "--rotate",
            envvar="REELFORGE_KEY_ROTATE",
            help="Make a new secret; deliveries carry the old one's signature too for 24 h.",
        ),
    ] = False,
) -> None:
    """Print the secret that signs the key's webhooks (made on first use)."""
    secret = _key_store().webhook_secret(key_id, rotate=rotate)
    console.print(secret, highlight=False, soft_wrap=True)


@app.command()
def gc() -> None:
    """Delete the videos past retention now (workers also do it every few minutes)."""
    from reelforge.runtime import open_database, open_storage
    from reelforge.worker.retention import LOCK_NAME, sweep_expired_videos

    settings = _settings()
    if settings.retention_hours <= 0:
        console.print("retention is off (REELFORGE_RETENTION_HOURS=0): nothing to delete")
        return
    database = open_database(settings)
    deleted = sweep_expired_videos(settings, database.jobs, open_storage(settings), "cli-gc")
    if deleted is None:
        holder = database.jobs.lock_holder(LOCK_NAME) or "another process"
        console.print(
            f"another process ({holder}) is deleting the videos past retention right now; "
            "nothing done here",
            highlight=False,
        )
        return
    console.print(
        f"deleted {deleted} video(s) older than {settings.retention_hours:g} hours", highlight=False
    )


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
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            envvar="REELFORGE_WORKER_METRICS_PORT",
            help="Serve this worker's Prometheus metrics on this port (see --metrics-host).",
        ),
    ] = None,
    metrics_host: Annotated[
        str,
        typer.Option(
            "--metrics-host",
            envvar="REELFORGE_WORKER_METRICS_HOST",
            help="Address the metrics port binds: loopback unless you name another (the "
            "port has no authentication; 0.0.0.0 exposes it to the network).",
        ),
    ] = "127.0.0.1",
) -> None:
    """Run workers without the API, on any machine that reaches the database and storage.

    SIGTERM or Ctrl-C stops claiming and lets the running jobs finish within
    REELFORGE_DRAIN_SECONDS, then hands the rest back; a second signal hands back at once.
    """
    import threading

    from reelforge.worker import EXIT_RECYCLE, run_worker_process

    settings = _settings()
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=metrics_host)

    def announce(_pool: object) -> None:
        from reelforge.engines import EngineRouter

        err_console.print(
            f"reelforge worker running {concurrency} job(s) at a time "
            f"(pid {threading.get_native_id()})\n  {_engines_line(EngineRouter(settings))}",
            highlight=False,
        )

    code = run_worker_process(settings, concurrency, announce=announce)
    if code == EXIT_RECYCLE:
        err_console.print(
            "reelforge worker stopped: an engine hung past its deadline; start it again "
            f"(exit status {EXIT_RECYCLE})",
            highlight=False,
        )
        raise typer.Exit(code)
    err_console.print("reelforge worker stopped", highlight=False)
