"""The FastAPI application factory."""

from __future__ import annotations

import gc
import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles

from reelforge import __version__, metrics
from reelforge.api import files, openai, routes
from reelforge.api.deps import Services, ServicesDep
from reelforge.api.docs import add_docs
from reelforge.api.edge import HttpEdge
from reelforge.api.errors import RequestContextMiddleware, install_error_handlers
from reelforge.api.limits import BodyLimitMiddleware
from reelforge.api.observe import ObserveMiddleware
from reelforge.api.security import (
    CORS_ALLOWED_HEADERS,
    CORS_EXPOSED_HEADERS,
    SecurityHeadersMiddleware,
    TrustedHostMiddleware,
    allowed_hosts,
)
from reelforge.catalog import MODELS, describe_model, price_table
from reelforge.doors import google
from reelforge.engines import EngineRouter
from reelforge.engines.routing import engine_health, held_leases
from reelforge.errors import NotFound, Unauthorized
from reelforge.generations import Generations
from reelforge.media.netguard import FetchPolicy
from reelforge.openai_videos import OpenAIVideos
from reelforge.ratelimits import FailedAuthBudget, RateLimiter
from reelforge.runtime import open_database, open_storage
from reelforge.settings import Settings
from reelforge.storage.signing import SECRET_NAME, load_signer
from reelforge.worker import WorkerPool, WorkerSupervisor

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
"""The playground's files, shipped inside the package (no CDN, no build step)."""

_metrics_bearer = HTTPBearer(auto_error=False)


def build_services(settings: Settings, *, auto_migrate: bool | None = None) -> Services:
    """Open the database (see ``runtime.open_database`` on migrations) and storage."""
    database = open_database(
        settings, auto_migrate=auto_migrate, lock_timeout=settings.db_timeout_seconds
    )
    storage = open_storage(settings)
    generations = Generations(settings, database.jobs, storage, FetchPolicy.from_settings(settings))
    return Services(
        settings=settings,
        database=database,
        storage=storage,
        generations=generations,
        limiter=RateLimiter(settings),
        openai=OpenAIVideos(settings, generations),
        auth_failures=FailedAuthBudget(settings.auth_failures_per_minute),
    )


class _EmbeddedWorkers:
    """The workers ``serve`` runs beside the API: a supervised process, or threads."""

    def __init__(self, settings: Settings, services: Services, engines: EngineRouter) -> None:
        self._settings = settings
        self._supervisor: WorkerSupervisor | None = None
        self._pool: WorkerPool | None = None
        jobs = services.database.jobs
        if settings.worker_isolation == "process":
            self._supervisor = WorkerSupervisor(settings, jobs, settings.workers)
        else:
            self._pool = WorkerPool(
                settings,
                jobs,
                services.storage,
                engines,
                settings.workers,
                keys=services.database.keys,
                recycle=False,
            )

    def start(self) -> None:
        if self._supervisor is not None:
            self._supervisor.start()
        if self._pool is not None:
            self._pool.start()

    def stop(self) -> None:
        drain = self._settings.drain_seconds
        if self._supervisor is not None:
            self._supervisor.stop(drain)
        if self._pool is not None:
            self._pool.stop(drain)

    def hurry(self) -> None:
        """Hand running jobs back now instead of draining (a second Ctrl-C)."""
        if self._supervisor is not None:
            self._supervisor.hurry()
        if self._pool is not None:
            self._pool.request_stop(0.0)


def _where_workers_run(settings: Settings) -> str:
    """``/health``'s answer to "workers: 0?" on an API replica whose workers run elsewhere."""
    if settings.workers <= 0:
        return (
            "elsewhere: this API process runs none (REELFORGE_WORKERS=0); `reelforge worker` "
            "processes that share its database claim the jobs"
        )
    if settings.worker_isolation == "process":
        return "here, in a child process of this service"
    return "here, in this process"


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """Build the app; with ``settings.workers > 0`` it also runs that many workers."""
    settings = settings or (services.settings if services else Settings())
    services = services or build_services(settings)
    engines = EngineRouter(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(services.database.start_listening)
        workers = _EmbeddedWorkers(settings, services, engines) if settings.workers > 0 else None
        app.state.workers = workers  # for `serve`'s second Ctrl-C (``hurry``)
        if workers is not None:
            await run_in_threadpool(workers.start)
        # Everything made so far (modules, the catalogue, the app) lives as long as the
        # process: keep it out of the collector's full passes, which otherwise walk it
        # all and stall every request for tens of milliseconds.
        gc.freeze()
        try:
            yield
        finally:
            if workers is not None:
                await run_in_threadpool(workers.stop)
            services.database.stop_listening()

    app = FastAPI(
        title="reelforge",
        version=__version__,
        description=(
            "Self-hosted video generation compatible with the AI/ML API video endpoints. "
            "Create a task with POST, poll it with GET and `generation_id`."
        ),
        lifespan=lifespan,
        docs_url=None,  # served by add_docs, without a CDN
        redoc_url=None,
    )
    app.state.services = services
    app.state.engines = engines
    app.state.edge = HttpEdge(services)
    app.state.google = google.GoogleVideos(settings, services.generations, services.storage)
    jobs = services.database.jobs
    app.state.url_signer = load_signer(settings, lambda: jobs.secret(SECRET_NAME))
    install_error_handlers(app)
    add_docs(app)
    app.add_middleware(ObserveMiddleware)  # inside RequestContextMiddleware: has the id
    app.add_middleware(
        BodyLimitMiddleware,
        max_body_bytes=settings.max_request_bytes,
        max_text_body_bytes=settings.max_text_request_bytes,
        max_inflight_bytes=settings.max_inflight_bytes,
        read_timeout=settings.read_timeout_seconds,
        body_timeout=settings.body_timeout_seconds,
        large_body_paths=(*routes.PATHS, openai.PATH),
        large_body_suffixes=(google.PREDICT_SUFFIX,),
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "HEAD", "DELETE"],
            allow_headers=list(CORS_ALLOWED_HEADERS),
            expose_headers=list(CORS_EXPOSED_HEADERS),
            max_age=600,
        )
    app.add_middleware(TrustedHostMiddleware, hosts=allowed_hosts(settings))
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestContextMiddleware)  # outermost: every answer has an id
    app.include_router(routes.router)
    app.include_router(openai.router)
    app.include_router(google.router)
    app.include_router(files.router)

    def routed_engines() -> dict[str, dict[str, Any]]:
        return engine_health(settings, held_leases(services.database.jobs))

    @app.get("/health", tags=["operations"], summary="Liveness and queue state")
    def health(services: ServicesDep) -> dict[str, Any]:
        answer = {
            "status": "ok",
            "version": __version__,
            "jobs": services.generations.queue_counts(),
            "workers": settings.workers,
            "workers_run": _where_workers_run(settings),
            "models": {name: {"engine": engines.engine_name(name)} for name in MODELS},
        }
        if settings.routes:
            answer["engines"] = routed_engines()
        return answer

    prices = price_table(settings.prices)

    @app.get("/v2/models", tags=["generations"], summary="Models, parameters, prices, engines")
    def list_models() -> dict[str, Any]:
        return {
            "data": [
                describe_model(spec, engines.engine_name(spec.name), prices[spec.name])
                for spec in MODELS.values()
            ]
        }

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    def prometheus_metrics(
        services: ServicesDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_metrics_bearer)],
    ) -> Response:
        """Off unless ``REELFORGE_METRICS_TOKEN`` is set; then the token is required."""
        token = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
        if not token:
            raise NotFound("metrics are off; set REELFORGE_METRICS_TOKEN to turn them on")
        given = credentials.credentials if credentials else ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise Unauthorized("/metrics needs 'Authorization: Bearer <REELFORGE_METRICS_TOKEN>'")
        body, content_type = metrics.exposition(
            services.generations.queue_counts, routed_engines if settings.routes else None
        )
        return Response(body, media_type=content_type)

    @app.get("/", include_in_schema=False)
    def root() -> FileResponse:
        """The playground (``reelforge/web``); the API docs stay at ``/docs``."""
        return FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/ui", StaticFiles(directory=WEB_DIR), name="ui")

    return app
