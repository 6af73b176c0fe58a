"""Sessions on a real three-master Redis Cluster (started by the ``redis_cluster`` fixture): one
slot per session, the store's guarantees, a master killed and restarted under the store and under
a running server."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis
from cluster_support import LocalCluster
from websockets.sync.client import connect

from autocomplete.completer import load_completer
from sessions.base import SessionStoreBusy, SessionStoreError
from sessions.guard import GuardedSessionStore
from sessions.ids import SessionIds
from sessions.redis import RedisSessionStore, session_keys

pytestmark = pytest.mark.slow  # real redis-server processes
# a dead master refuses connections at once; the rest are generous for a loaded machine
STORE = {"socket_timeout": 2.0, "connect_timeout": 2.0, "history_length": 3}


@pytest.fixture
def cluster(redis_cluster: LocalCluster) -> LocalCluster:
    redis_cluster.heal()  # every test starts on a whole, healthy cluster
    return redis_cluster


@pytest.fixture
async def store(cluster: LocalCluster) -> AsyncIterator[RedisSessionStore]:
    opened = RedisSessionStore(cluster.url, prefix=f"test-{uuid.uuid4().hex[:8]}:", ttl_seconds=90, **STORE)
    yield opened
    await opened.close()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


async def sessions_on_every_master(store: RedisSessionStore, cluster: LocalCluster) -> dict[int, str]:
    """One fresh session per master, each with one query: port -> session id."""
    found: dict[int, str] = {}
    for _ in range(200):
        session = await store.resume(None)
        port = cluster.port_of(session_keys(store.prefix, session).trail)
        if port not in found:
            await store.record(session, f"query on {port}")
            found[port] = session
        if len(found) == len(cluster.ports):
            return found
    raise AssertionError(f"200 sessions landed on {sorted(found)} only: the keys do not spread")


async def test_a_sessions_keys_share_one_slot_and_sessions_spread_over_the_masters(
    store: RedisSessionStore, cluster: LocalCluster
) -> None:
    by_port = await sessions_on_every_master(store, cluster)
    client = redis.RedisCluster(host="127.0.0.1", port=cluster.ports[0], decode_responses=True)
    try:
        for port, session in by_port.items():
            await store.record(session, "garden hose", "retry-key")
            keys = [key for key in client.scan_iter(match=f"{store.prefix}*") if session in key]
            assert len(keys) == 4  # the mark, the trail, two submits' idempotency marks
            assert {client.keyslot(key) for key in keys} == {client.keyslot(keys[0])}
            assert {cluster.port_of(key) for key in keys} == {port}
            assert await store.previous(session, 5) == [f"query on {port}", "garden hose"]
    finally:
        client.close()


async def test_a_write_with_the_same_key_counts_once_on_a_cluster(store: RedisSessionStore) -> None:
    session = await store.resume(None)
    await store.record(session, "garden hose", "key-1")
    await store.record(session, "garden hose", "key-1")  # a retry whose first answer was lost
    await store.record(session, "house plants", "key-2")
    assert await store.previous(session, 5) == ["garden hose", "house plants"]
    assert await store.resume(session) == session


async def test_session_keys_carry_the_ttl_on_a_cluster(
    store: RedisSessionStore, cluster: LocalCluster
) -> None:
    session = await store.resume(None)
    await store.record(session, "q", "key-1")
    alive, trail = session_keys(store.prefix, session)
    with cluster.client(cluster.port_of(trail)) as node:
        assert all(0 < node.ttl(key) <= 90 for key in (alive, trail))
        done = node.keys(f"{store.prefix}d:*")
        assert len(done) == 1 and 0 < node.ttl(done[0]) <= store.done_ttl_seconds


async def test_a_forged_id_reads_nothing_and_is_not_adopted(
    store: RedisSessionStore, cluster: LocalCluster
) -> None:
    session = await store.resume(None)
    await store.record(session, "garden hose")
    forger = RedisSessionStore(cluster.url, prefix=store.prefix, ids=SessionIds(), **STORE)  # another secret
    try:
        assert await forger.previous(session, 5) == []
        assert await forger.resume(session) != session
        made_up = SessionIds().issue()
        assert await store.previous(made_up, 5) == [] and await store.resume(made_up) != made_up
        with pytest.raises(ValueError, match="issued"):
            await store.record(made_up, "planted")
    finally:
        await forger.close()
    assert await store.previous(session, 5) == ["garden hose"]


async def test_a_master_killed_and_restarted_under_the_store(
    store: RedisSessionStore, cluster: LocalCluster
) -> None:
    by_port = await sessions_on_every_master(store, cluster)
    victim_port = cluster.ports[0]
    victim = by_port[victim_port]
    guard = GuardedSessionStore(store, timeout=2, write_timeout=2, retry_after=0.2)
    cluster.kill(victim_port)
    try:
        for call in (store.previous(victim, 1), store.record(victim, "lost?", "k"), store.ping()):
            with pytest.raises(SessionStoreError) as raised:
                await call
            assert victim not in str(raised.value) and "lost" not in str(raised.value)
        for port, session in by_port.items():  # the other masters keep their sessions
            if port != victim_port:
                assert await store.previous(session, 1) == [f"query on {port}"]
        # another master restarted meanwhile forgot the scripts: they reach it again without
        # the dead master (redis-py's Script would load them on every master at once)
        other = next(port for port in by_port if port != victim_port)
        cluster.kill(other)
        cluster.start(other)
        wait_until_async = asyncio.get_running_loop().time() + 20
        while True:
            try:
                await store.record(by_port[other], "after a restart")
                break
            except SessionStoreError:
                assert asyncio.get_running_loop().time() < wait_until_async, "the restarted master"
                await asyncio.sleep(0.05)
        assert await store.previous(by_port[other], 5) == ["after a restart"]  # no persistence here
        assert await guard.previous(victim, 1) == []  # the keystroke is answered, without context
        submit = await guard.record(victim, "house plants")
        assert submit.stored == "pending" and submit.done is not None
        assert not guard.healthy
    finally:
        cluster.start(victim_port)  # with its nodes.conf: same node id, same slots
    cluster.wait_ok()
    assert await asyncio.wait_for(submit.done, 20) is True  # the outbox wrote it once the master was back
    # no persistence on this cluster: the master came back empty but for the retried submit
    assert await guard.previous(victim, 5) == ["house plants"] and guard.healthy
    await store.record(victim, "roses")
    assert await store.previous(victim, 5) == ["house plants", "roses"]
    await store.ping()
    await guard.outbox.close()


async def test_a_burst_queues_for_a_connection_and_a_wait_that_runs_out_is_busy(
    cluster: LocalCluster,
) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    store = RedisSessionStore(cluster.url, prefix=prefix, max_connections=2, pool_timeout=5, **STORE)
    narrow = RedisSessionStore(
        cluster.url, prefix=prefix, ids=store.ids, max_connections=1, pool_timeout=0.1, **STORE
    )
    try:
        by_port = await sessions_on_every_master(store, cluster)
        burst = [store.previous(session, 1) for session in by_port.values() for _ in range(20)]
        assert len({tuple(found) for found in await asyncio.gather(*burst)}) == 3  # none refused
        first, second = list(by_port.values())[:2]
        assert await narrow.previous(second, 1) != []
        with cluster.client(cluster.port_of(session_keys(prefix, first).trail)) as node:
            node.client_pause(1000)  # the master of the first session stalls for a second
        slow = asyncio.create_task(narrow.previous(first, 1))  # holds narrow's only connection
        await asyncio.sleep(0.05)
        with pytest.raises(SessionStoreBusy, match="no pooled connection"):
            await narrow.previous(second, 1)  # another master, but no connection came free in time
        assert await slow != []  # the stalled call is answered once the pause ends
    finally:
        await store.close()
        await narrow.close()


# ---------------------------------------------------------------- the real server


def get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def ask(ws, frame: dict) -> dict:
    ws.send(json.dumps(frame))
    return json.loads(ws.recv(timeout=10))


def texts(answer: dict) -> list[str]:
    assert answer["type"] == "completions", answer
    return [item["text"] for item in answer["items"]]


def context_pair(model) -> tuple[str, str]:
    """A (previous query, prefix) whose answers the context changes, both from the model itself."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    for first in letters:
        for previous in (c.text for c in model.complete(first, (), 5)):
            for prefix in letters:
                if model.complete(prefix, [previous], 10) != model.complete(prefix, (), 10):
                    return previous, prefix
    raise AssertionError("the model ignores context")


def test_the_server_on_a_cluster_keeps_context_across_connections_and_a_master_restart(
    live_server, demo_model: Path, cluster: LocalCluster
) -> None:
    model = load_completer(demo_model, warm_up=False)
    previous, prefix = context_pair(model)
    with_context = [c.text for c in model.complete(prefix, [previous], 10)]
    without = [c.text for c in model.complete(prefix, (), 10)]
    env = {
        "AUTOCOMPLETE_REDIS_PREFIX": f"test-{uuid.uuid4().hex[:8]}:",
        "AUTOCOMPLETE_STORE_TIMEOUT_SECONDS": "2",  # a loaded machine must not drop context now and then
        "AUTOCOMPLETE_REDIS_SOCKET_TIMEOUT": "2",
        "AUTOCOMPLETE_REDIS_CONNECT_TIMEOUT": "2",
        "AUTOCOMPLETE_STORE_RETRY_SECONDS": "0.2",
        "AUTOCOMPLETE_CONTEXT_REFRESH_SECONDS": "0",  # every input asks the store
        "AUTOCOMPLETE_LOG_LEVEL": "warning",
        # answers are compared before and after submits: only the session context may change them
        "AUTOCOMPLETE_LIVE": "false",
        "AUTOCOMPLETE_HISTORY_ENABLED": "false",
    }
    server = live_server(demo_model, redis_url=cluster.url, env=env)
    ready = lambda: get_json(f"{server.url}/readyz")[1]["session_store"]  # noqa: E731
    assert ready() == "ok"
    with connect(server.ws_url) as ws:
        session = json.loads(ws.recv(timeout=10))["session"]
        assert texts(ask(ws, {"type": "input", "seq": 1, "text": prefix})) == without
        assert ask(ws, {"type": "submit", "text": previous})["stored"] is True
    with connect(f"{server.ws_url}?session={session}") as ws:  # the next connection: that submit is context
        assert json.loads(ws.recv(timeout=10))["session"] == session
        assert texts(ask(ws, {"type": "input", "seq": 1, "text": prefix})) == with_context
        master = cluster.port_of(session_keys(env["AUTOCOMPLETE_REDIS_PREFIX"], session).trail)
        cluster.kill(master)
        try:
            for seq in range(2, 12):  # mid-stream: every keystroke answered, with the context it knows
                assert texts(ask(ws, {"type": "input", "seq": seq, "text": prefix})) == with_context
            wait_until(lambda: ready() == "degraded", 10, "the server to notice")  # the reads fail behind
            with connect(f"{server.ws_url}?session={session}") as other:  # a new tab: no context to read
                assert json.loads(other.recv(timeout=10))["session"] == session  # kept: it verifies
                assert texts(ask(other, {"type": "input", "seq": 1, "text": prefix})) == without
            assert ask(ws, {"type": "submit", "text": previous})["stored"] == "pending"
        finally:
            cluster.start(master)
        assert json.loads(ws.recv(timeout=30)) == {"type": "stored", "text": previous, "stored": True}
    wait_until(lambda: ready() == "ok", 20, "the store to be ok again")
    with connect(f"{server.ws_url}?session={session}") as ws:
        assert json.loads(ws.recv(timeout=10))["session"] == session  # written again by the retried submit
        assert texts(ask(ws, {"type": "input", "seq": 1, "text": prefix})) == with_context
    assert server.process.poll() is None
    log = server.output()
    assert session not in log and previous not in log


async def test_a_users_history_lives_in_one_slot_and_is_forgotten_on_a_cluster(cluster: LocalCluster) -> None:
    from sessions.redis_history import RedisHistoryStore

    history = RedisHistoryStore(
        cluster.url,
        prefix=f"test-{uuid.uuid4().hex[:8]}:",
        max_queries=3,
        **{k: v for k, v in STORE.items() if k != "history_length"},
    )
    try:
        for query in ("red shoes", "red shoes", "blue hat", "tax forms", "maps"):
            await history.record("user-key", query)
        counts, times = history.keys("user-key")
        assert cluster.port_of(counts) == cluster.port_of(times)
        entries = await history.read("user-key", 10)
        assert [e.query for e in entries] == ["maps", "tax forms", "blue hat"]  # bounded, most recent first
        await history.forget("user-key", "tax forms")
        assert [e.query for e in await history.read("user-key", 10)] == ["maps", "blue hat"]
        await history.forget("user-key")
        assert await history.read("user-key", 10) == []
    finally:
        await history.close()
