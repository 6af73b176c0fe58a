"""Redis session store: one connection pool per process, shared by all connections.

Keys, under ``prefix``: ``s:<id>`` marks a live session (so a session without queries yet can
be resumed), ``h:<id>`` is its trail as a capped list, most recent first. Both expire
``ttl_seconds`` after the session's last use; every multi-step update is one MULTI/EXEC
pipeline, so a trail is never longer than ``history_length`` nor left without its expiry.

Reading the trail is the per-keystroke call: it refreshes the expiry (a 5-command transaction)
only when this process has not done so for ``touch_interval`` seconds (default ``ttl_seconds /
30``, a minute for 30 minutes), and is a single LRANGE otherwise: a third of the CPU time.
"""

from __future__ import annotations

import time

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from sessions.base import SessionStoreError, is_session_id, new_session_id


class RedisSessionStore:
    def __init__(
        self,
        url: str,
        *,
        prefix: str = "autocomplete:",
        ttl_seconds: int = 1800,
        history_length: int = 10,
        socket_timeout: float = 0.05,
        connect_timeout: float = 0.05,
        max_connections: int = 64,
        retries: int = 1,
        touch_interval: float | None = None,
        max_touched: int = 100_000,
    ) -> None:
        if ttl_seconds <= 0 or history_length <= 0:
            raise ValueError(
                f"RedisSessionStore needs positive ttl_seconds and history_length, got {ttl_seconds}, "
                f"{history_length}"
            )
        self.prefix = prefix
        self.ttl_seconds = int(ttl_seconds)
        self.history_length = history_length
        self.touch_interval = ttl_seconds / 30 if touch_interval is None else touch_interval
        self.max_touched = max_touched
        self._touched: dict[str, float] = {}  # session id -> when this process last refreshed its TTL
        self._pool = ConnectionPool.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            max_connections=max_connections,
            retry=Retry(NoBackoff(), retries),
            decode_responses=True,
        )
        self._redis = Redis(connection_pool=self._pool)

    def _keys(self, session_id: str) -> tuple[str, str]:
        return f"{self.prefix}s:{session_id}", f"{self.prefix}h:{session_id}"

    async def resume(self, session_id: str | None) -> str:
        try:
            if session_id is not None and is_session_id(session_id):
                alive, trail = self._keys(session_id)
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.expire(alive, self.ttl_seconds)
                    pipe.expire(trail, self.ttl_seconds)
                    known, _ = await pipe.execute()
                if known:
                    self._touch(session_id)
                    return session_id
            fresh = new_session_id()
            await self._redis.set(self._keys(fresh)[0], 1, ex=self.ttl_seconds)
            self._touch(fresh)
            return fresh
        except (RedisError, OSError) as exc:
            raise SessionStoreError(f"Redis resume failed: {exc}") from exc

    async def previous(self, session_id: str, n: int) -> list[str]:
        if n <= 0 or not is_session_id(session_id):
            return []
        alive, trail = self._keys(session_id)
        try:
            if time.monotonic() - self._touched.get(session_id, -self.touch_interval) < self.touch_interval:
                recent = await self._redis.lrange(trail, 0, n - 1)
            else:
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.lrange(trail, 0, n - 1)
                    pipe.expire(trail, self.ttl_seconds)
                    pipe.expire(alive, self.ttl_seconds)
                    recent, _, _ = await pipe.execute()
                self._touch(session_id)
        except (RedisError, OSError) as exc:
            raise SessionStoreError(f"Redis read failed: {exc}") from exc
        return [str(query) for query in reversed(recent)]  # decode_responses: already str

    async def record(self, session_id: str, query: str) -> None:
        if not is_session_id(session_id):
            raise ValueError(f"record() needs a server-issued session id, got {session_id!r}")
        alive, trail = self._keys(session_id)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.lpush(trail, query)
                pipe.ltrim(trail, 0, self.history_length - 1)
                pipe.expire(trail, self.ttl_seconds)
                pipe.set(alive, 1, ex=self.ttl_seconds)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise SessionStoreError(f"Redis write failed: {exc}") from exc
        self._touch(session_id)

    def _touch(self, session_id: str) -> None:
        if len(self._touched) >= self.max_touched:
            self._touched.clear()  # bounded memory; forgotten sessions just refresh once more
        self._touched[session_id] = time.monotonic()

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            raise SessionStoreError(f"Redis ping failed: {exc}") from exc

    async def close(self) -> None:
        await self._redis.aclose()
        await self._pool.aclose()
