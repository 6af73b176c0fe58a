"""A worker's live feed: stored submits go to the shared live counts, and its view is kept fresh.

Built in the app's lifespan (never a module global). Every stored submit is counted in the live
store (:mod:`sessions.livecounts`: Redis when ``serve.redis_url`` is set, else process memory) by a
background task, never delaying the answer. A refresh task asks the store for what changed every
``serve.live_refresh_seconds`` and applies it to the worker's :class:`~autocomplete.live.LiveView`
between two keystrokes, so the completer reads live state from process memory (no Redis round
trip per keystroke) and a query counted on one worker reaches the others within about a refresh
interval. The first refresh is awaited at start-up: a restarted worker serves the counts at once.
A failing store leaves the view as it was (logged at most once a minute, counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from autocomplete.config import ServeConfig
from autocomplete.live import LiveView, view_for
from indexer.config import TrainConfig, train_config_from_mapping
from indexer.modelio import read_params
from indexer.params import LiveParams
from sessions.livecounts import (
    LiveChanges,
    LiveCountsError,
    LoggedSubmit,
    MemoryLiveCounts,
    RedisLiveCounts,
    session_key,
)

logger = logging.getLogger("autocomplete.live")


class LiveStore(Protocol):
    async def record(self, query: str, key: str, when: float | None = None) -> None: ...

    async def changes(self, since: int) -> LiveChanges: ...

    async def export(self) -> list[LoggedSubmit]: ...

    async def close(self) -> None: ...


def trained_config(folder: str | Path) -> TrainConfig:
    """The configuration a model folder was trained with (defaults for an older folder without one)."""
    saved = read_params(folder).get("summary", {}).get("config")
    return train_config_from_mapping(saved) if saved else TrainConfig()


def live_store(config: ServeConfig, live: LiveParams) -> LiveStore:
    """Redis when the service has one (shared by the workers, kept across restarts), else memory."""
    settings = dict(
        short_half_life=live.short_half_life_seconds,
        long_half_life=live.long_half_life_seconds,
        window=live.window_seconds,
        max_queries=config.live_max_queries,
        sessions_cap=config.live_sessions_cap,
        log_size=config.live_log_size,
    )
    if config.redis_url:
        return RedisLiveCounts(
            config.redis_url,
            prefix=config.redis_prefix,
            socket_timeout=config.redis_socket_timeout,
            connect_timeout=config.redis_connect_timeout,
            **settings,  # type: ignore[arg-type]
        )
    return MemoryLiveCounts(**settings)  # type: ignore[arg-type]


class LiveFeed:
    """The store, this worker's view of it, the refresh task and the submit hook."""

    def __init__(
        self,
        store: LiveStore,
        view: LiveView,
        refresh_seconds: float = 1.0,
        on_error: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.view = view
        self.refresh_seconds = refresh_seconds
        self._on_error = on_error
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Task[None]] = set()
        self._logged = -float("inf")
        self.errors = 0

    @classmethod
    def for_model(cls, folder: str | Path, config: ServeConfig, **kwargs: object) -> LiveFeed:
        """The feed of a model folder: its ``[live]`` and ``[privacy]`` settings, the service's store."""
        trained = trained_config(folder)
        view = view_for(trained.live, trained.privacy)
        return cls(live_store(config, trained.live), view, config.live_refresh_seconds, **kwargs)  # type: ignore[arg-type]

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._refreshing())

    async def refresh(self) -> None:
        try:
            changes = await self.store.changes(self.view.seq)
        except LiveCountsError as exc:
            self._failed("read", exc)
            return
        self.view.apply(changes, now=self._clock())

    async def _refreshing(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            await self.refresh()

    def submitted(self, session: str, query: str) -> None:
        """Count a stored submit (in the background: the answer never waits for it)."""
        task = asyncio.create_task(self._record(session, query))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _record(self, session: str, query: str) -> None:
        try:
            await self.store.record(query, session_key(session), self._clock())
        except LiveCountsError as exc:
            self._failed("write", exc)
            return
        if isinstance(self.store, MemoryLiveCounts):  # this worker is the only one: apply at once
            self.view.apply(self.store.changes_since(self.view.seq), now=self._clock())

    def _failed(self, op: str, exc: LiveCountsError) -> None:
        self.errors += 1
        if self._on_error is not None:
            self._on_error(op)
        now = time.monotonic()
        if now - self._logged >= 60.0:
            logger.warning("live counts %s failed (%d failure(s) so far): %s", op, self.errors, exc)
            self._logged = now

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writes:
            await asyncio.wait(set(self._writes), timeout=1.0)
        await self.store.close()
