"""Prometheus metrics of the service, one registry per app (so tests can build many apps).

With several uvicorn workers, set ``PROMETHEUS_MULTIPROC_DIR`` (``autocomplete serve`` does it
for ``--workers`` > 1): every worker then writes its samples there and ``/metrics`` adds them up.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

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
        self.empty = Counter("autocomplete_empty_answers", "Inputs answered with no completion", registry=r)
        self.sources = Counter(
            "autocomplete_completion_sources",
            "Completions returned, by the chain link that proposed them (model, followed, tail, "
            "generated, fuzzy, history, related, reformulated, live, popular)",
            ["source"],
            registry=r,
        )
        self.chosen_rank = Histogram(
            "autocomplete_chosen_rank",
            "Position (1-based) of the suggestion a person submitted; typed queries are not counted",
            buckets=tuple(range(1, 21)),
            registry=r,
        )
        self.user_keys_refused = Counter(
            "autocomplete_user_keys_refused",
            "Signed user keys that did not verify (read and wrote nothing)",
            registry=r,
        )
        self.history_forgotten = Counter(
            "autocomplete_history_forgotten",
            "Deletions of a person's history, whole or one query",
            ["scope"],
            registry=r,
        )
        self.model_info = Gauge(
            "autocomplete_model_info",
            "The model being served (value 1): its id (checksum of params.json), kind, labels, trained at",
            ["id", "kind", "labels", "trained_at"],
            registry=r,
            multiprocess_mode="max",
        )
        self.reloads = Counter(
            "autocomplete_model_reloads",
            "Model reloads by result: loaded (swapped in), unchanged (the same model), refused (a "
            "damaged or unreadable folder: the model before keeps serving)",
            ["result"],
            registry=r,
        )
        self.blocked = Counter(
            "autocomplete_blocked_completions",
            "Completions taken out of answers by the live blocklist",
            registry=r,
        )
        self.blocklist_loads = Counter(
            "autocomplete_blocklist_loads",
            "Blocklist (re)loads by result: loaded, refused (the list before stays)",
            ["result"],
            registry=r,
        )
        self.blocklist_entries = Gauge(
            "autocomplete_blocklist_entries",
            "Words and patterns of the live blocklist in service",
            registry=r,
            multiprocess_mode="max",
        )
        # the labelled series of the per-keystroke path, looked up once
        self.websocket_inputs = self.inputs.labels("websocket")
        self.websocket_submits = self.submits.labels("websocket")
        self._store_latency = {op: self.store_latency.labels(op) for op in _STORE_OPS}

    def answered(self, found: Sequence[Any]) -> None:
        """Count an answer: empty or not, and the source of each completion."""
        if not found:
            self.empty.inc()
        for c in found:
            self.sources.labels(str(c.source)).inc()

    def serving(self, info: Mapping[str, Any], replaced: Mapping[str, Any] | None = None) -> None:
        """The model in service is 1; the one it ``replaced`` (a hot reload) becomes 0."""
        if replaced is not None:
            self.model_info.labels(*_model_labels(replaced)).set(0)
        self.model_info.labels(*_model_labels(info)).set(1)

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


def _model_labels(info: Mapping[str, Any]) -> tuple[str, str, str, str]:
    return str(info["id"]), str(info["kind"]), str(info["labels"]), str(info["trained_at"])
