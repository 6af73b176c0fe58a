"""In-process session store: the default when no Redis is configured.

Bounded: at most ``max_sessions`` sessions of at most ``history_length`` queries each; a session
expires ``ttl_seconds`` after its last use, and when full the least recently used one goes. Each
worker process has its own store, so with several workers use Redis.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

from sessions.ids import SessionIds


class MemorySessionStore:
    def __init__(
        self,
        *,
        ttl_seconds: float = 1800.0,
        history_length: int = 10,
        max_sessions: int = 100_000,
        ids: SessionIds | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds <= 0 or history_length <= 0 or max_sessions <= 0:
            raise ValueError(
                "MemorySessionStore needs positive ttl_seconds, history_length and max_sessions, got "
                f"{ttl_seconds}, {history_length}, {max_sessions}"
            )
        self.ttl_seconds = ttl_seconds
        self.history_length = history_length
        self.max_sessions = max_sessions
        self.ids = ids if ids is not None else SessionIds()
        self._clock = clock
        # session id -> (expiry time, trail); ordered by last use, which is also expiry order
        self._sessions: OrderedDict[str, tuple[float, deque[str]]] = OrderedDict()

    def __len__(self) -> int:
        self._expire(self._clock())
        return len(self._sessions)

    async def resume(self, session_id: str | None) -> str:
        if session_id is not None and self.ids.verify(session_id) and self._touch(session_id) is not None:
            return session_id
        fresh = self.ids.issue()
        self._put(fresh, deque(maxlen=self.history_length))
        return fresh

    async def previous(self, session_id: str, n: int) -> list[str]:
        trail = self._touch(session_id)
        if trail is None or n <= 0:
            return []
        return list(trail)[-n:]

    async def record(self, session_id: str, query: str, key: str | None = None) -> None:
        # ``key`` needs no bookkeeping here: a write to process memory never fails, so never repeats
        trail = self._touch(session_id)
        if trail is None:
            if not self.ids.verify(session_id):
                raise ValueError("record() needs a session id this server issued")
            trail = deque(maxlen=self.history_length)
            self._put(session_id, trail)
        trail.append(query)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._sessions.clear()

    def _touch(self, session_id: str) -> deque[str] | None:
        now = self._clock()
        self._expire(now)
        entry = self._sessions.get(session_id)
        if entry is None:
            return None
        self._sessions[session_id] = (now + self.ttl_seconds, entry[1])
        self._sessions.move_to_end(session_id)
        return entry[1]

    def _put(self, session_id: str, trail: deque[str]) -> None:
        self._sessions[session_id] = (self._clock() + self.ttl_seconds, trail)
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)

    def _expire(self, now: float) -> None:
        sessions = self._sessions
        while sessions:
            oldest = next(iter(sessions))
            if sessions[oldest][0] > now:
                break
            del sessions[oldest]
