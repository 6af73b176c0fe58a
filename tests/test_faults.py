"""Faults under a replay, with real processes on loopback: Redis restarted, a worker killed, a
client that stops reading, a flood of malformed frames. Each test owns its redis-server and servers."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from server_support import own_redis, worker_pids
from websockets.sync.client import connect

from autocomplete.completer import load_completer
from autocomplete.evaluation.replay import replay_async
from autocomplete.evaluation.replay_plan import ReplayPlan, ReplayTally, build_report, plan_replay
from autocomplete.evaluation.server_process import free_port
from indexer.config import load_train_config
from indexer.querylog import QueryLog, read_query_log

ROOT = Path(__file__).resolve().parent.parent
# every replayed session comes from 127.0.0.1: the per-address budget would throttle them all
ONE_ADDRESS = {"AUTOCOMPLETE_MAX_INPUTS_PER_SECOND_PER_IP": "1000000"}
# answers are compared with the model as trained: no live counts learning from the replay's submits
FROZEN = {"AUTOCOMPLETE_LIVE": "false", "AUTOCOMPLETE_HISTORY_ENABLED": "false"}
FAST = {"AUTOCOMPLETE_MAX_INPUTS_PER_SECOND": "100000", "AUTOCOMPLETE_LOG_LEVEL": "warning"}
FAST |= ONE_ADDRESS | FROZEN
# on a loaded machine a 20 ms store timeout would drop context now and then: these tests are about
# faults, so a store call may take its time (a dead Redis still fails at once: connection refused)
PATIENT = {
    "AUTOCOMPLETE_STORE_TIMEOUT_SECONDS": "2",
    "AUTOCOMPLETE_REDIS_SOCKET_TIMEOUT": "2",
    "AUTOCOMPLETE_REDIS_CONNECT_TIMEOUT": "2",
}
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]


@pytest.fixture(scope="module")
def query_log(synthetic_log: Path) -> QueryLog:
    return read_query_log(synthetic_log, load_train_config(ROOT / "configs" / "demo.toml").log)


class BackgroundReplay:
    """A replay running in its own thread and event loop; ``done`` counts finished sessions."""

    def __init__(self, url: str, plan: ReplayPlan, concurrency: int) -> None:
        self.plan = plan
        self.url = url
        self.done = 0
        self.tally: ReplayTally | None = None
        self.error: BaseException | None = None
        self.started = time.perf_counter()
        self.seconds = 0.0
        self.thread = threading.Thread(target=self._run, args=(concurrency,), daemon=True)
        self.thread.start()

    def update(self, n: int) -> None:  # the progress hook replay_async calls per session
        self.done += n

    def _run(self, concurrency: int) -> None:
        try:
            numbered = list(enumerate(self.plan.sessions))
            self.tally = asyncio.run(replay_async(self.url, numbered, concurrency=concurrency, progress=self))
        except BaseException as exc:  # noqa: BLE001 - reported by result()
            self.error = exc
        self.seconds = time.perf_counter() - self.started

    def wait_for(self, sessions: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.done < sessions:
            assert self.thread.is_alive(), f"the replay ended early: {self.error!r}"
            assert time.monotonic() < deadline, f"only {self.done} sessions replayed"
            time.sleep(0.01)

    def result(self, timeout: float = 120) -> tuple[dict, ReplayTally]:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the replay did not finish"
        assert self.error is None and self.tally is not None, repr(self.error)
        report = build_report(
            self.plan, self.tally, self.seconds, url=self.url, concurrency=0, speed="max", k=10
        )
        return report, self.tally


def expected_answers(model_folder: Path, plan: ReplayPlan, context: bool = True) -> dict[int, list[str]]:
    model = load_completer(model_folder, warm_up=False)
    ex = plan.examples
    return {
        j: [
            c.text
            for c in model.complete(ex.prefix[j], [ex.previous[j]] if context and ex.previous[j] else [], 10)
        ]
        for j in range(len(ex))
    }


def answers_with_context(model_folder: Path, plan: ReplayPlan) -> dict[int, list[str]]:
    """The answers each example gets with its session's context, which must change some of them
    (so a session that lost its context is caught)."""
    expected = expected_answers(model_folder, plan)
    assert expected != expected_answers(model_folder, plan, context=False), "the model ignores context"
    return expected


def get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def context_is_stored(server) -> bool:
    """A fresh session's submit is stored and read back as its trail."""
    with connect(server.ws_url) as ws:
        session = json.loads(ws.recv(timeout=10))["session"]
        ws.send(json.dumps({"type": "submit", "text": "garden hose"}))
        if not json.loads(ws.recv(timeout=10))["stored"]:
            return False
    return get_json(f"{server.url}/v1/session?session={session}")[1]["previous"] == ["garden hose"]


# ---------------------------------------------------------------- Redis restarted


def test_redis_restarted_during_a_replay(live_server, demo_model: Path, query_log: QueryLog) -> None:
    port = free_port()
    plan = plan_replay(query_log, "test", "keystroke", sessions=90)
    env = FAST | PATIENT | {"AUTOCOMPLETE_STORE_RETRY_SECONDS": "0.2"}
    with own_redis(port) as first:
        server = live_server(demo_model, redis_url=f"redis://127.0.0.1:{port}/0", env=env)
        replay = BackgroundReplay(server.ws_url, plan, concurrency=4)
        replay.wait_for(10)
        first.kill()
        first.wait()
        wait_until(
            lambda: get_json(server.url + "/readyz")[1].get("session_store") == "degraded",
            10,
            "the server to notice",
        )
        down_at = replay.done
        replay.wait_for(down_at + 15)
        with own_redis(port):
            wait_until(lambda: context_is_stored(server), 10, "the store to reconnect by itself")
            back_at = replay.done
            report, tally = replay.result()
            status, ready = get_json(server.url + "/readyz")
            assert status == 200 and (ready["status"], ready["model"], ready["session_store"]) == (
                "ready",
                "xmr",
                "ok",
            )
    assert server.process.poll() is None, "the server crashed"
    assert report["violations"] == {}  # every keystroke answered, in order, no error frame
    assert report["sessions"] == {"planned": 90, "done": 90, "failed": 0}
    assert report["inputs"]["scored"] == len(plan.examples)
    assert 0 < report["submits"]["not_stored"] < report["submits"]["sent"]
    later = range(back_at + 4, 90)  # sessions begun once the store was back (4 run at a time): with context
    assert len(later) >= 10, f"only {len(later)} sessions after Redis came back; replay more"
    expected = answers_with_context(demo_model, plan)
    for session in (plan.sessions[i] for i in later):
        for j in range(session.first_example, session.first_example + sum(map(len, session.prefixes))):
            assert tally.answers[j] == expected[j]


# ---------------------------------------------------------------- a worker killed


def client_connections(pid: int, port: int) -> int:
    """The established TCP connections to ``port`` that process ``pid`` holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01" and fields[9] in inodes:
                count += 1
    return count


def test_worker_killed_under_load_clients_reconnect_and_resume_their_sessions(
    live_server, demo_model: Path, query_log: QueryLog
) -> None:
    port = free_port()
    plan = plan_replay(query_log, "test", "keystroke", sessions=60)
    with own_redis(port):
        url = f"redis://127.0.0.1:{port}/0"
        server = live_server(demo_model, redis_url=url, workers=2, env=FAST | PATIENT)
        workers = worker_pids(server.process.pid)
        assert len(workers) == 2, workers
        replay = BackgroundReplay(server.ws_url, plan, concurrency=8)
        replay.wait_for(8)
        busiest = max(workers, key=lambda pid: client_connections(pid, server.port))
        os.kill(busiest, signal.SIGKILL)  # the kernel may have handed every client to one worker
        report, tally = replay.result()
        wait_until(lambda: len(worker_pids(server.process.pid)) == 2, 60, "uvicorn to replace the worker")
        assert get_json(server.url + "/readyz")[0] == 200
    assert report["sessions"] == {"planned": 60, "done": 60, "failed": 0}, report
    assert report["submits"]["not_stored"] == 0, report
    assert report["connections"]["reconnects"] >= 1
    assert report["connections"]["sessions_not_resumed"] == 0  # the trail lives in Redis
    assert report["violations"] == {}  # the unanswered frames were sent again and answered
    assert tally.answers == answers_with_context(demo_model, plan)  # with each session's own context


# ---------------------------------------------------------------- a client that stops reading


def raw_websocket(port: int) -> socket.socket:
    """A websocket handshake by hand, so the client can refuse to read anything afterwards."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def client_frame(text: str) -> bytes:
    payload = text.encode()
    mask = os.urandom(4)
    size = len(payload)
    header = bytes([0x81, 0x80 | size]) if size < 126 else bytes([0x81, 0x80 | 126]) + size.to_bytes(2, "big")
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_client_that_stops_reading_is_not_buffered_without_bound(
    live_server, mpc_model: Path, query_log: QueryLog
) -> None:
    server = live_server(mpc_model, env=FAST)
    sock = raw_websocket(server.port)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # and never recv() again
    batch = b"".join(client_frame(json.dumps({"type": "input", "seq": i, "text": "ro"})) for i in range(2000))
    before = rss_mb(server.process.pid)
    sock.settimeout(2.0)
    accepted, cap = 0, 24 << 20
    try:
        while accepted < cap:
            sock.sendall(batch)  # the server must stop taking frames it cannot answer
            accepted += len(batch)
    except (TimeoutError, OSError):
        pass
    grown = rss_mb(server.process.pid) - before
    plan = plan_replay(query_log, "test", "sampled", sessions=20)
    others = BackgroundReplay(server.ws_url, plan, concurrency=4)
    report, tally = others.result()
    sock.close()
    assert accepted < cap, f"the server kept reading {accepted >> 20} MB from a client that reads nothing"
    assert grown < 64, f"the server grew by {grown:.0f} MB"
    assert report["violations"] == {} and report["sessions"]["done"] == 20
    assert tally.answers == expected_answers(mpc_model, plan)
    assert server.process.poll() is None


# ---------------------------------------------------------------- a flood of malformed frames


def test_a_flood_of_malformed_frames_leaves_other_connections_answered(
    live_server, mpc_model: Path, query_log: QueryLog
) -> None:
    # the default per-connection limit refuses the flood
    server = live_server(mpc_model, env=ONE_ADDRESS | FROZEN)
    plan = plan_replay(query_log, "test", "sampled", sessions=30)
    junk = [
        "{",
        "[]",
        '{"type": "input", "seq": -1, "text": "x"}',
        '{"type": 7}',
        "\u00ff" * 900,
        '{"type": "input", "seq": 1, "text": "\\u0000"}',
        '{"type": "submit", "text": "  "}',
        '{"type": "input", "seq": 2, "text": ' + '"' + "a" * 101 + '"}',
        "[" * 1500 + "]" * 1500,
    ]
    codes: dict[str, int] = {}
    stop = threading.Event()

    def flood() -> None:
        with connect(server.ws_url, max_size=None) as ws:
            ws.recv(timeout=10)
            sent = 0
            while not stop.is_set() and sent < 40_000:
                for frame in junk:
                    ws.send(frame)
                sent += len(junk)
                while True:  # read what came back so far, so this client is not the slow reader
                    try:
                        answer = json.loads(ws.recv(timeout=0))
                    except TimeoutError:
                        break
                    codes[answer.get("code")] = codes.get(answer.get("code"), 0) + 1

    flooder = threading.Thread(target=flood, daemon=True)
    flooder.start()
    wait_until(lambda: sum(codes.values()) > 500, 30, "the flood to be answered")
    baseline_free = server.process.poll() is None
    report, tally = BackgroundReplay(server.ws_url, plan, concurrency=2).result()
    stop.set()
    flooder.join(30)
    print(f"\nlatency of the other connections during the flood: {report['latency_ms']} ms")
    assert baseline_free and server.process.poll() is None
    refused = {"bad_json", "bad_frame", "bad_field", "unknown_type", "too_long", "control_characters"}
    assert refused <= set(codes)
    assert report["violations"] == {} and report["sessions"]["done"] == 30
    assert tally.answers == expected_answers(mpc_model, plan)
