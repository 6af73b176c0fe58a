"""Redis session store: one connection pool per process, shared by all connections, on one
Redis server or a Redis Cluster (:mod:`sessions.connect`: ``redis://`` or ``redis+cluster://``).

Keys, under ``prefix``: ``s:{<id>}`` marks a live session (so a session without queries yet can
be resumed), ``h:{<id>}`` is its trail as a capped list, most recent first, ``d:{<id>}:<key>``
remembers for a few minutes that the session's submit with idempotency key ``key`` was written (a
retried write is not appended twice). The braces are a Redis Cluster hash tag: only the session id
is hashed, so all keys of one session sit in one slot, on one master, and every script and
transaction below touches a single slot (a plain Redis ignores the braces). Keys of one user, for
a per-user history, would be tagged ``{u:<user>}`` the same way. Trail and mark expire
``ttl_seconds`` after the session's last use. A write is one Lua script, atomic: the trail is never
longer than ``history_length`` nor left without its expiry, and a refused write (out of memory)
leaves nothing behind.

A call waits up to ``pool_timeout`` seconds for a pooled connection (a burst queues instead of
failing with "Too many connections"); a wait that runs out raises
:class:`~sessions.base.SessionStoreBusy`, as does an answer slower than ``socket_timeout``: the
guard does not take either for an outage. Any other failure (a server or a cluster master that
does not answer, a cluster without a master for the session's slot) raises
:class:`~sessions.base.SessionStoreError`.

Reading the trail is the per-keystroke call, a Lua script that returns at most ``n`` items and
drops any longer than ``max_item_bytes`` (a value planted in the store costs Redis a copy and
this process nothing); it refreshes the expiry only when this process has not done so for
``touch_interval`` seconds (default ``ttl_seconds / 30``, a minute for 30 minutes).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError, NoScriptError, RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from sessions.base import SessionStoreBusy, SessionStoreError
from sessions.connect import RedisClient
from sessions.ids import SessionIds

_FAILURES = (RedisError, RedisClusterException, OSError)

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


class SessionKeys(NamedTuple):
    alive: str
    trail: str


def session_keys(prefix: str, session_id: str) -> SessionKeys:
    """The keys of one session, all in the hash slot of ``{session_id}``."""
    return SessionKeys(f"{prefix}s:{{{session_id}}}", f"{prefix}h:{{{session_id}}}")


class _Script:
    """A Lua script run by its SHA1, and sent whole (``EVAL``, which caches it on that server) to
    a server that does not know it yet. On a cluster each master learns it when first used:
    unlike redis-py's ``Script``, which loads it on every master at once, a session on one master
    never waits for another (down, or restarted with an empty script cache)."""

    def __init__(self, redis: Redis | RedisCluster, source: str) -> None:
        self.redis = redis
        self.source = source
        self.sha = hashlib.sha1(source.encode("utf-8")).hexdigest()

    async def __call__(self, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return await self.redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self.redis.eval(self.source, len(keys), *keys, *args)


def _failed(op: str, exc: BaseException) -> SessionStoreError:
    """The error to raise: the operation and the error class, never the command (it holds the
    session id and the query text)."""
    if isinstance(exc, MaxConnectionsError) or (
        isinstance(exc, RedisConnectionError) and "No connection available" in str(exc)
    ):
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
        if "{" in prefix or "}" in prefix:
            raise ValueError(
                f"RedisSessionStore prefix {prefix!r} must not contain braces: on a Redis Cluster they "
                "would make the prefix, not the session id, the hash tag (all sessions on one master)"
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

    @property
    def cluster(self) -> bool:
        """Whether the sessions live on a Redis Cluster."""
        return self._client.cluster

    def _keys(self, session_id: str) -> SessionKeys:
        return session_keys(self.prefix, session_id)

    async def resume(self, session_id: str | None) -> str:
        try:
            async with self._client.connection():
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
                await self._redis.set(self._keys(fresh).alive, 1, ex=self.ttl_seconds)
            self._touch(fresh)
            return fresh
        except _FAILURES as exc:
            raise _failed("resume", exc) from exc

    async def previous(self, session_id: str, n: int) -> list[str]:
        if n <= 0 or not self.ids.verify(session_id):
            return []
        alive, trail = self._keys(session_id)
        touch = time.monotonic() - self._touched.get(session_id, -self.touch_interval) >= self.touch_interval
        try:
            async with self._client.connection():
                recent = await self._read(
                    keys=[trail, alive], args=[n, self.max_item_bytes, self.ttl_seconds if touch else 0]
                )
        except _FAILURES as exc:
            raise _failed("read", exc) from exc
        if touch:
            self._touch(session_id)
        return [str(query) for query in reversed(recent)]  # decode_responses: already str

    async def record(self, session_id: str, query: str, key: str | None = None) -> None:
        if not self.ids.verify(session_id):
            raise ValueError("record() needs a session id this server issued")
        alive, trail = self._keys(session_id)
        done = f"{self.prefix}d:{{{session_id}}}:{key or self.ids.issue()}"  # a key is the session's own
        try:
            async with self._client.connection():
                await self._write(
                    keys=[trail, alive, done],
                    args=[query, self.history_length, self.ttl_seconds, self.done_ttl_seconds],
                )
        except _FAILURES as exc:
            raise _failed("write", exc) from exc
        self._touch(session_id)

    def _touch(self, session_id: str) -> None:
        if len(self._touched) >= self.max_touched:
            self._touched.clear()  # bounded memory; forgotten sessions just refresh once more
        self._touched[session_id] = time.monotonic()

    async def ping(self) -> None:
        """On a cluster, every master must answer (each holds the sessions of its slots)."""
        try:
            async with self._client.connection():
                if self.cluster:
                    await self._redis.ping(target_nodes=RedisCluster.PRIMARIES)
                else:
                    await self._redis.ping()
        except _FAILURES as exc:
            raise _failed("ping", exc) from exc

    async def close(self) -> None:
        await self._client.aclose()
