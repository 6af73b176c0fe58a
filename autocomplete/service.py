"""What every request handler shares: the model holder, the session store, the limits and the metrics.

Built once per worker process in the app's lifespan and handed to handlers through
``request.state.service``; nothing here is a module global.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

from autocomplete.completer import Completion
from autocomplete.config import ServeConfig
from autocomplete.holder import ModelHolder
from autocomplete.metrics import ServiceMetrics
from autocomplete.protocol import Limits
from sessions.guard import GuardedSessionStore


@dataclasses.dataclass
class Service:
    model: ModelHolder
    sessions: GuardedSessionStore
    config: ServeConfig
    metrics: ServiceMetrics
    limits: Limits
    ready: bool = False

    @classmethod
    def limits_of(cls, config: ServeConfig) -> Limits:
        return Limits(
            max_frame_bytes=config.max_frame_bytes,
            max_prefix_chars=config.max_prefix_chars,
            max_query_chars=config.max_query_chars,
            max_k=config.max_k,
        )

    def complete(self, text: str, previous: Sequence[str], k: int | None) -> tuple[list[Completion], float]:
        """The completions of ``text`` and the milliseconds they took (synchronous CPU work)."""
        start = time.perf_counter()
        found = self.model.current.complete(text, previous, k or self.config.k)
        seconds = time.perf_counter() - start
        self.metrics.latency.observe(seconds)
        self.metrics.completed.inc()
        return found, seconds * 1000.0

    def normalize_query(self, text: str) -> str:
        """A submitted query as the model reads it: normalized once, when it is stored."""
        return self.model.current.normalize_query(text)
