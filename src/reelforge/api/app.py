"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from reelforge import __version__
from reelforge.api import files, routes
from reelforge.api.deps import Services, ServicesDep
from reelforge.api.errors import RequestContextMiddleware, install_error_handlers
from reelforge.catalog import MODELS, describe_model
from reelforge.engines import EngineRouter
from reelforge.generations import Generations
from reelforge.jobs import KeyStore
from reelforge.media.netguard import FetchPolicy
from reelforge.runtime import open_job_store
from reelforge.settings import Settings
from reelforge.storage import Storage, open_storage
from reelforge.worker import WorkerPool

log = logging.getLogger(__name__)


def build_services(settings: Settings, *, auto_migrate: bool | None = None) -> Services:
    """Open the database (see ``runtime.open_job_store`` on migrations) and storage."""
    store = open_job_store(settings, auto_migrate=auto_migrate)
    storage: Storage = open_storage(settings)
    generations = Generations(settings, store, storage, FetchPolicy.from_settings(settings))
    return Services(
        settings=settings,
        store=store,
        keys=KeyStore(store.engine, settings.api_keys),
        storage=storage,
        generations=generations,
    )


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """Build the app; with ``settings.workers > 0`` it also runs that many worker threads."""
    settings = settings or (services.settings if services else Settings())
    services = services or build_services(settings)
    engines = EngineRouter(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(services.store.start_listening)
        pool = None
        if settings.workers > 0:
            pool = WorkerPool(settings, services.store, services.storage, engines, settings.workers)
            await run_in_threadpool(pool.start)
        try:
            yield
        finally:
            if pool is not None:
                await run_in_threadpool(pool.stop, settings.drain_seconds)
            services.store.stop_listening()

    app = FastAPI(
        title="reelforge",
        version=__version__,
        description=(
            "Self-hosted video generation compatible with the AI/ML API video endpoints. "
            "Create a task with POST, poll it with GET and `generation_id`."
        ),
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.engines = engines
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_request_bytes)
    app.include_router(routes.router)
    app.include_router(files.router)

    @app.get("/health", tags=["operations"], summary="Liveness and queue state")
    def health(services: ServicesDep) -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "jobs": services.store.count_by_status(),
            "workers": settings.workers,
            "models": {name: {"engine": engines.engine_name(name)} for name in MODELS},
        }

    @app.get("/v2/models", tags=["generations"], summary="Models, parameters, prices, engines")
    def list_models() -> dict[str, Any]:
        return {
            "data": [
                describe_model(spec, engines.engine_name(spec.name)) for spec in MODELS.values()
            ]
        }

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    return app
