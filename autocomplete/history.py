"""A person's history on the serving side: who they are, what one connection knows of their
history, and forgetting it at once on every connection of this worker.

:class:`Histories` (one per worker, built in the lifespan) resolves the identity a request
carries (a signed user key, else the browser-id cookie; nothing with ``history=false``), and
keeps the :class:`UserHistory` of every open websocket by user, so that a deletion reaches the
very next answer of each of them.

A :class:`UserHistory` is read from the store once, at the first input or ``recent`` of its
connection, then kept up to date by the person's submits and deletions on this worker (any of
their connections, or the HTTP API) without asking the store again; it is read again, in the
background, once older than ``serve.history_refresh_seconds`` (another worker may have added to
it). A read that
started before a local change (a submit, a deletion) is dropped. The completer gets it as a
:data:`~autocomplete.candidates.History`: normalized query -> (times submitted, days since last).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections.abc import Callable
from typing import Literal

from autocomplete.candidates import NO_HISTORY, History
from autocomplete.config import ServeConfig
from indexer.histories import PastQueries
from sessions.guard import Submit
from sessions.history import Entry, GuardedHistoryStore
from sessions.users import UserKeys

logger = logging.getLogger("autocomplete.history")
DAY = 86400.0


@dataclasses.dataclass(frozen=True, slots=True)
class Identity:
    """Whose history a request reads and writes (``user``: a store key, ``None``: nobody) and the
    browser-id cookie to set (``None``: none)."""

    user: str | None
    cookie: str | None = None


NOBODY = Identity(None)


def as_history(entries: dict[str, tuple[int, float]], now: float) -> History:
    """The completer's view: query -> (times submitted, days since it was last submitted)."""
    return PastQueries({q: (count, max(0.0, (now - last) / DAY)) for q, (count, last) in entries.items()})


class Histories:
    """Identities, the history store behind its guard, and the open connections' histories."""

    def __init__(
        self,
        store: GuardedHistoryStore | None,
        keys: UserKeys,
        config: ServeConfig,
        *,
        on_refused: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.keys = keys
        self.config = config
        self.enabled = store is not None and config.history_enabled
        self._on_refused = on_refused
        self._clock = clock
        self._live: dict[str, set[UserHistory]] = {}

    def identify(
        self, signed: str | None, cookie: str | None, wanted: bool = True, *, issue: bool = False
    ) -> Identity:
        """A signed user key that verifies; else (no key given) the browser id of a valid cookie,
        and with ``issue`` (where the request may write: a websocket, a submit) a fresh one when
        there is none, set again either way so that its max-age starts over. A key given that does
        not verify identifies nobody and sets no cookie: it reads and writes nothing, and the
        answer looks like any other."""
        if not self.enabled or not wanted:
            return NOBODY
        if signed:
            user = self.keys.user(signed)
            if user is None:
                if self._on_refused is not None:
                    self._on_refused()
                return NOBODY
            return Identity(user)
        found = self.keys.browser(cookie)
        if found is not None:
            return Identity(found, cookie if issue else None)
        if not issue:
            return NOBODY  # a fresh browser has no history to read
        fresh = self.keys.issue_browser()
        return Identity(self.keys.browser(fresh), fresh)

    def open(self, user: str | None) -> UserHistory:
        history = UserHistory(self, user)
        if user is not None:
            self._live.setdefault(user, set()).add(history)
        return history

    def closed(self, history: UserHistory) -> None:
        if history.user is None:
            return
        live = self._live.get(history.user)
        if live is not None:
            live.discard(history)
            if not live:
                del self._live[history.user]

    async def read(
        self, user: str, n: int | None = None, *, timeout: float | None = None
    ) -> list[Entry] | None:
        if self.store is None:
            return []
        return await self.store.read(user, n or self.config.history_max_queries, timeout=timeout)

    async def entries(self, user: str | None, *, timeout: float | None = None) -> History:
        """One read as the completer takes it (the HTTP API, which keeps no connection)."""
        if user is None or self.store is None:
            return NO_HISTORY
        found = await self.read(user, timeout=timeout)
        if not found:
            return NO_HISTORY
        return as_history({e.query: (e.count, e.last_used) for e in reversed(found)}, self._clock())

    async def record(self, user: str | None, query: str, key: str | None) -> Submit | None:
        """Add a submit to the store and to every open connection of the person on this worker."""
        if user is None or self.store is None:
            return None
        submit = await self.store.record(user, query, key)
        for history in tuple(self._live.get(user, ())):
            history.submitted(query, submit.stored)
        return submit

    async def forget(self, user: str | None, query: str | None = None) -> bool:
        """Forget ``query`` (all, for ``None``) in every open connection of this worker, then in
        the store. ``False``: the store could not be reached (the connections forgot it anyway)."""
        if user is None or self.store is None:
            return True
        for history in tuple(self._live.get(user, ())):
            history.forgotten(query)
        return await self.store.forget(user, query)


class UserHistory:
    """One connection's copy of its person's history (see the module docstring)."""

    def __init__(self, histories: Histories, user: str | None) -> None:
        self._histories = histories
        self.user = user
        self._refresh = histories.config.history_refresh_seconds
        self._max = histories.config.history_max_queries
        self._clock = histories._clock
        self._entries: dict[str, tuple[int, float]] = {}  # least recently used first
        self._view: History = NO_HISTORY
        self._first_read = user is not None
        self._due = -math.inf if user is not None else math.inf
        self._version = 0  # counts local changes: submits and deletions
        self._pending: asyncio.Task[None] | None = None

    async def current(self) -> History:
        """The history for this keystroke; never waits for the store but at the first read."""
        if self._pending is None and time.monotonic() >= self._due:
            self._pending = asyncio.create_task(self._read(self._version))
            if self._first_read:
                self._first_read = False
                await self._pending
            else:
                await asyncio.sleep(0)  # let a store that answers at once answer this input
        return self._view

    async def recent(self, k: int) -> list[str]:
        """The person's recent searches, most recent first, at most ``k``."""
        await self.current()
        return list(reversed(self._entries))[:k]

    def submitted(self, query: str, stored: bool | Literal["pending"]) -> None:
        if self.user is None:
            return
        self._version += 1
        if stored is False:
            self._due = -math.inf  # ask the store again at the next input
            return
        count = self._entries.pop(query, (0, 0.0))[0]
        self._entries[query] = (count + 1, self._clock())
        while len(self._entries) > self._max:
            del self._entries[next(iter(self._entries))]
        self._rebuild()

    def forgotten(self, query: str | None) -> None:
        self._version += 1
        if query is None:
            self._entries.clear()
        else:
            self._entries.pop(query, None)
        self._rebuild()

    def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
        self._histories.closed(self)

    def _rebuild(self) -> None:
        self._view = as_history(self._entries, self._clock()) if self._entries else NO_HISTORY

    async def _read(self, version: int) -> None:
        try:
            assert self.user is not None
            found = await self._histories.read(self.user)
            if found is not None and version == self._version:
                self._entries = {e.query: (e.count, e.last_used) for e in reversed(found)}
                self._rebuild()
            if version == self._version:
                self._due = time.monotonic() + self._refresh
        finally:
            self._pending = None
