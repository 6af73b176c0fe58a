"""Attacks on a real ``autocomplete serve`` (uvicorn subprocess, real model, loopback only), each
bounded in count and time, each with the figure it is judged by printed (``pytest -s``)."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
from attack_support import (
    client_frame,
    connection_flood,
    endless_header,
    handshake,
    http_get,
    malformed_flood,
    many_connections_one_address,
    rss_mb,
    slow_headers,
    unread_pings,
)
from server_support import own_redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from autocomplete.evaluation.server_process import ServerProcess, free_port
from sessions.ids import SessionIds
from sessions.redis import session_keys
from sessions.users import sign_user

pytestmark = pytest.mark.slow
REDIS_URL = "redis://127.0.0.1:6379/0"
QUIET = {"AUTOCOMPLETE_LOG_LEVEL": "warning"}
needs_redis_server = pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server")


def config_file(tmp_path: Path, **serve: object) -> Path:
    lines = ["[serve]"] + [f"{key} = {json.dumps(value)}" for key, value in serve.items()]
    path = tmp_path / f"serve-{uuid.uuid4().hex[:6]}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def server(mpc_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server with the default limits (but short header timeouts), shared by the attacks that
    leave it as they found it."""
    config = config_file(tmp_path_factory.mktemp("attacks"), header_timeout_seconds=1.0)
    with ServerProcess(mpc_model, config=config, env=QUIET) as process:
        yield process


def alive(server: ServerProcess) -> bool:
    return server.process.poll() is None and http_get(server.port, "/healthz")[0] == 200


# ---------------------------------------------------------------- memory and connections


def test_an_endless_header_line_is_cut_at_max_header_bytes(server: ServerProcess) -> None:
    figures = endless_header(server.port, server.process.pid)
    print(f"\nendless header: {figures}")
    assert figures["sent_mb"] < 8, "the server kept reading an endless header"
    assert figures["answer"].startswith(b"HTTP/1.1 431")
    assert figures["rss_growth_mb"] < 64 and alive(server)


def test_slow_headers_are_dropped_after_the_header_timeout(server: ServerProcess) -> None:
    figures = slow_headers(server.port, connections=60, hold=3.0)  # header_timeout_seconds = 1
    print(f"\nslow headers: {figures}")
    assert figures["opened"] == 60 and figures["still_held"] == 0
    assert alive(server)


def test_a_connection_that_sends_nothing_is_dropped_after_the_header_timeout(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        start = time.monotonic()
        assert sock.recv(100).startswith(b"HTTP/1.1 408")
        assert time.monotonic() - start < 4


def test_unread_pings_are_not_queued_without_bound(server: ServerProcess) -> None:
    figures = unread_pings(server.port, server.process.pid)
    print(f"\nunread pings: {figures}")
    assert figures["sent_mb"] < 96, "the server kept answering pings nobody reads"
    assert figures["rss_growth_mb"] < 64 and alive(server)


def test_a_connection_flood_from_one_address_is_capped_and_others_still_get_in(
    mpc_model: Path, tmp_path: Path
) -> None:
    config = config_file(tmp_path, max_connections_per_ip=40)
    with ServerProcess(mpc_model, config=config, env=QUIET) as server:
        figures = connection_flood(server.port, connections=120)
        print(f"\nconnection flood: {figures}")
        assert figures["accepted"] == 40 and sum(figures["refused"].values()) == 80
        assert figures["bystander"]["n"] > 5 and figures["bystander_failures"] == 0
        metrics = http_get(server.port, "/metrics")[2].decode()
        assert 'autocomplete_connections_refused_total{reason="per_ip_tcp"} 80.0' in metrics


def test_websockets_over_max_connections_are_closed_1013_with_a_reason(
    mpc_model: Path, tmp_path: Path
) -> None:
    with ServerProcess(mpc_model, config=config_file(tmp_path, max_connections=3), env=QUIET) as server:
        stack = contextlib.ExitStack()
        held = [stack.enter_context(connect(server.ws_url)) for _ in range(3)]
        for ws in held:
            assert json.loads(ws.recv(timeout=10))["type"] == "hello"
        with connect(server.ws_url) as extra, pytest.raises(ConnectionClosed) as closed:
            extra.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        assert "too many connections" in closed.value.rcvd.reason
        assert http_get(server.port, "/healthz")[0] == 200  # HTTP still answered meanwhile
        stack.close()


def test_behind_a_trusted_proxy_the_forwarded_address_is_limited(mpc_model: Path, tmp_path: Path) -> None:
    config = config_file(tmp_path, trusted_proxies=["127.0.0.1"], max_connections_per_ip=2)
    with ServerProcess(mpc_model, config=config, env=QUIET) as server, contextlib.ExitStack() as stack:

        def via_proxy(client: str):
            return stack.enter_context(connect(server.ws_url, additional_headers={"X-Forwarded-For": client}))

        for _ in range(2):
            assert json.loads(via_proxy("198.51.100.1").recv(timeout=10))["type"] == "hello"
        with pytest.raises(ConnectionClosed) as closed:
            via_proxy("198.51.100.1").recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        assert "your address" in closed.value.rcvd.reason
        # another client behind the same proxy, and one that forges the header's left-most entry
        assert json.loads(via_proxy("198.51.100.2").recv(timeout=10))["type"] == "hello"
        assert json.loads(via_proxy("198.51.100.1, 198.51.100.3").recv(timeout=10))["type"] == "hello"


# ---------------------------------------------------------------- floods and a bystander


def twice_if_noisy(attack: Callable[[], dict], name: str) -> dict:
    """The attack's figures; run again when the bystander's p99 is over 50 ms, which on a shared
    machine is as often the neighbours' doing as the attacker's: a real slowdown shows both times."""
    figures = attack()
    print(f"\n{name}: {figures}")
    if figures["bystander"]["p99"] >= 50:
        again = attack()
        print(f"{name}, again: {again}")
        figures = min(figures, again, key=lambda f: f["bystander"]["p99"])
    return figures


def test_a_malformed_frame_flood_leaves_a_bystander_answered_quickly(server: ServerProcess) -> None:
    figures = twice_if_noisy(lambda: malformed_flood(server.port, seconds=3.0), "malformed flood")
    # every frame counts against max_inputs_per_second = 40: as many answered, as many refused, and
    # the first second's burst of both (was 16,961 answered a second)
    assert figures["server_error_frames_per_s"] < 4 * 40
    assert figures["bystander"]["p99"] < 50 and figures["bystander_failures"] == 0 and alive(server)


def test_fifty_connections_from_one_address_leave_a_bystander_answered_quickly(server: ServerProcess) -> None:
    attack = lambda: many_connections_one_address(server.port, connections=50, seconds=3.0)  # noqa: E731
    figures = twice_if_noisy(attack, "50 connections from one address")
    # max_inputs_per_second_per_ip = 200, answered and refused, with the first second's burst
    assert figures["attacker_answers_per_s"] < 4 * 200
    assert figures["bystander"]["p99"] < 50 and figures["bystander_failures"] == 0 and alive(server)


def test_invalid_utf8_closes_1007_without_a_traceback_in_the_log(server: ServerProcess) -> None:
    for _ in range(5):
        sock = handshake(server.port)
        sock.recv(4096)  # hello
        sock.sendall(client_frame(b"\xff\xfe{}"))
        closing = sock.recv(64)
        assert closing[0] == 0x88 and int.from_bytes(closing[2:4], "big") == 1007
        sock.close()
    assert "Traceback" not in server.output() and "Invalid UTF-8" not in server.output()


def test_close_codes_and_error_bodies_match_the_protocol_doc(server: ServerProcess) -> None:
    with connect(server.ws_url, additional_headers={"Origin": "https://evil.example"}) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "origin not allowed")
    with connect(server.ws_url) as ws:
        json.loads(ws.recv(timeout=10))
        ws.send(json.dumps({"type": "submit", "text": "a" * 5000}))
        assert json.loads(ws.recv(timeout=10))["code"] == "frame_too_big"
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    for host in ("rebound.example", "?!*#"):  # DNS rebinding: a Host that is not ours; garbage
        status, headers, body = http_get(server.port, "/healthz", headers={"Host": host})
        assert (status, headers["content-type"], body["code"]) == (400, "application/json", "bad_host")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        body_bytes = b'{"text": "' + b"a" * 6000 + b'"}'
        sock.sendall(
            b"POST /v1/submit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: "
            + str(len(body_bytes)).encode()
            + b"\r\nConnection: close\r\n\r\n"
            + body_bytes
        )
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413") and json.loads(payload)["code"] == "too_big"
    status, _, body = http_get(server.port, "/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert status == 403  # the default: /metrics for this machine only, not through a proxy


# ---------------------------------------------------------------- sessions


def test_a_link_with_someone_elses_session_sets_no_cookie(server: ServerProcess) -> None:
    _, headers, body = http_get(server.port, "/v1/session")
    victim = body["session"]
    assert "ac_session=" in headers.get("set-cookie", "")  # a fresh session gets its cookie
    status, headers, body = http_get(server.port, f"/v1/session?session={victim}")
    assert status == 200 and body["session"] == victim
    assert "set-cookie" not in {k.lower() for k in headers}  # the link does not fix the browser's id


def shared_redis_or_skip() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379 (make test starts one)")


@pytest.mark.redis
def test_a_burst_of_300_resumes_with_redis_fails_none(mpc_model: Path, tmp_path: Path) -> None:
    shared_redis_or_skip()
    prefix = f"test-{uuid.uuid4().hex}:"
    config = config_file(tmp_path, max_connections_per_ip=1000)
    env = QUIET | {"AUTOCOMPLETE_REDIS_PREFIX": prefix}
    try:
        with ServerProcess(mpc_model, config=config, redis_url=REDIS_URL, env=env) as server:
            sessions = []
            for i in range(300):
                with connect(server.ws_url) as ws:
                    sessions.append(json.loads(ws.recv(timeout=10))["session"])
                    ws.send(json.dumps({"type": "submit", "text": f"query {i}"}))
                    assert json.loads(ws.recv(timeout=10))["stored"] is True

            def resume(i: int) -> object:
                status, _, body = http_get(
                    server.port, "/v1/session", {"X-Autocomplete-Session": sessions[i]}
                )
                ok = status == 200 and body["session"] == sessions[i] and body["previous"] == [f"query {i}"]
                return True if ok else (status, body)

            start = time.perf_counter()
            with ThreadPoolExecutor(300) as pool:
                answers = list(pool.map(resume, range(300)))
            results = [answer is True for answer in answers]
            seconds = time.perf_counter() - start
            metrics = http_get(server.port, "/metrics")[2].decode()
            errors = [
                line for line in metrics.splitlines() if line.startswith("autocomplete_session_store_errors")
            ]
            failed = [answer for answer in answers if answer is not True]
            print(f"\n300 concurrent resumes: {len(failed)} failed {failed[:2]}, {seconds:.2f} s, {errors}")
            assert results.count(False) == 0
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)


@pytest.mark.redis
@needs_redis_server
def test_a_made_up_id_is_never_adopted_while_redis_is_down(mpc_model: Path) -> None:
    port = free_port()
    with own_redis(port) as redis_process:
        server = ServerProcess(mpc_model, redis_url=f"redis://127.0.0.1:{port}/0", env=QUIET)
        try:
            made_up = SessionIds().issue()  # the right shape, another key
            real = http_get(server.port, "/v1/session")[2]["session"]
            redis_process.kill()
            redis_process.wait()
            for asked in (made_up, "A" * 43):
                status, headers, body = http_get(server.port, f"/v1/session?session={asked}")
                assert status == 200 and body["session"] != asked
                with connect(f"{server.ws_url}?session={asked}") as ws:
                    assert json.loads(ws.recv(timeout=10))["session"] != asked
            assert http_get(server.port, f"/v1/session?session={real}")[2]["session"] == real  # ours: kept
        finally:
            server.stop()


@pytest.mark.redis
@needs_redis_server
def test_redis_refusing_writes_leaves_submits_pending_then_stored_once(mpc_model: Path) -> None:
    port = free_port()
    with own_redis(port):
        client = redis.Redis(port=port)
        server = ServerProcess(mpc_model, redis_url=f"redis://127.0.0.1:{port}/0", env=QUIET)
        try:
            with connect(server.ws_url) as ws:
                session = json.loads(ws.recv(timeout=10))["session"]
                client.config_set("maxmemory-policy", "noeviction")
                client.config_set("maxmemory", max(1, int(client.info("memory")["used_memory"]) - 1024))
                ws.send(json.dumps({"type": "submit", "text": "zanzibar hose"}))
                assert json.loads(ws.recv(timeout=10))["stored"] == "pending"  # not lost, not a lie
                client.config_set("maxmemory", 0)
                later = json.loads(ws.recv(timeout=15))
                assert later == {"type": "stored", "text": "zanzibar hose", "stored": True}
            trail = session_keys("autocomplete:", session).trail
            assert client.lrange(trail, 0, -1) == [b"zanzibar hose"]  # once
            log = server.output()
            assert "zanzibar" not in log and session not in log  # the OOM errors name no query or id
        finally:
            server.stop()


@pytest.mark.redis
@needs_redis_server
def test_a_planted_megabyte_in_redis_costs_a_keystroke_nothing(demo_model: Path) -> None:
    port = free_port()
    with own_redis(port):
        client = redis.Redis(port=port)
        # the context-aware model: a 1 MB context used to cost it 0.26 s a keystroke
        server = ServerProcess(demo_model, redis_url=f"redis://127.0.0.1:{port}/0", env=QUIET)
        try:
            with connect(server.ws_url) as ws:
                session = json.loads(ws.recv(timeout=10))["session"]
                ws.send(json.dumps({"type": "submit", "text": "garden hose"}))
                json.loads(ws.recv(timeout=10))
            client.lpush(session_keys("autocomplete:", session).trail, "x" * (1 << 20))
            before = rss_mb(server.process.pid)
            timings = []
            # context read at every input: each keystroke meets the planted value
            with connect(f"{server.ws_url}?session={session}") as ws:
                json.loads(ws.recv(timeout=10))
                for seq in range(40):
                    start = time.perf_counter()
                    ws.send(json.dumps({"type": "input", "seq": seq, "text": "ga"}))
                    assert json.loads(ws.recv(timeout=10))["type"] == "completions"
                    timings.append((time.perf_counter() - start) * 1000)
                    time.sleep(0.03)  # past the 1 s refresh now and then
            grown = rss_mb(server.process.pid) - before
            timings.sort()
            print(
                f"\nplanted 1 MB: keystroke p50 {timings[20]:.1f} ms, max {timings[-1]:.1f} ms, "
                f"RSS +{grown:.1f} MB"
            )
            # before: every keystroke of the session paid for the planted context (p50 257 ms)
            assert timings[20] < 20 and timings[-1] < 250 and grown < 64
        finally:
            server.stop()


# ---------------------------------------------------------------- user histories

HOST_SECRET = "the host's shared secret, 16+"
ALICE = sign_user("alice-4711", HOST_SECRET)
BOB = sign_user("bob-4712", HOST_SECRET)
FORGED_KEYS = [
    "alice-4711",  # unsigned
    "alice-4711." + "0" * 64,  # a made-up mac
    sign_user("alice-4711", "a secret the host does not have"),
    "alice-4711." + BOB.split(".")[1],  # bob's mac on alice's id
]


def history_env(prefix: str = "autocomplete:") -> dict[str, str]:
    return QUIET | {
        "AUTOCOMPLETE_HISTORY_SECRET": HOST_SECRET,
        "AUTOCOMPLETE_SESSION_SECRET": "this service's own secret, 16+",
        "AUTOCOMPLETE_REDIS_PREFIX": prefix,
    }


@contextlib.contextmanager
def as_user(server: ServerProcess, key: str | None, query: str = "") -> Iterator:
    protocols = ["autocomplete.v1"] + ([f"autocomplete.user.{key}"] if key else [])
    with connect(server.ws_url + query, subprotocols=protocols) as ws:  # type: ignore[arg-type]
        assert json.loads(ws.recv(timeout=10))["type"] == "hello"
        yield ws


def ws_ask(ws, frame: dict) -> dict:
    ws.send(json.dumps(frame))
    while True:
        answer = json.loads(ws.recv(timeout=10))
        if answer["type"] != "stored":
            return answer


def recent_over_ws(server: ServerProcess, key: str | None) -> list[str]:
    with as_user(server, key) as ws:
        return [item["text"] for item in ws_ask(ws, {"type": "recent", "k": 20})["items"]]


def recent_over_http(server: ServerProcess, key: str) -> list[str]:
    status, _, body = http_get(server.port, "/v1/history?k=20", {"X-Autocomplete-User": key})
    assert status == 200
    return [item["text"] for item in body["items"]]


def http_delete(server: ServerProcess, path: str, key: str) -> dict:
    request = urllib.request.Request(
        f"{server.url}{path}", method="DELETE", headers={"X-Autocomplete-User": key}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


@pytest.mark.redis
def test_a_forged_or_another_persons_user_key_reads_and_deletes_nothing(mpc_model: Path) -> None:
    shared_redis_or_skip()
    prefix = f"test-{uuid.uuid4().hex}:"
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        with ServerProcess(mpc_model, redis_url=REDIS_URL, env=history_env(prefix)) as server:
            with as_user(server, ALICE) as ws:
                for query in ("zanzibar hose", "alices roses"):
                    assert ws_ask(ws, {"type": "submit", "text": query})["stored"] is True
            with as_user(server, BOB) as ws:
                ws_ask(ws, {"type": "submit", "text": "bobs tulips"})
            for key in [*FORGED_KEYS, BOB]:
                seen = recent_over_ws(server, key) + recent_over_http(server, key)
                assert not [query for query in seen if "zanzibar" in query or "alice" in query], key
                with as_user(server, key) as ws:  # a forget with it: answered like any other
                    assert ws_ask(ws, {"type": "forget"})["forgotten"] is True
                assert http_delete(server, "/v1/history", key)["forgotten"] is True
            assert recent_over_ws(server, ALICE) == ["alices roses", "zanzibar hose"]
            assert recent_over_http(server, BOB) == []  # bob deleted his own, only his own
            keys = list(client.scan_iter(match=prefix + "u:*"))
            assert keys and not [key for key in keys if "alice" in key or "4711" in key]
            metrics = http_get(server.port, "/metrics")[2].decode()
            assert "autocomplete_user_keys_refused_total 16.0" in metrics  # 4 keys x (2 ws + GET + DELETE)
            log = server.output()
            assert "zanzibar" not in log and "alice" not in log and ALICE.split(".")[1] not in log
    finally:
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
        client.close()


def test_the_persons_past_query_completes_their_prefix_until_they_delete_it(demo_model: Path) -> None:
    """The learned chain in a real server: a query only this person submitted (no logged query
    starts with it) comes back for its first characters, and never once the history is deleted."""
    mine = "zanzibar quilting club"

    def shown(ws, text: str) -> list[str]:
        answer = ws_ask(ws, {"type": "input", "seq": next(seq), "text": text, "k": 10})
        return [item["text"] for item in answer["items"]]

    seq = iter(range(1, 100))
    with ServerProcess(demo_model, env=history_env()) as server:
        with as_user(server, ALICE) as ws:
            assert mine not in shown(ws, "zanz")
            ws_ask(ws, {"type": "submit", "text": mine, "idempotency_key": "submit-key-0"})
        with as_user(server, ALICE) as ws, as_user(server, BOB) as other:
            assert mine in shown(ws, "zanz") and mine not in shown(other, "zanz")
            assert http_delete(server, "/v1/history", ALICE)["forgotten"] is True
            assert mine not in shown(ws, "zanz")


@pytest.mark.redis
def test_a_deleted_history_never_appears_again(mpc_model: Path) -> None:
    shared_redis_or_skip()
    prefix = f"test-{uuid.uuid4().hex}:"
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        with ServerProcess(mpc_model, redis_url=REDIS_URL, env=history_env(prefix)) as server:
            with as_user(server, ALICE) as ws, as_user(server, ALICE) as other_tab:
                for i, query in enumerate(("zanzibar hose", "roses", "tulips")):
                    ws_ask(ws, {"type": "submit", "text": query, "idempotency_key": f"submit-key-{i}"})
                assert ws_ask(other_tab, {"type": "recent"})["items"][0] == {"text": "tulips"}
                assert ws_ask(ws, {"type": "forget", "query": "zanzibar hose"})["forgotten"] is True
                assert [i["text"] for i in ws_ask(other_tab, {"type": "recent"})["items"]] == [
                    "tulips",
                    "roses",
                ]
                assert http_delete(server, "/v1/history", ALICE)["forgotten"] is True
                assert ws_ask(ws, {"type": "recent"})["items"] == []
                assert ws_ask(other_tab, {"type": "recent"})["items"] == []
                # the client's retry of a submit from before the deletion does not bring it back
                request = urllib.request.Request(
                    f"{server.url}/v1/submit",
                    data=json.dumps({"text": "roses", "idempotency_key": "submit-key-1"}).encode(),
                    headers={"Content-Type": "application/json", "X-Autocomplete-User": ALICE},
                )
                urllib.request.urlopen(request, timeout=10).close()
            assert recent_over_ws(server, ALICE) == [] and recent_over_http(server, ALICE) == []
            assert [
                key for key in client.scan_iter(match=prefix + "u:*") if not key.split(":")[-2] == "d"
            ] == []
        with ServerProcess(mpc_model, redis_url=REDIS_URL, env=history_env(prefix)) as server:  # restarted
            assert recent_over_ws(server, ALICE) == []
    finally:
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
        client.close()


@pytest.mark.redis
@needs_redis_server
def test_redis_down_means_answers_without_history_and_nothing_crashes(mpc_model: Path) -> None:
    port = free_port()
    with own_redis(port) as redis_process:
        url = f"redis://127.0.0.1:{port}/0"
        server = ServerProcess(mpc_model, redis_url=url, env=history_env())
        try:
            with as_user(server, ALICE) as ws:
                ws_ask(ws, {"type": "submit", "text": "zanzibar hose"})
            redis_process.kill()
            redis_process.wait()
            with as_user(server, ALICE) as ws:
                for seq, text in enumerate(("z", "za", "ro")):
                    answer = ws_ask(ws, {"type": "input", "seq": seq, "text": text})
                    assert answer["type"] == "completions" and answer["seq"] == seq
                assert ws_ask(ws, {"type": "recent"})["items"] == []
                assert ws_ask(ws, {"type": "submit", "text": "zanzibar again"})["stored"] == "pending"
                assert ws_ask(ws, {"type": "forget"})["forgotten"] is False  # tells the page to try again
            status, _, body = http_get(server.port, "/v1/complete?q=ro", {"X-Autocomplete-User": ALICE})
            assert status == 200 and body["items"]
            assert http_get(server.port, "/readyz")[2]["history_store"] == "degraded"
            log = server.output()
            assert "history store" in log  # the outage is logged...
            assert "zanzibar" not in log and "alice" not in log and "Traceback" not in log  # ...namelessly
            assert server.process.poll() is None
        finally:
            server.stop()
