"""Redis user histories: one hash of counts and one sorted set of last-use times per user.

Keys, under ``prefix``, for the store key ``K`` of a user (:mod:`sessions.users`; never a raw id):
``u:{K}:n`` (hash: query -> times submitted), ``u:{K}:t`` (sorted set: query scored by its last
use, epoch seconds) and ``u:{K}:d:<idempotency key>`` (a retried write counts once). The ``{K}``
hash tag puts a user's keys in one slot, so the scripts also run on Redis Cluster. A write is one
Lua script, atomic: the count goes up, the time is set, the set is trimmed to ``max_queries`` (the
least recently used go, from both keys) and both keys expire ``ttl_seconds`` after this write.
A read is one script that returns at most ``n`` entries, drops any longer than
``max_item_bytes`` (a planted value costs Redis a copy and this process nothing) and reads a key
of the wrong type as empty.

The connection follows :mod:`sessions.redis` (:class:`sessions.connect.RedisClient`: a blocking
pool, or Redis Cluster for a ``redis+cluster://`` URL, with the same settings); a pool wait or an
answer that runs out raises :class:`~sessions.base.SessionStoreBusy`, any other failure
:class:`~sessions.base.SessionStoreError` naming the operation and the error class, never a key
or a query.
"""

from __future__ import annotations

import time

from sessions.connect import RedisClient
from sessions.history import Entry
from sessions.redis import _FAILURES, _failed, _Script

_READ = """
local items = redis.pcall('ZREVRANGE', KEYS[2], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
if type(items) ~= 'table' or items['err'] then return {} end
local max, out = tonumber(ARGV[2]), {}
for i = 1, #items, 2 do
  local query = items[i]
  if #query <= max then
    local count = redis.pcall('HGET', KEYS[1], query)
    if type(count) ~= 'string' then count = '1' end
    out[#out + 1] = query
    out[#out + 1] = items[i + 1]
    out[#out + 1] = count
  end
end
return out
"""

_WRITE = """
if redis.call('SET', KEYS[3], 1, 'NX', 'EX', ARGV[5]) == false then return 0 end
if redis.call('TYPE', KEYS[1])['ok'] ~= 'hash' then redis.call('DEL', KEYS[1]) end
if redis.call('TYPE', KEYS[2])['ok'] ~= 'zset' then redis.call('DEL', KEYS[2]) end
local counted = redis.pcall('HINCRBY', KEYS[1], ARGV[1], 1)
if type(counted) == 'table' and counted['err'] then redis.call('HSET', KEYS[1], ARGV[1], 1) end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
local extra = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if extra > 0 then
  local old = redis.call('ZRANGE', KEYS[2], 0, extra - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, extra - 1)
  for _, query in ipairs(old) do redis.call('HDEL', KEYS[1], query) end
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
"""

_FORGET = """
if ARGV[1] == '' then return redis.call('DEL', KEYS[1], KEYS[2]) end
redis.pcall('HDEL', KEYS[1], ARGV[1])
redis.pcall('ZREM', KEYS[2], ARGV[1])
return 1
"""


class RedisHistoryStore:
    def __init__(
        self,
        url: str,
        *,
        prefix: str = "autocomplete:",
        max_queries: int = 200,
        ttl_seconds: int = 90 * 86400,
        socket_timeout: float = 0.5,
        connect_timeout: float = 0.05,
        max_connections: int = 64,
        pool_timeout: float = 0.5,
        retries: int = 1,
        max_item_bytes: int = 800,
        done_ttl_seconds: int = 600,
    ) -> None:
        if max_queries <= 0 or ttl_seconds <= 0:
            raise ValueError(
                f"RedisHistoryStore needs positive max_queries and ttl_seconds, got {max_queries}, "
                f"{ttl_seconds}"
            )
        self.prefix = prefix
        self.max_queries = max_queries
        self.ttl_seconds = int(ttl_seconds)
        self.max_item_bytes = max_item_bytes
        self.done_ttl_seconds = done_ttl_seconds
        self._client = RedisClient(
            url,
            socket_timeout=socket_timeout,
            connect_timeout=connect_timeout,
            max_connections=max_connections,
            pool_timeout=pool_timeout,
            retries=retries,
        )
        self._redis = self._client.redis
        self._read = _Script(self._redis, _READ)
        self._write = _Script(self._redis, _WRITE)
        self._forget = _Script(self._redis, _FORGET)

    def keys(self, user: str) -> tuple[str, str]:
        """The counts hash and the last-use sorted set of ``user`` (a store key)."""
        return f"{self.prefix}u:{{{user}}}:n", f"{self.prefix}u:{{{user}}}:t"

    async def read(self, user: str, n: int) -> list[Entry]:
        if n <= 0:
            return []
        try:
            async with self._client.connection():
                flat = await self._read(keys=list(self.keys(user)), args=[n, self.max_item_bytes])
        except _FAILURES as exc:
            raise _failed("history read", exc) from exc
        out = []
        for i in range(0, len(flat) - 2, 3):
            try:
                count = max(1, int(flat[i + 2]))
            except ValueError:  # a planted count that is not a number: it was submitted at least once
                count = 1
            out.append(Entry(str(flat[i]), count, float(flat[i + 1])))  # a sorted set's scores are numbers
        return out

    async def record(self, user: str, query: str, key: str | None = None) -> None:
        counts, times = self.keys(user)
        done = f"{self.prefix}u:{{{user}}}:d:{key or time.time_ns()}"
        try:
            async with self._client.connection():
                await self._write(
                    keys=[counts, times, done],
                    args=[query, time.time(), self.max_queries, self.ttl_seconds, self.done_ttl_seconds],
                )
        except _FAILURES as exc:
            raise _failed("history write", exc) from exc

    async def forget(self, user: str, query: str | None = None) -> None:
        counts, times = self.keys(user)
        try:
            async with self._client.connection():
                await self._forget(keys=[counts, times], args=[query or ""])
        except _FAILURES as exc:
            raise _failed("history forget", exc) from exc

    async def ping(self) -> None:
        try:
            async with self._client.connection():
                await self._redis.ping()
        except _FAILURES as exc:
            raise _failed("history ping", exc) from exc

    async def close(self) -> None:
        await self._client.aclose()
