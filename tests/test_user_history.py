"""User histories in ``sessions/``: signed user keys and browser ids (``sessions.users``), the
memory and Redis history stores (``sessions.history``, ``sessions.redis_history``), their guard."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import shutil
import subprocess
import textwrap
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis

from sessions.base import SessionStoreError
from sessions.history import GuardedHistoryStore, MemoryHistoryStore
from sessions.ids import SessionIds
from sessions.redis_history import RedisHistoryStore
from sessions.users import UserKeys, sign_user

REDIS_URL = "redis://127.0.0.1:6379/0"
HOST_SECRET = "the host's shared secret, 16+"
SERVER_SECRET = "this service's own secret, 16+"


def redis_available() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[MemoryHistoryStore | RedisHistoryStore]:
    if request.param == "memory":
        yield MemoryHistoryStore(max_queries=5)
        return
    if not redis_available():
        pytest.skip("no Redis at 127.0.0.1:6379 (make test starts one)")
    prefix = f"test-{uuid.uuid4().hex}:"
    store = RedisHistoryStore(REDIS_URL, prefix=prefix, max_queries=5, ttl_seconds=3600)
    store.test_prefix = prefix  # type: ignore[attr-defined]
    yield store
    await store.close()
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)
    client.close()


def texts(entries) -> list[str]:
    return [entry.query for entry in entries]


# ---------------------------------------------------------------- who


def test_a_key_signed_as_the_docs_say_verifies_and_becomes_a_store_key_without_the_id() -> None:
    keys = UserKeys(HOST_SECRET, SERVER_SECRET)
    mac = hmac.new(HOST_SECRET.encode(), b"customer-4711", hashlib.sha256).hexdigest()
    assert sign_user("customer-4711", HOST_SECRET) == f"customer-4711.{mac}"
    store_key = keys.user(f"customer-4711.{mac}")
    assert store_key is not None and len(store_key) == 32 and "4711" not in store_key
    assert keys.user(f"customer-4711.{mac.upper()}") is None  # the documented form: lowercase hex
    # the same person on another worker (same secrets) has the same history; a user id and a
    # browser id never share one
    assert UserKeys(HOST_SECRET, SERVER_SECRET).user(f"customer-4711.{mac}") == store_key
    assert UserKeys(HOST_SECRET, "another service secret, 16+").user(f"customer-4711.{mac}") != store_key


@pytest.mark.parametrize(
    "key",
    [
        "customer-4711",  # unsigned
        "customer-4711." + "0" * 64,  # forged
        sign_user("customer-4711", "some other secret, 16+ chars"),  # another secret
        "customer-4712." + sign_user("customer-4711", HOST_SECRET).split(".")[-1],  # another's mac
        sign_user("customer-4711", HOST_SECRET) + "0",
        " " + sign_user("customer-4711", HOST_SECRET),
        "",
        None,
        42,
        "x" * 5000,
    ],
)
def test_a_key_that_does_not_verify_identifies_nobody(key: object) -> None:
    assert UserKeys(HOST_SECRET, SERVER_SECRET).user(key) is None


def test_without_a_host_secret_no_user_key_verifies_and_the_previous_secret_still_does() -> None:
    signed = sign_user("u1", HOST_SECRET)
    assert UserKeys(None, SERVER_SECRET).user(signed) is None
    rotated = UserKeys("the new host secret, 16+", SERVER_SECRET, host_grace=(HOST_SECRET,))
    assert rotated.user(signed) == UserKeys(HOST_SECRET, SERVER_SECRET).user(signed)
    with pytest.raises(ValueError, match="encode other ids"):
        sign_user("someone@example.com", HOST_SECRET)


def test_browser_ids_and_session_ids_never_pass_for_each_other() -> None:
    keys = UserKeys(None, SERVER_SECRET)
    browser = keys.issue_browser()
    assert keys.browser(browser) is not None
    session = SessionIds(SERVER_SECRET).issue()
    assert keys.browser(session) is None
    assert not SessionIds(SERVER_SECRET).verify(browser)
    assert keys.browser(UserKeys(None, "another service secret, 16+").issue_browser()) is None


# ---------------------------------------------------------------- the stores


async def test_counts_and_last_use_most_recent_first(store) -> None:
    for query in ("garden hose", "roses", "garden hose", "tulips"):
        await store.record("alice", query)
    found = await store.read("alice", 10)
    assert texts(found) == ["tulips", "garden hose", "roses"]
    assert [entry.count for entry in found] == [1, 2, 1]
    assert found[0].last_used >= found[1].last_used >= found[2].last_used > 0
    assert texts(await store.read("alice", 2)) == ["tulips", "garden hose"]


async def test_people_do_not_see_each_other(store) -> None:
    await store.record("alice", "only mine")
    assert await store.read("bob", 10) == []
    await store.forget("bob")
    assert texts(await store.read("alice", 10)) == ["only mine"]


async def test_a_forgotten_query_or_history_is_gone_and_does_not_come_back(store) -> None:
    for query in ("a1", "a2", "a3"):
        await store.record("alice", query, key=f"key-{query}")
    await store.forget("alice", "a2")
    assert texts(await store.read("alice", 10)) == ["a3", "a1"]
    await store.forget("alice")
    assert await store.read("alice", 10) == []
    await store.record("alice", "a1", key="key-a1")  # a retry of a write from before: counted once, already
    await store.record("alice", "a4")
    assert texts(await store.read("alice", 10)) == (
        ["a4"] if isinstance(store, RedisHistoryStore) else ["a4", "a1"]
    )


async def test_ten_thousand_submits_keep_the_history_bounded(store) -> None:
    for i in range(10_000):
        await store.record("alice", f"query {i % 997}")
    found = await store.read("alice", 1000)
    assert len(found) == 5  # max_queries
    assert texts(found) == [f"query {i % 997}" for i in range(9_999, 9_994, -1)]
    if isinstance(store, RedisHistoryStore):
        client = redis.Redis.from_url(REDIS_URL)
        counts, times = store.keys("alice")
        assert client.hlen(counts) == 5 and client.zcard(times) == 5  # both keys trimmed
        client.close()
    else:
        assert store.queries("alice") == 5


@pytest.mark.redis
async def test_redis_keys_share_a_hash_tag_expire_and_a_retried_write_counts_once(store) -> None:
    if not isinstance(store, RedisHistoryStore):
        pytest.skip("Redis only")
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    store_key = UserKeys(HOST_SECRET, SERVER_SECRET).user(sign_user("customer-4711", HOST_SECRET))
    assert store_key is not None
    await store.record(store_key, "roses", key="idempotent-1")
    await store.record(store_key, "roses", key="idempotent-1")
    assert [e.count for e in await store.read(store_key, 5)] == [1]
    keys = sorted(client.scan_iter(match=store.test_prefix + "*"))  # type: ignore[attr-defined]
    assert len(keys) == 3 and all(f"{{{store_key}}}" in key for key in keys)
    assert not any("4711" in key for key in keys)
    assert all(0 < client.ttl(key) <= 3600 for key in keys)
    counts, times = store.keys(store_key)
    client.expire(counts, 5)
    client.expire(times, 5)
    await store.record(store_key, "tulips")
    assert client.ttl(counts) > 3000 and client.ttl(times) > 3000  # a write starts the TTL over
    client.close()


@pytest.mark.redis
async def test_redis_planted_values_are_bounded_and_a_wrong_type_reads_as_empty(store) -> None:
    if not isinstance(store, RedisHistoryStore):
        pytest.skip("Redis only")
    client = redis.Redis.from_url(REDIS_URL)
    counts, times = store.keys("alice")
    client.zadd(times, {"x" * 100_000: 1e12, "fine": 1.0})
    client.hset(counts, "fine", "not a number")
    assert [(e.query, e.count) for e in await store.read("alice", 5)] == [("fine", 1)]
    client.delete(times)
    client.set(times, "a string")
    assert await store.read("alice", 5) == []
    await store.record("alice", "roses")  # the wrong type is replaced, not an error
    assert texts(await store.read("alice", 5)) == ["roses"]
    client.close()


async def test_memory_store_expires_a_history_after_its_ttl_and_drops_the_least_recent_user() -> None:
    clock = FakeClock()
    store = MemoryHistoryStore(max_queries=3, max_users=2, ttl_seconds=100, clock=clock)
    await store.record("alice", "roses")
    clock.now += 99
    assert texts(await store.read("alice", 3)) == ["roses"]  # a read does not extend it
    clock.now += 2
    assert await store.read("alice", 3) == []
    for user in ("bob", "carol", "dave"):
        await store.record(user, "q")
    assert len(store) == 2 and await store.read("bob", 3) == []


# ---------------------------------------------------------------- the guard


class BrokenHistory(MemoryHistoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.broken = True

    async def read(self, user: str, n: int):
        if self.broken:
            raise SessionStoreError("Redis history read failed (ConnectionError)")
        return await super().read(user, n)

    async def record(self, user: str, query: str, key: str | None = None) -> None:
        if self.broken:
            raise SessionStoreError("Redis history write failed (ConnectionError)")
        await super().record(user, query, key)

    async def forget(self, user: str, query: str | None = None) -> None:
        if self.broken:
            raise SessionStoreError("Redis history forget failed (ConnectionError)")
        await super().forget(user, query)


async def test_a_failing_store_means_no_history_and_its_waiting_submits_are_not_written_once_forgotten() -> (
    None
):
    backing = BrokenHistory()
    guard = GuardedHistoryStore(backing, timeout=0.05, retry_after=0.05)
    assert await guard.read("alice", 5) is None
    submit = await guard.record("alice", "secret plans")
    kept = await guard.record("bob", "bobs query")
    assert submit.stored == "pending" and kept.stored == "pending"
    assert await guard.forget("alice") is False  # the store could not be reached...
    assert submit.done is not None and await submit.done is False  # ...but the waiting submit is dropped
    backing.broken = False
    assert kept.done is not None and await asyncio.wait_for(kept.done, 5) is True
    assert await guard.read("alice", 5) == [] and texts(await guard.read("bob", 5)) == ["bobs query"]
    await guard.close()


def test_the_documented_ways_to_sign_a_user_key_make_keys_that_verify() -> None:
    """docs/protocol.md's Python and Node examples, run as written."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "protocol.md").read_text(encoding="utf-8")
    python = textwrap.dedent(re.search(r"```python\n(.*?)```", doc, re.S).group(1))  # type: ignore[union-attr]
    js = textwrap.dedent(re.search(r"```js\n(.*?)```", doc, re.S).group(1))  # type: ignore[union-attr]
    namespace: dict = {}
    exec(python, namespace)
    keys = UserKeys(HOST_SECRET, SERVER_SECRET)
    assert keys.user(namespace["user_key"]("customer-4711", HOST_SECRET)) is not None
    node = shutil.which("node")
    if node is None:
        pytest.skip("no node to run the Node example")
    script = js + f"\nprocess.stdout.write(userKey('customer-4711', {HOST_SECRET!r}));"
    made = subprocess.run([node, "-e", script], capture_output=True, text=True, check=True).stdout
    assert made == sign_user("customer-4711", HOST_SECRET) and keys.user(made) is not None
