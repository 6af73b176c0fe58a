"""Redis session store: one blocking connection pool per process, shared by all connections.

Keys, under ``prefix``: ``s:<id>`` marks a live session (so a session without queries yet can
be resumed), ``h:<id>`` is its trail as a capped list, most recent first, ``d:<id>:<key>`` remembers
for a few minutes that the session's submit with idempotency key ``key`` was written (a retried
write is not appended twice). Trail and mark expire ``ttl_seconds`` after the session's last use. A write
is one Lua script, atomic: the trail is never longer than ``history_length`` nor left without
its expiry, and a refused write (out of memory) leaves nothing behind.

A call waits up to ``pool_timeout`` seconds for a pooled connection (a burst queues instead of
failing with "Too many connections"); a wait that runs out raises
:class:`~sessions.base.SessionStoreBusy`, as does an answer slower than ``socket_timeout``: the
guard does not take either for an outage.

Reading the trail is the per-keystroke call, a Lua script that returns at most ``n`` items and
drops any longer than ``max_item_bytes`` (a value planted in the store costs Redis a copy and
this process nothing); it refreshes the expiry only when this process has not done so for
``touch_interval`` seconds (default ``ttl_seconds / 30``, a minute for 30 minutes).
"""

from __future__ import annotations

import time

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from sessions.base import SessionStoreBusy, SessionStoreError
from sessions.ids import SessionIds

_READ = """
local items = redis.pcall('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if type(items) ~= 'table' or items['err'] then return {} end
local max, out = tonumber(ARGV[2]), {}
for _, value in ipairs(items) do
  if #value <= max then out[#out + 1] = value end
end
if tonumber(ARGV[3]) > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
return out
"""

_WRITE = """
if redis.call('SET', KEYS[3], 1, 'NX', 'EX', ARGV[4]) == false then return 0 end
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'list' and kind ~= 'none' then redis.call('DEL', KEYS[1]) end
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], 1, 'EX', ARGV[3])
return 1
"""


def _failed(op: str, exc: BaseException) -> SessionStoreError:
    """The error to raise: the operation and the error class, never the command (it holds the
    session id and the query text)."""
    if isinstance(exc, RedisConnectionError) and "No connection available" in str(exc):
        return SessionStoreBusy(f"Redis {op}: no pooled connection came free in time")
    if isinstance(exc, RedisTimeoutError):  # an answer slower than socket_timeout: load, maybe a hang
        return SessionStoreBusy(f"Redis {op}: no answer within the socket timeout")
    return SessionStoreError(f"Redis {op} failed ({type(exc).__name__})")


class RedisSessionStore:
    def __init__(
        self,
        url: str,
        *,
        prefix: str = "autocomplete:",
        ttl_seconds: int = 1800,
        history_length: int = 10,
        socket_timeout: float = 0.5,
        connect_timeout: float = 0.05,
        max_connections: int = 64,
        pool_timeout: float = 0.5,
        retries: int = 1,
        max_item_bytes: int = 800,
        ids: SessionIds | None = None,
        touch_interval: float | None = None,
        max_touched: int = 100_000,
        done_ttl_seconds: int = 600,
    ) -> None:
        if ttl_seconds <= 0 or history_length <= 0:
            raise ValueError(
                f"RedisSessionStore needs positive ttl_seconds and history_length, got {ttl_seconds}, "
                f"{history_length}"
            )
        self.ids = ids if ids is not None else SessionIds()
        self.prefix = prefix
        self.ttl_seconds = int(ttl_seconds)
        self.history_length = history_length
        self.max_item_bytes = max_item_bytes
        self.done_ttl_seconds = done_ttl_seconds
        self.touch_interval = ttl_seconds / 30 if touch_interval is None else touch_interval
        self.max_touched = max_touched
        self._touched: dict[str, float] = {}  # session id -> when this process last refreshed its TTL
        self._pool = BlockingConnectionPool.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            max_connections=max_connections,
            timeout=pool_timeout,
            retry=Retry(NoBackoff(), retries),
            decode_responses=True,
        )
        self._redis = Redis(connection_pool=self._pool)
        self._read = self._redis.register_script(_READ)
        self._write = self._redis.register_script(_WRITE)

    def _keys(self, session_id: str) -> tuple[str, str]:
        return f"{self.prefix}s:{session_id}", f"{self.prefix}h:{session_id}"

    async def resume(self, session_id: str | None) -> str:
        try:
            if session_id is not None and self.ids.verify(session_id):
                alive, trail = self._keys(session_id)
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.expire(alive, self.ttl_seconds)
                    pipe.expire(trail, self.ttl_seconds)
                    known, _ = await pipe.execute()
                if known:
                    self._touch(session_id)
                    return session_id
            fresh = self.ids.issue()
            await self._redis.set(self._keys(fresh)[0], 1, ex=self.ttl_seconds)
            self._touch(fresh)
            return fresh
        except (RedisError, OSError) as exc:
            raise _failed("resume", exc) from exc

    async def previous(self, session_id: str, n: int) -> list[str]:
        if n <= 0 or not self.ids.verify(session_id):
            return []
        alive, trail = self._keys(session_id)
        touch = time.monotonic() - self._touched.get(session_id, -self.touch_interval) >= self.touch_interval
        try:
            recent = await self._read(
                keys=[trail, alive], args=[n, self.max_item_bytes, self.ttl_seconds if touch else 0]
            )
        except (RedisError, OSError) as exc:
            raise _failed("read", exc) from exc
        if touch:
            self._touch(session_id)
        return [str(query) for query in reversed(recent)]  # decode_responses: already str

    async def record(self, session_id: str, query: str, key: str | None = None) -> None:
        if not self.ids.verify(session_id):
            raise ValueError("record() needs a session id this server issued")
        alive, trail = self._keys(session_id)
        done = f"{self.prefix}d:{session_id}:{key or self.ids.issue()}"  # a key is the session's own
        try:
            await self._write(
                keys=[trail, alive, done],
                args=[query, self.history_length, self.ttl_seconds, self.done_ttl_seconds],
            )
        except (RedisError, OSError) as exc:
            raise _failed("write", exc) from exc
        self._touch(session_id)

    def _touch(self, session_id: str) -> None:
        if len(self._touched) >= self.max_touched:
            self._touched.clear()  # bounded memory; forgotten sessions just refresh once more
        self._touched[session_id] = time.monotonic()

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            raise _failed("ping", exc) from exc

    async def close(self) -> None:
        await self._redis.aclose()
        await self._pool.aclose()
