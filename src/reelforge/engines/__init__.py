"""Generation engines behind one interface, chosen per model by configuration."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from reelforge.engines.base import (
    Capabilities,
    Engine,
    GenerationRequest,
    Inputs,
    JobContext,
    VideoInput,
)
from reelforge.errors import ConfigurationError, EngineError
from reelforge.media.clip import FPS, Audio, Clip
from reelforge.settings import Settings


@dataclass(frozen=True)
class EngineFactory:
    """How to build a built-in engine, and what its configuration must contain.

    ``check`` looks only at settings (no imports of heavy libraries, no network), so the
    API process can refuse a broken configuration at start-up even where the engine's
    libraries are not installed.
    """

    build: Callable[[Settings], Engine]
    check: Callable[[Settings, Iterable[str]], None] = lambda settings, models: None


def _preview(settings: Settings) -> Engine:
    from reelforge.engines.preview.engine import PreviewEngine

    return PreviewEngine(
        latency_seconds=settings.preview_latency_seconds,
        # One x264 thread means one core per job: render in the encoding thread too.
        render_threads=0 if settings.encoder_threads == 1 else None,
    )


def _diffusers(settings: Settings) -> Engine:
    from reelforge.engines.diffusers import DiffusersEngine

    return DiffusersEngine.from_settings(settings)


def _check_diffusers(settings: Settings, models: Iterable[str]) -> None:
    missing = [
        model
        for model in models
        if not (settings.diffusers_models.get(model) or settings.diffusers_model_path)
    ]
    if missing:
        raise ConfigurationError(
            f"the diffusers engine serves {', '.join(missing)} but no checkpoint is configured "
            "for it: set REELFORGE_DIFFUSERS_MODEL_PATH (every model) or "
            "REELFORGE_DIFFUSERS_MODELS (per model)"
        )


def _aimlapi(settings: Settings) -> Engine:
    from reelforge.engines.aimlapi import AimlapiEngine

    return AimlapiEngine.from_settings(settings)


def _check_aimlapi(settings: Settings, models: Iterable[str]) -> None:
    key = settings.aimlapi_key.get_secret_value() if settings.aimlapi_key else ""
    if not key.strip():
        raise ConfigurationError(
            f"the aimlapi engine serves {', '.join(models)} but REELFORGE_AIMLAPI_KEY is not set"
        )


def _google(settings: Settings) -> Engine:
    from reelforge.engines.google import GoogleEngine

    return GoogleEngine.from_settings(settings)


def _check_google(settings: Settings, models: Iterable[str]) -> None:
    key = settings.google_api_key.get_secret_value() if settings.google_api_key else ""
    if not key.strip() and not settings.google_vertex_project:
        raise ConfigurationError(
            f"the google engine serves {', '.join(models)} but neither "
            "REELFORGE_GOOGLE_API_KEY nor REELFORGE_GOOGLE_VERTEX_PROJECT is set"
        )


ENGINE_FACTORIES: dict[str, EngineFactory] = {
    "preview": EngineFactory(_preview),
    "diffusers": EngineFactory(_diffusers, _check_diffusers),
    "aimlapi": EngineFactory(_aimlapi, _check_aimlapi),
    "google": EngineFactory(_google, _check_google),
}
"""Built-in engines by configuration name; heavy engines import their libraries lazily."""
STARTED_ENGINES = frozenset({"diffusers"})
"""Engines a worker loads when it starts (``EngineRouter.start``); others on first use."""


def _import_factory(name: str) -> EngineFactory:
    """A custom engine named ``package.module:factory`` (called with the settings)."""
    module_name, _, attribute = name.partition(":")
    if not attribute or not module_name:
        known = ", ".join(sorted(ENGINE_FACTORIES))
        raise ConfigurationError(
            f"engine '{name}' is not available; built-in engines: {known}, "
            "or name a custom one as 'package.module:factory'"
        )
    try:
        build = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ConfigurationError(f"engine '{name}' could not be loaded: {error}") from None
    return EngineFactory(build)


class EngineRouter:
    """Maps a model to its engine; each engine is built and loaded once per process.

    Construction checks the whole routing configuration (models known, engines
    resolvable, their required settings present) and raises ``ConfigurationError``, so a
    mistake stops ``serve`` or ``worker`` at start-up instead of failing jobs later.
    """

    def __init__(
        self, settings: Settings, factories: dict[str, EngineFactory] | None = None
    ) -> None:
        from reelforge.catalog import MODELS

        unknown = sorted(set(settings.model_engines) - set(MODELS))
        if unknown:
            raise ConfigurationError(
                f"REELFORGE_MODEL_ENGINES names unknown models {unknown}; "
                f"the models are {sorted(MODELS)}"
            )
        self._settings = settings
        known = factories or ENGINE_FACTORIES
        served: dict[str, list[str]] = {}
        for model in MODELS:
            served.setdefault(self.engine_name(model), []).append(model)
        self._factories = {name: known.get(name) or _import_factory(name) for name in served}
        for name, models in served.items():
            self._factories[name].check(settings, models)
        self._engines: dict[str, Engine] = {}
        self._lock = threading.Lock()

    def engine_name(self, model: str) -> str:
        return self._settings.model_engines.get(model, self._settings.engine)

    def for_model(self, model: str) -> Engine:
        name = self.engine_name(model)
        with self._lock:
            engine = self._engines.get(name)
            if engine is None:
                engine = self._factories[name].build(self._settings)
                engine.load()
                self._engines[name] = engine
            return engine

    def start(self, models: Iterable[str] = ()) -> None:
        """At worker start, load the engines in ``STARTED_ENGINES`` serving ``models`` (all
        when empty): their checks (an attention backend that cannot run) and warm-up stop
        the worker with the reason instead of failing its first job."""
        from reelforge.catalog import MODELS

        started: set[str] = set()
        for model in models or MODELS:
            name = self.engine_name(model)
            if name in STARTED_ENGINES and name not in started:
                self.for_model(model)
                started.add(name)

    def check(self, engine: Engine, request: GenerationRequest, inputs: Inputs) -> None:
        """Refuse inputs ``engine`` cannot take, before it starts (``EngineError``)."""
        capabilities = engine.capabilities(request.model)
        missing = sorted(inputs.kinds - capabilities.inputs)
        if missing:
            names = ", ".join(kind.replace("_", " ") for kind in missing)
            raise EngineError(
                f"the {engine.name} engine that serves '{request.model}' here cannot take "
                f"{names} inputs; the operator can route this model to another engine"
            )

    def close(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.close()
            self._engines.clear()


__all__ = [
    "FPS",
    "Audio",
    "Capabilities",
    "Clip",
    "Engine",
    "EngineFactory",
    "EngineRouter",
    "GenerationRequest",
    "Inputs",
    "JobContext",
    "VideoInput",
]
