"""Live counts: decayed popularity and distinct sessions, in process memory and in Redis."""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator

import numpy as np
import pytest
import redis

from sessions.livecounts import LiveChanges, MemoryLiveCounts, RedisLiveCounts, add_log2, session_key

REDIS_URL = "redis://127.0.0.1:6379/0"
DAY, WEEK = 86400.0, 604800.0
T0 = 1.7e9  # a wall-clock time: the log form must stay exact this far from the epoch


def redis_available() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def drop(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)
    client.close()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[MemoryLiveCounts | RedisLiveCounts]:
    settings = dict(short_half_life=DAY, long_half_life=WEEK, window=WEEK, max_queries=20, sessions_cap=4)
    if request.param == "memory":
        yield MemoryLiveCounts(**settings, clock=lambda: T0)
        return
    if not redis_available():
        pytest.skip("no Redis at 127.0.0.1:6379 (make test starts one)")
    prefix = f"test-{uuid.uuid4().hex}:"
    store = RedisLiveCounts(REDIS_URL, prefix=prefix, **settings, clock=lambda: T0)
    yield store
    await store.close()
    drop(prefix)


def decayed(log2_value: float, half_life: float, now: float) -> float:
    return 2.0 ** (log2_value - now / half_life)


@pytest.mark.parametrize(("old", "x"), [(-math.inf, 3.0), (3.0, 3.0), (10.0, -5.0), (19676.5, 19676.25)])
def test_add_log2_is_the_log_of_the_sum(old, x):
    assert add_log2(old, x) == pytest.approx(float(np.logaddexp2(old, x)), rel=1e-15)


def test_session_keys_are_stable_and_do_not_show_the_session_id():
    key = session_key("a-session-id")
    assert key == session_key("a-session-id") != session_key("another-session-id")
    assert "session" not in key and len(key) == 16


async def test_counts_decay_with_their_half_lives_and_sessions_are_counted_once(store):
    await store.record("rose bush", session_key("a"), T0 - DAY)  # a day ago: weight 1/2 short
    await store.record("rose bush", session_key("a"), T0)
    await store.record("rose bush", session_key("b"), T0)
    changes = await store.changes(0)
    assert changes.reset
    (entry,) = changes.entries
    assert decayed(entry.short, DAY, T0) == pytest.approx(2.5, rel=1e-9)
    assert decayed(entry.long, WEEK, T0) == pytest.approx(2 + 2 ** (-1 / 7), rel=1e-9)
    assert decayed(entry.short, DAY, T0 + DAY) == pytest.approx(1.25, rel=1e-9)  # read later: decayed
    assert entry.sessions == 2


async def test_a_poll_returns_only_what_changed_since_the_last_one(store):
    await store.record("a", "s1", T0)
    await store.record("b", "s1", T0)
    first = await store.changes(0)
    assert sorted(e.query for e in first.entries) == ["a", "b"]
    await store.record("b", "s2", T0 + 1)
    second = await store.changes(first.seq)
    assert not second.reset and [e.query for e in second.entries] == ["b"]
    assert (await store.changes(second.seq)).entries == []


async def test_memory_is_bounded_and_the_weakest_queries_are_evicted(store):
    for n in range(60):  # 60 queries, max_queries = 20; "kept" submitted often and late
        await store.record(f"q{n}", "s", T0 + n)
        await store.record("kept", "s", T0 + n)
    state = await store.changes(0)
    tracked = {e.query for e in state.entries}
    assert len(tracked) <= 20 + 16  # memory: evicted in batches of at most max(16, max/16)
    assert "kept" in tracked and "q0" not in tracked and "q59" in tracked


async def test_a_reader_is_told_of_evictions_since_its_poll(store):
    await store.record("q0", "s", T0 - 30 * DAY)  # old and weak: the first to go
    seen = await store.changes(0)
    for n in range(1, 60):
        await store.record(f"q{n}", "s", T0 + n)
    later = await store.changes(seen.seq)
    assert "q0" in later.removed or later.reset


async def test_the_submit_log_keeps_key_query_and_time_for_export(store):
    await store.record("rose bush", session_key("a"), T0)
    (logged,) = await store.export()
    assert (logged.user, logged.query, logged.time) == (session_key("a"), "rose bush", T0)


@pytest.mark.redis
async def test_redis_counts_survive_a_new_client_as_after_a_worker_restart():
    if not redis_available():
        pytest.skip("no Redis at 127.0.0.1:6379 (make test starts one)")
    prefix = f"test-{uuid.uuid4().hex}:"
    try:
        first = RedisLiveCounts(REDIS_URL, prefix=prefix, clock=lambda: T0)
        await first.record("rose bush", "s1", T0)
        await first.record("rose bush", "s2", T0)
        await first.close()
        restarted = RedisLiveCounts(REDIS_URL, prefix=prefix, clock=lambda: T0)
        state: LiveChanges = await restarted.changes(0)
        await restarted.close()
        assert [(e.query, e.sessions) for e in state.entries] == [("rose bush", 2)]
    finally:
        drop(prefix)


def test_memory_store_keeps_its_sessions_within_the_window_and_capped():
    store = MemoryLiveCounts(window=100.0, sessions_cap=3, clock=lambda: T0)
    store.add("q", "old", T0 - 500)
    for key in ("a", "b", "c", "d"):
        store.add("q", key, T0)
    (entry,) = store.changes_since(0, T0).entries
    assert entry.sessions == 3


@pytest.mark.redis
async def test_a_reader_ahead_of_a_store_that_lost_its_keys_gets_the_whole_state_again():
    if not redis_available():
        pytest.skip("no Redis at 127.0.0.1:6379 (make test starts one)")
    prefix = f"test-{uuid.uuid4().hex}:"
    store = RedisLiveCounts(REDIS_URL, prefix=prefix, clock=lambda: T0)
    try:
        for n in range(5):
            await store.record(f"q{n}", "s", T0)
        seen = await store.changes(0)
        drop(prefix)  # Redis flushed or its keys dropped: the sequence starts again from 0
        await store.record("fresh", "s", T0)
        again = await store.changes(seen.seq)
        assert again.reset and [e.query for e in again.entries] == ["fresh"]
    finally:
        await store.close()
        drop(prefix)
