"""Generation engines behind one interface, chosen per model by configuration."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable

from reelforge.engines.base import (
    FPS,
    Audio,
    Capabilities,
    Clip,
    Engine,
    GenerationRequest,
    Inputs,
    Progress,
)
from reelforge.errors import ServiceUnavailable
from reelforge.settings import Settings


def _preview(settings: Settings) -> Engine:
    from reelforge.engines.preview import PreviewEngine

    return PreviewEngine(latency_seconds=settings.preview_latency_seconds)


def _diffusers(settings: Settings) -> Engine:
    from reelforge.engines.diffusers import DiffusersEngine

    return DiffusersEngine.from_settings(settings)


def _aimlapi(settings: Settings) -> Engine:
    from reelforge.engines.aimlapi import AimlapiEngine

    return AimlapiEngine.from_settings(settings)


def _google(settings: Settings) -> Engine:
    from reelforge.engines.google import GoogleEngine

    return GoogleEngine.from_settings(settings)


ENGINE_FACTORIES: dict[str, Callable[[Settings], Engine]] = {
    "preview": _preview,
    "diffusers": _diffusers,
    "aimlapi": _aimlapi,
    "google": _google,
}
"""Engines by configuration name; heavy engines import their libraries lazily."""


def _import_factory(name: str) -> Callable[[Settings], Engine]:
    """A custom engine named ``package.module:factory`` (called with the settings)."""
    module_name, _, attribute = name.partition(":")
    if not attribute:
        known = ", ".join(sorted(ENGINE_FACTORIES))
        raise ServiceUnavailable(
            f"engine '{name}' is not available; built-in engines: {known}, "
            "or name a custom one as 'package.module:factory'"
        )
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ServiceUnavailable(f"engine '{name}' could not be loaded: {error}") from None


class EngineRouter:
    """Maps a model to its engine; each engine is built and loaded once per worker process."""

    def __init__(
        self,
        settings: Settings,
        factories: dict[str, Callable[[Settings], Engine]] | None = None,
    ) -> None:
        from reelforge.catalog import MODELS

        unknown = sorted(set(settings.model_engines) - set(MODELS))
        if unknown:
            raise ServiceUnavailable(
                f"REELFORGE_MODEL_ENGINES names unknown models {unknown}; "
                f"the models are {sorted(MODELS)}"
            )
        self._settings = settings
        self._factories = factories or ENGINE_FACTORIES
        self._engines: dict[str, Engine] = {}
        self._lock = threading.Lock()

    def engine_name(self, model: str) -> str:
        return self._settings.model_engines.get(model, self._settings.engine)

    def for_model(self, model: str) -> Engine:
        name = self.engine_name(model)
        with self._lock:
            engine = self._engines.get(name)
            if engine is None:
                factory = self._factories.get(name) or _import_factory(name)
                engine = factory(self._settings)
                engine.load()
                self._engines[name] = engine
            return engine

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
    "EngineRouter",
    "GenerationRequest",
    "Inputs",
    "Progress",
]
