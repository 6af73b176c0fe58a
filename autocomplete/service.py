"""What every request handler shares: the model holder, the session store, the user histories, the
limits and the metrics.

Built once per worker process in the app's lifespan and handed to handlers through
``request.state.service``; nothing here is a module global.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections.abc import Sequence

from autocomplete.candidates import NO_HISTORY, History
from autocomplete.completer import Completion
from autocomplete.config import ServeConfig
from autocomplete.exclusions import LiveExclusions, complete_allowed
from autocomplete.history import Histories
from autocomplete.holder import ModelHolder
from autocomplete.limits import ClientLimits
from autocomplete.livefeed import LiveFeed
from autocomplete.metrics import ServiceMetrics
from autocomplete.protocol import Limits
from autocomplete.reload import ModelReloader
from sessions.guard import GuardedSessionStore, Submit
from sessions.users import UserKeys

logger = logging.getLogger("autocomplete.server")


@dataclasses.dataclass
class Service:
    model: ModelHolder
    sessions: GuardedSessionStore
    config: ServeConfig
    metrics: ServiceMetrics
    limits: Limits
    ready: bool = False
    histories: Histories = dataclasses.field(default=None)  # type: ignore[assignment]  # None: no history
    exclusions: LiveExclusions = dataclasses.field(default_factory=lambda: LiveExclusions("", 1))
    reloader: ModelReloader | None = None
    live: LiveFeed | None = None
    client_limits: ClientLimits = dataclasses.field(init=False)

    _refusals: dict[str, int] = dataclasses.field(init=False, default_factory=dict)
    _refusals_logged: float = dataclasses.field(init=False, default=-math.inf)

    def refused(self, reason: str) -> None:
        """A connection refused or dropped by a limit: counted, and logged at most once a minute
        (an address's flood must be seen, but not write a line per connection)."""
        self.metrics.refused.labels(reason).inc()
        self._refusals[reason] = self._refusals.get(reason, 0) + 1
        now = time.monotonic()
        if now - self._refusals_logged >= 60.0:
            counts = ", ".join(f"{n} {r}" for r, n in sorted(self._refusals.items()))
            logger.warning("connections refused or dropped by a limit since the last report: %s", counts)
            self._refusals.clear()
            self._refusals_logged = now

    def __post_init__(self) -> None:
        config = self.config
        if self.histories is None:
            self.histories = Histories(None, UserKeys(None, None), config)
        self.client_limits = ClientLimits(
            max_connections=config.max_connections,
            max_per_address=config.max_connections_per_ip,
            inputs_per_second_per_address=config.max_inputs_per_second_per_ip,
            trusted_proxies=config.trusted_proxies,
        )

    @classmethod
    def limits_of(cls, config: ServeConfig) -> Limits:
        return Limits(
            max_frame_bytes=config.max_frame_bytes,
            max_prefix_chars=config.max_prefix_chars,
            max_query_chars=config.max_query_chars,
            max_k=config.max_k,
        )

    def complete(
        self, text: str, previous: Sequence[str], k: int | None, history: History = NO_HISTORY
    ) -> tuple[list[Completion], float]:
        """The completions of ``text`` the live blocklist lets through, and the milliseconds they
        took (synchronous CPU work)."""
        start = time.perf_counter()
        model = self.model.current  # once: a swap never mixes two models in one answer
        found, blocked = complete_allowed(
            lambda n: model.complete(text, previous, n, history),
            k or self.config.k,
            self.exclusions.current,
            _text,
        )
        seconds = time.perf_counter() - start
        if blocked:
            self.metrics.blocked.inc(blocked)
        self.metrics.latency.observe(seconds)
        self.metrics.completed.inc()
        self.metrics.answered(found)
        return found, seconds * 1000.0

    def prepare(self, query: str) -> None:
        """A query just submitted becomes the next keystrokes' context: the model does its share
        of them now. A failure costs nothing but that head start (logged by class only: a message
        may quote the query)."""
        try:
            self.model.current.prepare([query])
        except Exception as exc:
            logger.error("the completer failed to prepare a context: %s", type(exc).__name__)

    def count_live(self, session: str, query: str, submit: Submit) -> None:
        """A submit the store took (now, or later from the outbox) also counts live."""
        live = self.live
        if live is None or not query:
            return
        if submit.stored is True:
            live.submitted(session, query)
        elif submit.done is not None:

            def written(future: asyncio.Future[bool]) -> None:
                if not future.cancelled() and future.result():
                    live.submitted(session, query)

            submit.done.add_done_callback(written)

    def normalize_query(self, text: str) -> str:
        """A submitted query as the model reads it: normalized once, when it is stored."""
        return self.model.current.normalize_query(text)


def _text(completion: Completion) -> str:
    return completion.text
