"""A person's long-lived search history: the last N distinct queries, with counts and last use.

Beside the session (30 minutes), an optional history per user, keyed by the store key
:mod:`sessions.users` derives (never a raw user id). Bounded: at most ``max_queries`` distinct
queries per user (the least recently used goes first), expiring ``ttl_seconds`` after the user's
last submit. Deletable at once by its person: :meth:`HistoryStore.forget`.

:class:`MemoryHistoryStore` (the default) keeps at most ``max_users`` users in process memory,
least recently used evicted first; :mod:`sessions.redis_history` keeps them in Redis.
:class:`GuardedHistoryStore` bounds and circuit-breaks every call as the session store's guard
does: a slow or dead store means "no history", never a stall or an error.
"""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from sessions.guard import StoreGuard


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """One past query of a person: how often they submitted it and when last (epoch seconds)."""

    query: str
    count: int
    last_used: float


class HistoryStore(Protocol):
    """Where user histories live. Methods raise :class:`~sessions.base.SessionStoreError`."""

    async def read(self, user: str, n: int) -> list[Entry]:
        """The user's ``n`` most recently used queries, most recent first."""
        ...

    async def record(self, user: str, query: str, key: str | None = None) -> None:
        """Count one more submit of ``query`` now; ``key`` makes a retried write count once."""
        ...

    async def forget(self, user: str, query: str | None = None) -> None:
        """Delete ``query`` from the user's history, or the whole history (``None``)."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class MemoryHistoryStore:
    def __init__(
        self,
        *,
        max_queries: int = 200,
        max_users: int = 100_000,
        ttl_seconds: float = 90 * 86400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_queries <= 0 or max_users <= 0 or ttl_seconds <= 0:
            raise ValueError(
                "MemoryHistoryStore needs positive max_queries, max_users and ttl_seconds, got "
                f"{max_queries}, {max_users}, {ttl_seconds}"
            )
        self.max_queries = max_queries
        self.max_users = max_users
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        # user -> (expiry, query -> [count, last used]); both ordered by last use
        self._users: OrderedDict[str, tuple[float, OrderedDict[str, list[float]]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._users)

    def queries(self, user: str) -> int:
        """How many distinct queries the user's history holds (for tests and the docs' figures)."""
        found = self._live(user)
        return 0 if found is None else len(found)

    async def read(self, user: str, n: int) -> list[Entry]:
        found = self._live(user)
        if found is None or n <= 0:
            return []
        out = []
        for query in reversed(found):
            count, last = found[query]
            out.append(Entry(query, int(count), last))
            if len(out) == n:
                break
        return out

    async def record(self, user: str, query: str, key: str | None = None) -> None:
        # ``key`` needs no bookkeeping: a write to process memory never fails, so never repeats
        now = self._clock()
        found = self._live(user)
        if found is None:
            found = OrderedDict()
        entry = found.pop(query, None)
        found[query] = [1.0 if entry is None else entry[0] + 1.0, now]
        while len(found) > self.max_queries:
            found.popitem(last=False)
        self._users[user] = (now + self.ttl_seconds, found)
        self._users.move_to_end(user)
        while len(self._users) > self.max_users:
            self._users.popitem(last=False)

    async def forget(self, user: str, query: str | None = None) -> None:
        if query is None:
            self._users.pop(user, None)
            return
        found = self._live(user)
        if found is not None:
            found.pop(query, None)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._users.clear()

    def _live(self, user: str) -> OrderedDict[str, list[float]] | None:
        entry = self._users.get(user)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._users[user]
            return None
        self._users.move_to_end(user)
        return entry[1]


class GuardedHistoryStore(StoreGuard):
    """A :class:`HistoryStore` behind the session store's guard: reads bounded by ``timeout``,
    writes and deletions by ``write_timeout``; a failure answers ``None`` (no history) and opens
    the guard; submits the store did not take wait in the outbox and are retried."""

    what = "history store"
    subject = "user"
    degraded = "answering without history"
    ops = "history_"

    def __init__(self, store: HistoryStore, **guard: object) -> None:
        super().__init__(store, **guard)  # type: ignore[arg-type]
        self.store: HistoryStore = store

    async def read(self, user: str, n: int, *, timeout: float | None = None) -> list[Entry] | None:
        """The user's recent entries, ``None`` when the store failed or is being left alone."""
        if n <= 0:
            return []
        call = lambda: self.store.read(user, n)  # noqa: E731
        return await self._call("history_read", call, None, timeout or self.timeout, user)

    async def forget(self, user: str, query: str | None = None) -> bool:
        """Delete from the store (and from the outbox: a waiting submit of the user is dropped when
        the whole history goes, or when it is the forgotten query). ``False``: the store failed."""
        self.outbox.discard(user, query)

        async def forget() -> bool:
            await self.store.forget(user, query)
            return True

        return await self._call("history_forget", forget, False, self.write_timeout, user)
