"""Generation engines behind one interface, chosen per model by configuration."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from reelforge.engines.base import (
    Capabilities,
    Engine,
    GenerationRequest,
    Inputs,
    JobContext,
    VideoInput,
    time_budget,
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


def _check_instance(settings: Settings, name: str) -> None:
    """An ``openai-videos`` instance needs a base URL; a ``fal`` one a key."""
    instance = settings.engines[name]
    if instance.kind == "openai-videos":
        from reelforge.engines.openai_compat import base_url

        base_url(name, instance)
    elif not (instance.api_key and instance.api_key.get_secret_value().strip()):
        raise ConfigurationError(f"engine '{name}' (fal) needs an api_key (a fal key)")


INSTANCE_KINDS = ("openai-videos", "fal")
"""Engine kinds that exist only as named instances (``[engines.<name>]``)."""


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

    A model with a route (``settings.routes``) gets a ``RoutedEngine`` over the route's
    engines: configured instances (``settings.engines``) or built-in engines by name.
    Construction checks the whole routing configuration (models known, engines
    resolvable, their required settings present) and raises ``ConfigurationError``, so a
    mistake stops ``serve`` or ``worker`` at start-up instead of failing jobs later.
    """

    def __init__(
        self, settings: Settings, factories: dict[str, EngineFactory] | None = None
    ) -> None:
        from reelforge.catalog import MODELS

        unknown = sorted((set(settings.model_engines) | set(settings.routes)) - set(MODELS))
        if unknown:
            raise ConfigurationError(
                f"REELFORGE_MODEL_ENGINES or REELFORGE_ROUTES names unknown models {unknown}; "
                f"the models are {sorted(MODELS)}"
            )
        self._settings = settings
        known = factories or ENGINE_FACTORIES
        served: dict[str, list[str]] = {}
        for model in MODELS:
            for name in self.route(model):
                kind = self.kind(name)
                if kind in INSTANCE_KINDS and name in settings.engines:
                    _check_instance(settings, name)
                    continue
                if kind in INSTANCE_KINDS:
                    raise ConfigurationError(
                        f"the route of {model} names '{name}': a {kind} engine is configured "
                        f'as [engines.<name>] with kind = "{kind}"'
                    )
                served.setdefault(kind, []).append(model)
        for model, route in settings.routes.items():
            if not route:
                raise ConfigurationError(f"the route of {model} names no engine")
        self._factories = {name: known.get(name) or _import_factory(name) for name in served}
        for name, models in served.items():
            self._factories[name].check(settings, models)
        self._engines: dict[str, Engine] = {}
        self._routed: dict[str, Engine] = {}
        self._breakers: dict[str, Any] = {}
        self._capacity: Any = None
        self._lock = threading.Lock()

    def route(self, model: str) -> list[str]:
        """The engine names ``model`` tries, in order (one unless a route says more)."""
        return list(self._settings.routes.get(model) or [self._plain_name(model)])

    def kind(self, name: str) -> str:
        """An engine name's kind: an instance's ``kind``, else the name itself."""
        instance = self._settings.engines.get(name)
        return instance.kind if instance is not None else name

    def _plain_name(self, model: str) -> str:
        return self._settings.model_engines.get(model, self._settings.engine)

    def _routed_model(self, model: str) -> bool:
        return model in self._settings.routes or self._plain_name(model) in self._settings.engines

    def engine_name(self, model: str) -> str:
        return "+".join(self.route(model))

    def attach_capacity(self, capacity: Any) -> None:
        """Share slots and open circuits between workers through ``capacity`` (the job
        store's named leases); without it capacity is not enforced."""
        with self._lock:
            self._capacity = capacity
            for engine in self._routed.values():
                engine.capacity = capacity  # type: ignore[attr-defined]

    def full_models(self) -> list[str]:
        """Models whose every route engine has a ``capacity`` and no free slot now, so a
        claim leaves their jobs queued for a worker that can start them (one query, and
        none without capacities). Two claims may still race for a last slot: the slot
        itself is the exact limit, and the loser waits for one."""
        capped = {
            name: instance.capacity
            for name, instance in self._settings.engines.items()
            if instance.capacity is not None
        }
        routed = {
            model: route
            for model, route in self._settings.routes.items()
            if route and all(name in capped for name in route)
        }
        if not routed or self._capacity is None:
            return []
        from reelforge.engines.routing import SLOT_LOCK_PREFIX, held_leases

        held = held_leases(self._capacity)
        busy = {name: 0 for name in capped}
        for lease in held:
            if lease.startswith(SLOT_LOCK_PREFIX):
                name = lease[len(SLOT_LOCK_PREFIX) :].rsplit(":", 1)[0]
                if name in busy:
                    busy[name] += 1
        return sorted(
            model
            for model, route in routed.items()
            if all(busy[name] >= capped[name] for name in route)
        )

    def breaker_states(self) -> dict[str, str]:
        """Each engine instance's circuit in this process: closed, open or half_open."""
        with self._lock:
            return {name: breaker.state for name, breaker in self._breakers.items()}

    def for_model(self, model: str) -> Engine:
        with self._lock:
            if self._routed_model(model):
                return self._route_engine(model)
            return self._engine(self._plain_name(model))

    def _engine(self, name: str) -> Engine:
        engine = self._engines.get(name)
        if engine is None:
            kind = self.kind(name)
            if kind == "openai-videos":
                from reelforge.engines.openai_compat import OpenAIVideosEngine

                engine = OpenAIVideosEngine.from_settings(self._settings, name)
            elif kind == "fal":
                from reelforge.engines.fal import FalEngine

                engine = FalEngine.from_settings(self._settings, name)
            else:
                engine = self._factories[kind].build(self._settings)
            engine.load()
            self._engines[name] = engine
        return engine

    def _route_engine(self, model: str) -> Engine:
        from reelforge.engines.routing import CircuitBreaker, Member, RoutedEngine

        routed = self._routed.get(model)
        if routed is None:
            members = []
            for name in self.route(model):
                instance = self._settings.engines.get(name)
                if instance is not None and instance.models and model not in instance.models:
                    continue
                engine = self._engine(name)
                serves = getattr(engine, "serves", None)
                if serves is not None and not serves(model):
                    continue  # e.g. a model fal does not offer
                if name not in self._breakers:
                    self._breakers[name] = CircuitBreaker(
                        name,
                        self._settings.breaker_failures,
                        self._settings.breaker_cooldown_seconds,
                    )
                members.append(
                    Member(
                        name,
                        self.kind(name),
                        engine,
                        capacity=instance.capacity if instance else None,
                    )
                )
            if not members:
                raise ConfigurationError(f"no engine of the route of {model} serves it")
            routed = RoutedEngine(
                model,
                members,
                self._breakers,
                capacity=self._capacity,
                lease_seconds=self._settings.lease_seconds,
            )
            self._routed[model] = routed
        return routed

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
            self._routed.clear()


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
    "time_budget",
]
