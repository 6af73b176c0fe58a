"""Session stores: the memory store and Redis behave alike; the guard degrades, counts, recovers."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import pytest
import redis

from autocomplete.config import load_serve_config
from indexer.params import ConfigError
from sessions.base import SessionStoreError, is_session_id
from sessions.connect import cluster_nodes
from sessions.guard import GuardedSessionStore
from sessions.ids import SessionIds
from sessions.memory import MemorySessionStore
from sessions.redis import RedisSessionStore, session_keys

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


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis), "redis-cluster"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[MemorySessionStore | RedisSessionStore]:
    if request.param == "memory":
        yield MemorySessionStore(ttl_seconds=60, history_length=3)
        return
    if request.param == "redis-cluster":  # a throwaway cluster: its keys go with it
        cluster = request.getfixturevalue("redis_cluster")
        cluster.heal()
        on_cluster = RedisSessionStore(cluster.url, prefix="test:", ttl_seconds=60, history_length=3)
        assert on_cluster.cluster
        yield on_cluster
        await on_cluster.close()
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


def made_up_id() -> str:
    """An id of the right shape that this server did not issue (another key signed it)."""
    return SessionIds().issue()


def test_session_ids_are_url_safe_distinct_and_verify_only_under_their_key() -> None:
    ids = SessionIds("a secret of at least sixteen characters")
    issued = {ids.issue() for _ in range(1000)}
    assert len(issued) == 1000
    assert all(is_session_id(i) and len(i) == 43 and ids.verify(i) for i in issued)
    other = SessionIds("another secret of sixteen characters")
    assert not any(other.verify(i) for i in issued)
    one = next(iter(issued))
    flipped = one[:5] + ("A" if one[5] != "A" else "B") + one[6:]
    assert not ids.verify(flipped)


def test_a_rotated_secret_keeps_old_ids_valid_through_the_grace_key() -> None:
    old = SessionIds("the secret of last month, 16+ chars")
    issued = old.issue()
    last_month = "the secret of last month, 16+ chars"
    rotated = SessionIds("the secret of this month, 16+ chars", grace=(last_month,))
    assert rotated.verify(issued) and rotated.verify(rotated.issue())
    assert not SessionIds("the secret of this month, 16+ chars").verify(issued)  # grace over
    with pytest.raises(ValueError, match="16 characters"):
        SessionIds("short")


@pytest.mark.parametrize(
    "value", [None, "", "short", "x" * 43 + "y", "a" * 42 + "!", 12345, "../../etc/passwd"]
)
def test_malformed_ids_are_not_session_ids(value: object) -> None:
    assert not is_session_id(value)


async def test_unknown_or_malformed_ids_get_a_fresh_session(store) -> None:
    for requested in (None, made_up_id(), "not-an-id", "a" * 43):
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
        assert len(keys) == 3  # the session, its trail, the submit's idempotency mark
        trail = [key for key in keys if not key.startswith(f"{prefix}d:".encode())]
        assert len(trail) == 2 and all(0 < client.ttl(key) <= 77 for key in trail)
        assert all(0 < client.ttl(key) for key in keys)
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
        keys = list(session_keys(prefix, session))
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


def test_cluster_urls_are_parsed_and_malformed_ones_refused_with_the_fix() -> None:
    nodes, options = cluster_nodes(
        "rediss+cluster://app:s3cret@10.0.0.1:6379,[::1]:7000?socket_keepalive=yes"
    )
    assert nodes == [("10.0.0.1", 6379), ("::1", 7000)]
    assert options["username"] == "app" and options["password"] == "s3cret" and options["ssl"] is True
    for bad in ("redis+cluster://app:s3cret@10.0.0.1", "redis+cluster://h:1/2", "redis+cluster://"):
        with pytest.raises(ValueError, match="HOST:PORT|database 0") as raised:
            cluster_nodes(bad)
        assert "s3cret" not in str(raised.value)
    with pytest.raises(ConfigError, match="serve.redis_url"):
        load_serve_config(None, environ={"AUTOCOMPLETE_REDIS_URL": "redis+cluster://10.0.0.1"})
    with pytest.raises(ConfigError, match="braces"):
        load_serve_config(None, environ={"AUTOCOMPLETE_REDIS_PREFIX": "ac{x}:"})


@pytest.mark.parametrize("url", ["redis://127.0.0.1:9/0", "redis+cluster://127.0.0.1:9,127.0.0.1:11"])
async def test_redis_store_that_cannot_connect_raises_store_error(url: str) -> None:
    store = RedisSessionStore(url, connect_timeout=0.05, retries=0)
    session = store.ids.issue()
    for call in (store.previous(session, 1), store.record(session, "garden hose"), store.resume(session)):
        with pytest.raises(SessionStoreError) as raised:
            await call
        assert session not in str(raised.value) and "garden" not in str(raised.value)
    await store.close()
    with pytest.raises(ValueError, match="braces"):
        RedisSessionStore(url, prefix="{shared}:")


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

    async def record(self, session_id: str, query: str, key: str | None = None) -> None:
        await self._check()
        await super().record(session_id, query, key)


@pytest.mark.parametrize("hang", [False, True])
async def test_guard_degrades_to_no_context_within_its_timeout(hang: bool) -> None:
    errors: list[str] = []
    inner = BrokenStore(hang=hang)
    guard = GuardedSessionStore(inner, timeout=0.05, retry_after=60, on_error=errors.append)
    session = inner.ids.issue()
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await guard.resume(session) == session  # an id this server issued is kept while down
    assert await guard.previous(session, 1) == []
    submit = await guard.record(session, "q")
    assert submit.stored == "pending" and submit.done is not None  # queued, not dropped
    assert loop.time() - start < 5  # bounded by the timeout, not by the hang (generous: shared machine)
    assert errors[:3] == ["resume", "previous", "record"]
    # an error opens the guard at once; timeouts alone do not (something succeeded a moment ago)
    assert inner.calls >= (3 if hang else 1) and guard.healthy is hang
    await guard.outbox.close()


async def test_a_made_up_id_is_never_adopted_even_while_the_store_is_down() -> None:
    inner = BrokenStore()
    guard = GuardedSessionStore(inner, timeout=0.05, retry_after=60)
    for requested in (made_up_id(), "malformed", "a" * 43):
        resumed = await guard.resume(requested)
        assert resumed != requested and guard.verify(resumed)
    assert inner.calls == 1  # the first failure opened the guard: the rest never asked the store


async def test_a_store_that_hangs_is_left_alone_once_nothing_succeeded_for_retry_after() -> None:
    clock = FakeClock()
    inner = BrokenStore(hang=True)
    guard = GuardedSessionStore(inner, timeout=0.02, retry_after=5, clock=clock)
    session = inner.ids.issue()
    for _ in range(3):
        assert await guard.previous(session, 1) == []
    assert inner.calls == 3 and guard.healthy  # slow, but it answered 0 s ago: load, not an outage
    clock.now += 6
    await guard.previous(session, 1)
    assert not guard.healthy  # three timeouts in a row and no success for 6 s: hung
    await guard.previous(session, 1)
    assert inner.calls == 4


async def test_a_pending_submit_is_written_once_the_store_is_back() -> None:
    inner = BrokenStore()
    outbox: list[int] = []
    guard = GuardedSessionStore(inner, timeout=0.05, retry_after=0.05, on_outbox=outbox.append)
    session = await MemorySessionStore.resume(inner, None)
    submit = await guard.record(session, "house plants")
    assert submit.stored == "pending" and len(guard.outbox) == 1
    inner.broken = False
    assert submit.done is not None
    assert await asyncio.wait_for(submit.done, 5) is True
    assert await guard.previous(session, 5) == ["house plants"]
    assert (await guard.record(session, "roses")).stored is True
    assert outbox[-1] == 0
    await guard.close()


async def test_a_full_outbox_refuses_the_submit() -> None:
    guard = GuardedSessionStore(BrokenStore(), timeout=0.05, retry_after=60, outbox_size=2)
    session = guard.ids.issue()
    stored = [(await guard.record(session, f"q{i}")).stored for i in range(3)]
    assert stored == ["pending", "pending", False]
    await guard.outbox.close()


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
        assert (await guard.record(session, "back")).stored is True
        assert await guard.previous(session, 1) == ["back"]
    assert guard.healthy
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # logged once per interval, not per failure
    assert any("back" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)
    assert session not in caplog.text


@pytest.mark.redis
async def test_redis_write_with_the_same_key_is_appended_once_and_planted_values_are_bounded() -> None:
    if not redis_available():
        pytest.skip("no Redis at 127.0.0.1:6379")
    prefix = f"test-{uuid.uuid4().hex}:"
    store = RedisSessionStore(REDIS_URL, prefix=prefix, history_length=5, max_item_bytes=800)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        session = await store.resume(None)
        await store.record(session, "garden hose", "key-1")
        await store.record(session, "garden hose", "key-1")  # a retry whose first answer was lost
        assert await store.previous(session, 5) == ["garden hose"]
        trail = session_keys(prefix, session).trail
        client.lpush(trail, "x" * 1_000_000)  # planted by someone with Redis access
        assert await store.previous(session, 5) == ["garden hose"]  # dropped in Redis, not copied here
        client.set(trail, "not a list")
        assert await store.previous(session, 5) == []  # a wrong type is no trail, not an outage
        await store.record(session, "roses", "key-2")  # ...and the next submit repairs it
        assert await store.previous(session, 5) == ["roses"]
    finally:
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
        client.close()
        await store.close()
