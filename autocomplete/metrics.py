"""Prometheus metrics of the service, one registry per app (so tests can build many apps).

With several uvicorn workers, set ``PROMETHEUS_MULTIPROC_DIR`` (``autocomplete serve`` does it
for ``--workers`` > 1): every worker then writes its samples there and ``/metrics`` adds them up.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_STORE_OPS = ("resume", "previous", "record", "ping")
_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class ServiceMetrics:
    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.inputs = Counter(
            "autocomplete_inputs", "Inputs (keystrokes) received", ["transport"], registry=r
        )
        self.completed = Counter("autocomplete_completions", "Inputs answered with completions", registry=r)
        self.superseded = Counter(
            "autocomplete_superseded", "Inputs answered 'superseded' (newer input was waiting)", registry=r
        )
        self.submits = Counter("autocomplete_submits", "Queries submitted", ["transport"], registry=r)
        self.errors = Counter("autocomplete_errors", "Error answers by code", ["code"], registry=r)
        self.latency = Histogram(
            "autocomplete_complete_seconds",
            "Time to compute the completions of one input",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.store_errors = Counter(
            "autocomplete_session_store_errors",
            "Session store calls that failed, timed out or were skipped",
            ["op"],
            registry=r,
        )
        self.store_latency = Histogram(
            "autocomplete_session_store_seconds",
            "Session store call latency",
            ["op"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.connections = Gauge(
            "autocomplete_open_connections",
            "Open websocket connections",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.refused = Counter(
            "autocomplete_connections_refused",
            "Connections refused or dropped by a limit (too many, per address, header too big or "
            "too slow, handshake timeout, client not reading)",
            ["reason"],
            registry=r,
        )
        self.outbox = Gauge(
            "autocomplete_submits_pending",
            "Submits waiting in the outbox for the session store to take them",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.outbox_results = Counter(
            "autocomplete_submits_stored",
            "Submits by what became of them: stored at once, stored after a retry, given up, refused "
            "(outbox full)",
            ["result"],
            registry=r,
        )
        # the labelled series of the per-keystroke path, looked up once
        self.websocket_inputs = self.inputs.labels("websocket")
        self.websocket_submits = self.submits.labels("websocket")
        self._store_latency = {op: self.store_latency.labels(op) for op in _STORE_OPS}

    def store_call(self, op: str, seconds: float) -> None:
        series = self._store_latency.get(op)
        (series if series is not None else self.store_latency.labels(op)).observe(seconds)

    def store_error(self, op: str) -> None:
        self.store_errors.labels(op).inc()

    def render(self) -> bytes:
        if self.multiprocess:
            merged = CollectorRegistry()
            MultiProcessCollector(merged)
            return generate_latest(merged)
        return generate_latest(self.registry)
