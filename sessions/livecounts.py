"""Live counts of the submitted queries: time-decayed popularity and distinct sessions, shared by workers.

Every stored submit adds 1 to two exponentially decayed counts of its query (a short and a long
half-life) and its session to the query's recent sessions. A decayed count is kept as the log2 of
its value decayed to the epoch (``log2(sum_i 2 ** (t_i / half_life))``): adding a submit at time
``t`` is a log-sum-exp with ``t / half_life``, its value at time ``now`` is ``2 ** (L - now /
half_life)``, and no periodic job ever rewrites it. The order of two queries by ``L`` does not
change with time, so the weakest (lowest long-half-life ``L``) is evicted when more than
``max_queries`` are tracked: memory is bounded in both stores.

Readers (every worker's :class:`autocomplete.live.LiveView`) poll :meth:`changes` with the sequence
number they have seen; each write bumps the sequence, so a poll returns only what changed (and
what was evicted) since. A reader that fell behind further than the store remembers gets the
whole state (``reset``).

:class:`MemoryLiveCounts` keeps it in the process (the default, one worker); :class:`RedisLiveCounts`
in Redis (one Lua script per submit, atomic), so every worker reads the same counts and they
survive a restart. Both keep the last ``log_size`` submits (anonymized session key, query, time)
for ``autocomplete export-stream``. Keys, under ``prefix``: ``live:s`` (hash query -> short ``L``),
``live:l`` (sorted set query -> long ``L``, the eviction order), ``live:u:<query>`` (sorted set
session key -> time, within ``window``), ``live:c`` / ``live:r`` (sorted sets query -> sequence of
its last change / its eviction), ``live:seq``, ``live:forgot`` and the stream ``live:log``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from sessions.base import SessionStoreError
from sessions.connect import RedisClient
from sessions.redis import _FAILURES, _Script


@dataclasses.dataclass(frozen=True, slots=True)
class LiveEntry:
    """A tracked query: log2 of its counts decayed to the epoch, and its distinct recent sessions."""

    query: str
    short: float
    long: float
    sessions: int


@dataclasses.dataclass(frozen=True, slots=True)
class LiveChanges:
    """What changed after sequence number ``since`` up to ``seq``; with ``reset``, ``entries`` is
    the whole state (drop everything else)."""

    seq: int
    entries: list[LiveEntry]
    removed: list[str]
    reset: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class LoggedSubmit:
    user: str  # the anonymized session key
    query: str
    time: float


class LiveCountsError(SessionStoreError):
    """The live counts store failed; the message names the operation and the error class only."""


def add_log2(old: float, x: float) -> float:
    """``log2(2 ** old + 2 ** x)`` without overflow (``old`` may be ``-inf``: nothing yet)."""
    if old == -math.inf:
        return x
    high, low = (old, x) if old >= x else (x, old)
    return high + math.log2(1.0 + 2.0 ** (low - high))


def session_key(session_id: str) -> str:
    """The anonymized key a session is counted (and exported) under: not the id, not reversible."""
    return hashlib.blake2b(session_id.encode(), digest_size=8, person=b"live-counts").hexdigest()


def check_live_settings(
    short: float, long: float, window: float, max_queries: int, sessions_cap: int
) -> None:
    if not 0 < short <= long:
        raise ValueError(f"live counts need 0 < short_half_life <= long_half_life, got {short}, {long}")
    if window <= 0 or max_queries <= 0 or sessions_cap <= 0:
        raise ValueError(
            f"live counts need a positive window, max_queries and sessions_cap, got {window}, "
            f"{max_queries}, {sessions_cap}"
        )


@dataclasses.dataclass(slots=True)
class _Tracked:
    short: float
    long: float
    sessions: dict[str, float]  # session key -> last submit, the newest ``sessions_cap`` within the window


class MemoryLiveCounts:
    """In-process live counts (one worker; gone with the process). Synchronous :meth:`add` and
    :meth:`changes_since` for in-process callers (the streaming evaluation, ranker training)."""

    def __init__(
        self,
        *,
        short_half_life: float = 86400.0,
        long_half_life: float = 604800.0,
        window: float = 604800.0,
        max_queries: int = 50_000,
        sessions_cap: int = 32,
        log_size: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        check_live_settings(short_half_life, long_half_life, window, max_queries, sessions_cap)
        self.short_half_life = short_half_life
        self.long_half_life = long_half_life
        self.window = window
        self.max_queries = max_queries
        self.sessions_cap = sessions_cap
        self._clock = clock
        self._tracked: dict[str, _Tracked] = {}
        self._changed: OrderedDict[str, int] = OrderedDict()  # query -> seq, oldest change first
        self._removed: OrderedDict[str, int] = OrderedDict()
        self._forgot = 0  # newest seq of an eviction no longer remembered
        self._seq = 0
        self.log: deque[LoggedSubmit] = deque(maxlen=log_size) if log_size > 0 else deque(maxlen=0)

    def __len__(self) -> int:
        return len(self._tracked)

    def add(self, query: str, key: str, when: float | None = None) -> None:
        """Count one submit of ``query`` by the session with anonymized ``key`` at ``when``."""
        now = self._clock() if when is None else when
        entry = self._tracked.get(query)
        if entry is None:
            entry = self._tracked[query] = _Tracked(-math.inf, -math.inf, {})
        entry.short = add_log2(entry.short, now / self.short_half_life)
        entry.long = add_log2(entry.long, now / self.long_half_life)
        sessions = entry.sessions
        sessions.pop(key, None)
        sessions[key] = now  # insertion order: oldest submit first
        while sessions and (
            len(sessions) > self.sessions_cap or next(iter(sessions.values())) < now - self.window
        ):
            del sessions[next(iter(sessions))]
        self._seq += 1
        self._changed[query] = self._seq
        self._changed.move_to_end(query)
        self._removed.pop(query, None)
        if self.log.maxlen:
            self.log.append(LoggedSubmit(key, query, now))
        if len(self._tracked) > self.max_queries + max(16, self.max_queries // 16):
            self._evict()

    def _evict(self) -> None:
        """Down to ``max_queries``: the lowest long-half-life counts go (batched: amortized O(1))."""
        order = sorted(self._tracked, key=lambda q: self._tracked[q].long)
        for query in order[: len(order) - self.max_queries]:
            del self._tracked[query]
            self._changed.pop(query, None)
            self._seq += 1
            self._removed[query] = self._seq
        while len(self._removed) > self.max_queries:
            _, self._forgot = self._removed.popitem(last=False)

    def _entry(self, query: str, now: float) -> LiveEntry:
        entry = self._tracked[query]
        recent = sum(1 for t in entry.sessions.values() if t >= now - self.window)
        return LiveEntry(query, entry.short, entry.long, recent)

    def changes_since(self, since: int, now: float | None = None) -> LiveChanges:
        now = self._clock() if now is None else now
        if since <= 0 or since < self._forgot:
            return LiveChanges(self._seq, [self._entry(q, now) for q in self._tracked], [], reset=True)
        entries: list[LiveEntry] = []
        for query, seq in reversed(self._changed.items()):
            if seq <= since:
                break
            entries.append(self._entry(query, now))
        removed: list[str] = []
        for query, seq in reversed(self._removed.items()):
            if seq <= since:
                break
            removed.append(query)
        return LiveChanges(self._seq, entries, removed)

    async def record(self, query: str, key: str, when: float | None = None) -> None:
        self.add(query, key, when)

    async def changes(self, since: int) -> LiveChanges:
        return self.changes_since(since)

    async def export(self) -> list[LoggedSubmit]:
        return list(self.log)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


_RECORD = """
local q, key, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local window, cap, max = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local prefix = ARGV[9]
local function addlog(old, x)
  if not old then return x end
  local high, low = math.max(old, x), math.min(old, x)
  return high + math.log(1 + math.pow(2, low - high)) / math.log(2)
end
local short = addlog(tonumber(redis.call('HGET', KEYS[1], q)), now / tonumber(ARGV[4]))
local long = addlog(tonumber(redis.call('ZSCORE', KEYS[2], q)), now / tonumber(ARGV[5]))
redis.call('HSET', KEYS[1], q, string.format('%.17g', short))
redis.call('ZADD', KEYS[2], long, q)
local ukey = prefix .. 'live:u:' .. q
redis.call('ZADD', ukey, now, key)
redis.call('ZREMRANGEBYSCORE', ukey, '-inf', '(' .. (now - window))
redis.call('ZREMRANGEBYRANK', ukey, 0, -cap - 1)
redis.call('EXPIRE', ukey, math.ceil(window))
local seq = redis.call('INCR', KEYS[4])
redis.call('ZADD', KEYS[3], seq, q)
redis.call('ZREM', KEYS[5], q)
local excess = redis.call('ZCARD', KEYS[2]) - max
if excess > 0 then
  local gone = redis.call('ZPOPMIN', KEYS[2], excess)
  for i = 1, #gone, 2 do
    redis.call('HDEL', KEYS[1], gone[i])
    redis.call('DEL', prefix .. 'live:u:' .. gone[i])
    redis.call('ZREM', KEYS[3], gone[i])
    seq = redis.call('INCR', KEYS[4])
    redis.call('ZADD', KEYS[5], seq, gone[i])
  end
  local over = redis.call('ZCARD', KEYS[5]) - max
  if over > 0 then
    local old = redis.call('ZRANGE', KEYS[5], over - 1, over - 1, 'WITHSCORES')
    redis.call('SET', KEYS[6], old[2])
    redis.call('ZREMRANGEBYRANK', KEYS[5], 0, over - 1)
  end
end
if tonumber(ARGV[10]) > 0 then
  redis.call('XADD', KEYS[7], 'MAXLEN', '~', ARGV[10], '*', 'u', key, 'q', q, 't', ARGV[3])
end
return seq
"""

_CHANGES = """
local since, limit, now, window, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4]), ARGV[5]
local current = tonumber(redis.call('GET', KEYS[4]) or '0')
local forgot = tonumber(redis.call('GET', KEYS[6]) or '0')
local out, reset, upto, queries = {}, 0, current, {}
if since <= 0 or since < forgot or since > current then  -- new, behind, or the keys were dropped
  reset = 1
  queries = redis.call('ZRANGE', KEYS[2], 0, -1)
else
  local changed = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. since, '+inf', 'WITHSCORES', 'LIMIT', 0, limit)
  for i = 1, #changed, 2 do queries[#queries + 1] = changed[i] end
  if #queries == limit then upto = tonumber(changed[#changed]) end
end
out[1] = tostring(upto)
out[2] = tostring(reset)
out[3] = tostring(#queries)
for _, q in ipairs(queries) do
  out[#out + 1] = q
  out[#out + 1] = redis.call('HGET', KEYS[1], q) or '-inf'
  out[#out + 1] = redis.call('ZSCORE', KEYS[2], q) or '-inf'
  out[#out + 1] = tostring(redis.call('ZCOUNT', prefix .. 'live:u:' .. q, now - window, '+inf'))
end
if reset == 0 then
  local removed = redis.call('ZRANGEBYSCORE', KEYS[5], '(' .. since, upto)
  for _, q in ipairs(removed) do out[#out + 1] = q end
end
return out
"""


class RedisLiveCounts:
    """Live counts in Redis, shared by every worker (and kept across restarts)."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "autocomplete:",
        short_half_life: float = 86400.0,
        long_half_life: float = 604800.0,
        window: float = 604800.0,
        max_queries: int = 50_000,
        sessions_cap: int = 32,
        log_size: int = 100_000,
        page: int = 5000,
        socket_timeout: float = 0.5,
        connect_timeout: float = 0.05,
        max_connections: int = 8,
        clock: Callable[[], float] = time.time,
    ) -> None:
        check_live_settings(short_half_life, long_half_life, window, max_queries, sessions_cap)
        self.prefix = prefix
        self.short_half_life = short_half_life
        self.long_half_life = long_half_life
        self.window = window
        self.max_queries = max_queries
        self.sessions_cap = sessions_cap
        self.log_size = log_size
        self.page = page
        self._clock = clock
        self._client = RedisClient(
            url,
            socket_timeout=socket_timeout,
            connect_timeout=connect_timeout,
            max_connections=max_connections,
            pool_timeout=socket_timeout,
            retries=1,
        )
        self._redis = self._client.redis
        self._record = _Script(self._redis, _RECORD)
        self._changes = _Script(self._redis, _CHANGES)
        p = prefix + "{live}:"  # one hash slot: the scripts touch every key (one node on a cluster)
        self._keys = [p + "s", p + "l", p + "c", p + "seq", p + "r", p + "forgot", p + "log"]

    async def record(self, query: str, key: str, when: float | None = None) -> None:
        now = self._clock() if when is None else when
        args: list[str | float] = [query, key, repr(float(now)), self.short_half_life, self.long_half_life]
        args += [self.window, self.sessions_cap, self.max_queries, self.prefix, self.log_size]
        try:
            await self._record(keys=self._keys, args=args)
        except _FAILURES as exc:
            raise LiveCountsError(f"Redis live count write failed ({type(exc).__name__})") from exc

    async def changes(self, since: int) -> LiveChanges:
        args: list[str | float] = [since, self.page, repr(float(self._clock())), self.window, self.prefix]
        try:
            raw = await self._changes(keys=self._keys[:6], args=args)
        except _FAILURES as exc:
            raise LiveCountsError(f"Redis live count read failed ({type(exc).__name__})") from exc
        seq, reset, n = int(raw[0]), raw[1] == "1", int(raw[2])
        entries = [
            LiveEntry(raw[i], float(raw[i + 1]), float(raw[i + 2]), int(raw[i + 3]))
            for i in range(3, 3 + 4 * n, 4)
        ]
        return LiveChanges(seq, entries, list(raw[3 + 4 * n :]), reset)

    async def export(self) -> list[LoggedSubmit]:
        """Every submit the stream still holds, oldest first."""
        out: list[LoggedSubmit] = []
        start = "-"
        try:
            while True:
                batch: list = await self._redis.xrange(self._keys[6], min=start, count=10_000) or []
                for _, fields in batch:  # decode_responses: str keys and values
                    out.append(LoggedSubmit(str(fields["u"]), str(fields["q"]), float(fields["t"])))
                if len(batch) < 10_000:
                    return out
                start = f"({batch[-1][0]}"
        except _FAILURES as exc:
            raise LiveCountsError(f"Redis live log read failed ({type(exc).__name__})") from exc

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except _FAILURES as exc:
            raise LiveCountsError(f"Redis live counts ping failed ({type(exc).__name__})") from exc

    async def close(self) -> None:
        await self._client.aclose()
