"""Prometheus metrics, correct across the processes of one service.

``serve`` runs the API and a worker process; both count. With
``REELFORGE_METRICS_TOKEN`` set, ``serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh
directory before anything imports ``prometheus_client`` (see ``cli.server``), every
process writes its samples there, and ``/metrics`` merges them. Gauges of the queue are
not counted at all: they are read from the database at scrape time (``QueueCollector``),
so they are right whichever process or machine changed the jobs. A ``reelforge worker``
on another machine exposes its own counters with ``--metrics-port``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
PICKUP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 15, 60, 300, 1800)
GENERATION_BUCKETS = (1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 3600)

HTTP_REQUESTS = Counter(
    "reelforge_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "reelforge_http_request_duration_seconds",
    "Time to answer an HTTP request (long-polls and streams included).",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
JOBS_FINISHED = Counter(
    "reelforge_jobs_finished",
    "Jobs that reached a final state, by model, engine and final status.",
    ["model", "engine", "status"],
)
PICKUP = Histogram(
    "reelforge_job_pickup_seconds",
    "From a job's creation to a worker claiming it.",
    ["model"],
    buckets=PICKUP_BUCKETS,
)
GENERATION = Histogram(
    "reelforge_job_generation_seconds",
    "From a worker claiming a job to the job's end (inputs, engine, encoding, storing).",
    ["model", "engine"],
    buckets=GENERATION_BUCKETS,
)
ENGINE_FAILURES = Counter(
    "reelforge_engine_failures",
    "Jobs that ended in error while their engine ran, by engine and error name.",
    ["engine", "error"],
)
FAILOVERS = Counter(
    "reelforge_engine_failovers",
    "Times a job left a route's engine for the next, by model, engine and reason.",
    ["model", "engine", "reason"],
)
BREAKER_OPEN = Gauge(
    "reelforge_engine_circuit_open_here",
    "1 while an engine instance's circuit breaker is open in this worker process.",
    ["engine"],
    multiprocess_mode="max",
)
WEBHOOK_DELIVERIES = Counter(
    "reelforge_webhook_deliveries",
    "Webhook delivery attempts by result (delivered, retry, failed, disabled, dropped).",
    ["result"],
)


class QueueCollector(Collector):
    """Jobs by status and the queue depth, read from the database at scrape time."""

    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = self._counts()
        jobs = GaugeMetricFamily("reelforge_jobs", "Jobs by status.", labels=["status"])
        for status, count in sorted(counts.items()):
            jobs.add_metric([status], count)
        yield jobs
        yield GaugeMetricFamily(
            "reelforge_queue_depth",
            "Jobs waiting for a worker (queued).",
            value=counts.get("queued", 0),
        )


class EngineCollector(Collector):
    """Each routed engine's circuit and busy slots, read from the database at scrape time
    (so every worker on every machine counts), from ``routing.engine_health``."""

    def __init__(self, health: Callable[[], dict[str, dict[str, Any]]]) -> None:
        self._health = health

    def collect(self) -> Iterator[GaugeMetricFamily]:
        health = self._health()
        circuit = GaugeMetricFamily(
            "reelforge_engine_circuit_open",
            "1 while some worker has the engine's circuit breaker open.",
            labels=["engine"],
        )
        busy = GaugeMetricFamily(
            "reelforge_engine_busy_slots",
            "Jobs holding one of the engine's capacity slots.",
            labels=["engine"],
        )
        for name, state in sorted(health.items()):
            circuit.add_metric([name], 1 if state["circuit"] == "open" else 0)
            busy.add_metric([name], state["busy"])
        yield circuit
        yield busy


def exposition(
    counts: Callable[[], dict[str, int]],
    engines: Callable[[], dict[str, dict[str, Any]]] | None = None,
) -> tuple[bytes, str]:
    """The text exposition of every process's metrics plus the queue (and engine) gauges."""
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        REGISTRY,
        CollectorRegistry,
        generate_latest,
        multiprocess,
    )

    queue = CollectorRegistry()
    queue.register(QueueCollector(counts))
    if engines is not None:
        queue.register(EngineCollector(engines))
    if os.environ.get(MULTIPROC_ENV):
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        counted = generate_latest(merged)
    else:
        counted = generate_latest(REGISTRY)
    return counted + generate_latest(queue), CONTENT_TYPE_LATEST
