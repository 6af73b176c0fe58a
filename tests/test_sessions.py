"""Session stores: the memory store and Redis behave alike; the guard degrades, counts, recovers."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import pytest
import redis

from sessions.base import SessionStoreError, is_session_id, new_session_id
from sessions.guard import GuardedSessionStore
from sessions.memory import MemorySessionStore
from sessions.redis import RedisSessionStore

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_available() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[MemorySessionStore | RedisSessionStore]:
    if request.param == "memory":
        yield MemorySessionStore(ttl_seconds=60, history_length=3)
        return
    if not redis_available():
        pytest.skip("no Redis at 127.0.0.1:6379 (make test starts one)")
    prefix = f"test-{uuid.uuid4().hex}:"
    store = RedisSessionStore(REDIS_URL, prefix=prefix, ttl_seconds=60, history_length=3)
    yield store
    await store.close()
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)
    client.close()


def test_session_ids_are_128_bit_url_safe_and_distinct() -> None:
    ids = {new_session_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(is_session_id(i) and len(i) == 22 for i in ids)


@pytest.mark.parametrize(
    "value", [None, "", "short", "x" * 22 + "y", "a" * 21 + "!", 12345, "../../etc/passwd"]
)
def test_malformed_ids_are_not_session_ids(value: object) -> None:
    assert not is_session_id(value)


async def test_unknown_or_malformed_ids_get_a_fresh_session(store) -> None:
    for requested in (None, new_session_id(), "not-an-id", "a" * 22):
        fresh = await store.resume(requested)
        assert fresh != requested and is_session_id(fresh)
        assert await store.previous(fresh, 5) == []


async def test_a_known_session_is_resumed_with_its_trail(store) -> None:
    session = await store.resume(None)
    assert await store.resume(session) == session  # known even before any query
    await store.record(session, "garden hose")
    await store.record(session, "house plants")
    assert await store.resume(session) == session
    assert await store.previous(session, 1) == ["house plants"]
    assert await store.previous(session, 5) == ["garden hose", "house plants"]


async def test_trail_is_capped_most_recent_last(store) -> None:
    session = await store.resume(None)
    for i in range(6):
        await store.record(session, f"q{i}")
    assert await store.previous(session, 10) == ["q3", "q4", "q5"]
    assert await store.previous(session, 0) == []


async def test_sessions_do_not_see_each_other(store) -> None:
    a, b = await store.resume(None), await store.resume(None)
    await store.record(a, "only mine")
    assert await store.previous(b, 5) == []


async def test_memory_store_expires_sessions_after_ttl_from_last_use() -> None:
    clock = FakeClock()
    store = MemorySessionStore(ttl_seconds=10, history_length=3, clock=clock)
    session = await store.resume(None)
    await store.record(session, "q")
    clock.now += 8
    assert await store.previous(session, 1) == ["q"]  # use pushes expiry back
    clock.now += 8
    assert await store.resume(session) == session
    clock.now += 11
    assert await store.previous(session, 1) == []
    assert await store.resume(session) != session
    assert len(store) == 1  # only the fresh one


async def test_memory_store_evicts_least_recently_used_when_full() -> None:
    store = MemorySessionStore(ttl_seconds=100, history_length=2, max_sessions=3)
    first, second, third = [await store.resume(None) for _ in range(3)]
    await store.record(first, "keep me")  # first is now the most recently used
    fourth = await store.resume(None)
    assert len(store) == 3
    assert await store.resume(second) != second
    assert await store.previous(first, 1) == ["keep me"]
    assert third != fourth


@pytest.mark.redis
async def test_redis_keys_carry_the_ttl() -> None:
    if not redis_available():
        pytest.skip("no Redis at 127.0.0.1:6379")
    prefix = f"test-{uuid.uuid4().hex}:"
    store = RedisSessionStore(REDIS_URL, prefix=prefix, ttl_seconds=77, history_length=2)
    session = await store.resume(None)
    await store.record(session, "q")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=prefix + "*"))
        assert len(keys) == 2
        assert all(0 < client.ttl(key) <= 77 for key in keys)
    finally:
        for key in keys:
            client.delete(key)
        client.close()
        await store.close()


@pytest.mark.redis
@pytest.mark.parametrize(("touch_interval", "refreshed"), [(0.0, True), (3600.0, False)])
async def test_redis_reads_refresh_the_ttl_at_most_once_per_touch_interval(
    touch_interval: float, refreshed: bool
) -> None:
    if not redis_available():
        pytest.skip("no Redis at 127.0.0.1:6379")
    prefix = f"test-{uuid.uuid4().hex}:"
    store = RedisSessionStore(REDIS_URL, prefix=prefix, ttl_seconds=600, touch_interval=touch_interval)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        session = await store.resume(None)
        await store.record(session, "roses")
        keys = [f"{prefix}s:{session}", f"{prefix}h:{session}"]
        for key in keys:
            client.expire(key, 50)  # as if the last refresh was long ago
        assert await store.previous(session, 1) == ["roses"]
        ttls = [client.ttl(key) for key in keys]
        assert all(ttl > 500 for ttl in ttls) if refreshed else all(0 < ttl <= 50 for ttl in ttls)
    finally:
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
        client.close()
        await store.close()


async def test_redis_store_that_cannot_connect_raises_store_error() -> None:
    store = RedisSessionStore("redis://127.0.0.1:9/0", connect_timeout=0.05, retries=0)
    with pytest.raises(SessionStoreError):
        await store.previous(new_session_id(), 1)
    await store.close()


class BrokenStore(MemorySessionStore):
    """Fails (or hangs) while ``broken`` is set, then works again."""

    def __init__(self, hang: bool = False) -> None:
        super().__init__()
        self.broken = True
        self.hang = hang
        self.calls = 0

    async def _check(self) -> None:
        self.calls += 1
        if self.broken:
            if self.hang:
                await asyncio.sleep(10)
            raise SessionStoreError("down")

    async def resume(self, session_id: str | None) -> str:
        await self._check()
        return await super().resume(session_id)

    async def previous(self, session_id: str, n: int) -> list[str]:
        await self._check()
        return await super().previous(session_id, n)

    async def record(self, session_id: str, query: str) -> None:
        await self._check()
        await super().record(session_id, query)


@pytest.mark.parametrize("hang", [False, True])
async def test_guard_degrades_to_no_context_within_its_timeout(hang: bool) -> None:
    errors: list[str] = []
    inner = BrokenStore(hang=hang)
    guard = GuardedSessionStore(inner, timeout=0.05, retry_after=60, on_error=errors.append)
    session = new_session_id()
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await guard.resume(session) == session  # a well-formed id is kept while the store is down
    assert await guard.previous(session, 1) == []
    assert await guard.record(session, "q") is False
    assert loop.time() - start < 5  # bounded by the timeout, not by the hang (generous: shared machine)
    assert errors == ["resume", "previous", "record"]
    # left alone after the first failure, or after the second timeout in a row
    assert inner.calls == (2 if hang else 1)
    assert not guard.healthy
    assert is_session_id(await guard.resume("malformed"))


async def test_one_slow_call_costs_only_its_own_answer() -> None:
    inner = BrokenStore(hang=True)
    guard = GuardedSessionStore(inner, timeout=0.05, retry_after=60)
    session = await MemorySessionStore.resume(inner, None)
    await MemorySessionStore.record(inner, session, "roses")
    assert await guard.previous(session, 1) == []  # timed out
    inner.broken = False
    assert await guard.previous(session, 1) == ["roses"]  # asked again at once, not left alone
    assert guard.healthy and inner.calls == 2


async def test_guard_tries_again_after_retry_after_and_recovers(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    inner = BrokenStore()
    guard = GuardedSessionStore(inner, timeout=1, retry_after=5, log_interval=30, clock=clock)
    session = await MemorySessionStore.resume(inner, None)
    with caplog.at_level(logging.INFO, logger="sessions"):
        for _ in range(3):
            await guard.previous(session, 1)
        assert inner.calls == 1
        inner.broken = False
        clock.now += 2
        await guard.previous(session, 1)
        assert inner.calls == 1  # still within retry_after
        clock.now += 4
        assert await guard.record(session, "back") is True
        assert await guard.previous(session, 1) == ["back"]
    assert guard.healthy
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # logged once per interval, not per failure
    assert any("back" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)
    assert session not in caplog.text
