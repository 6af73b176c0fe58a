"""Attacks on a real server over loopback, each bounded in count and time, and the figures they
leave: for tests/test_attacks.py, and runnable against any checkout to compare before and after
(``python tests/attack_support.py MODEL_FOLDER``, with PYTHONPATH set to the checkout).

A bystander connects from 127.0.0.2 (all of 127.0.0.0/8 is loopback on Linux) so that it is
another client address than the attacker's 127.0.0.1.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import statistics
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

from sessions.redis import session_keys

BYSTANDER = "127.0.0.2"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def socket_from(source: str, port: int, timeout: float = 10) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))


def ws_from(source: str, port: int, path: str = "/v1/ws", **kwargs: Any) -> ClientConnection:
    return connect(f"ws://127.0.0.1:{port}{path}", sock=socket_from(source, port), **kwargs)


def handshake(port: int, source: str = "127.0.0.1", extra: str = "") -> socket.socket:
    """A websocket handshake by hand, so that the client may misbehave afterwards."""
    sock = socket_from(source, port)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError(f"closed during the handshake: {head!r}")
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        header = bytes([0x80 | opcode, 0x80 | size])
    elif size < 1 << 16:
        header = bytes([0x80 | opcode, 0x80 | 126]) + size.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, 0x80 | 127]) + size.to_bytes(8, "big")
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def http_get(
    port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 10
) -> tuple[int, dict, Any]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
            return response.status, dict(response.headers), json.loads(body) if body[:1] in b"{[" else body
    except urllib.error.HTTPError as exc:
        body = exc.read()
        return exc.code, dict(exc.headers), json.loads(body) if body[:1] in b"{[" else body


class Bystander:
    """Another client, typing into its own connection while an attack runs: its round trips, in ms."""

    def __init__(self, port: int, source: str = BYSTANDER) -> None:
        self.port = port
        self.source = source
        self.latencies: list[float] = []
        self.failures = 0

    def measure(self, seconds: float, interval: float = 0.03, max_inputs: int = 2000) -> None:
        """Type for ``seconds``, a keystroke every ``interval`` s (under the 40 a second limit)."""
        text = "garden hose"
        with ws_from(self.source, self.port) as ws:
            json.loads(ws.recv(timeout=10))
            deadline = time.monotonic() + seconds
            seq = 0
            while time.monotonic() < deadline and seq < max_inputs:
                seq += 1
                start = time.perf_counter()
                ws.send(json.dumps({"type": "input", "seq": seq, "text": text[: 1 + seq % len(text)]}))
                answer = json.loads(ws.recv(timeout=10))
                if answer.get("type") != "completions":
                    self.failures += 1
                self.latencies.append((time.perf_counter() - start) * 1000)
                time.sleep(interval)

    def figures(self) -> dict[str, float]:
        ordered = sorted(self.latencies)
        if not ordered:
            return {"n": 0, "p50": float("nan"), "p99": float("nan")}
        return {
            "n": len(ordered),
            "p50": round(statistics.median(ordered), 2),
            "p99": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
        }


def in_thread(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


# ---------------------------------------------------------------- the attacks


def endless_header(port: int, pid: int, cap_mb: int = 64, seconds: float = 10) -> dict[str, Any]:
    """One header line that never ends: how much the server took, and how it grew."""
    before = rss_mb(pid)
    sock = socket_from("127.0.0.1", port)
    sock.settimeout(2)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Endless: ")
    chunk = b"a" * 65536
    sent, peak = 0, before
    deadline = time.monotonic() + seconds
    try:
        while sent < cap_mb << 20 and time.monotonic() < deadline:
            sock.sendall(chunk)
            sent += len(chunk)
            if sent % (4 << 20) == 0:
                peak = max(peak, rss_mb(pid))
    except OSError:
        pass
    peak = max(peak, rss_mb(pid))
    answer = b""
    try:
        answer = sock.recv(200)
    except OSError:
        pass
    sock.close()
    return {
        "sent_mb": round(sent / (1 << 20), 1),
        "rss_growth_mb": round(peak - before, 1),
        "answer": answer[:40],
    }


def slow_headers(port: int, connections: int = 200, hold: float = 4.0) -> dict[str, Any]:
    """``connections`` clients that each send a header byte now and then: how many still hold
    their connection after ``hold`` seconds."""
    socks = []
    for _ in range(connections):
        try:
            s = socket_from("127.0.0.1", port, timeout=2)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            socks.append(s)
        except OSError:
            break
    deadline = time.monotonic() + hold
    while time.monotonic() < deadline:
        for s in socks:
            try:
                s.sendall(b"X")
            except OSError:
                pass
        time.sleep(0.5)
    open_ = 0
    for s in socks:
        try:
            s.settimeout(0.01)
            s.sendall(b"X")
            data = s.recv(100)
            if data and not data.startswith(b"HTTP/1.1 408") and not data.startswith(b"HTTP/1.1 503"):
                open_ += 1
        except TimeoutError:
            open_ += 1  # nothing came back: still held
        except OSError:
            pass
        s.close()
    return {"opened": len(socks), "still_held": open_}


def unread_pings(port: int, pid: int, cap_mb: int = 96, seconds: float = 15) -> dict[str, Any]:
    """A websocket client that sends pings as fast as it can and never reads the pongs."""
    before = rss_mb(pid)
    sock = handshake(port)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    batch = b"".join(client_frame(b"p" * 125, opcode=0x9) for _ in range(4096))  # ~540 kB
    sock.settimeout(2)
    sent, peak = 0, before
    deadline = time.monotonic() + seconds
    try:
        while sent < cap_mb << 20 and time.monotonic() < deadline:
            sock.sendall(batch)
            sent += len(batch)
            peak = max(peak, rss_mb(pid))
    except OSError:
        pass
    peak = max(peak, rss_mb(pid))
    sock.close()
    return {"sent_mb": round(sent / (1 << 20), 1), "rss_growth_mb": round(peak - before, 1)}


def connection_flood(port: int, connections: int = 300) -> dict[str, Any]:
    """``connections`` websockets from one address, all kept open: how many were let in, and
    whether a bystander from another address still gets in and answered."""
    held, refused = [], {}
    stack = contextlib.ExitStack()
    for _ in range(connections):
        try:
            ws = stack.enter_context(ws_from("127.0.0.1", port, open_timeout=5))
            held.append(ws)
            first = json.loads(ws.recv(timeout=5))
            if first.get("type") != "hello":
                refused["no_hello"] = refused.get("no_hello", 0) + 1
        except Exception as exc:  # noqa: BLE001 - what the server answered is the figure
            code = getattr(getattr(exc, "rcvd", None), "code", None) or type(exc).__name__
            refused[str(code)] = refused.get(str(code), 0) + 1
    bystander = Bystander(port)
    bystander.measure(0.5)
    stack.close()
    accepted = sum(1 for ws in held if ws.close_code in (1000, None, 1005))
    return {
        "accepted": accepted,
        "refused": refused,
        "bystander": bystander.figures(),
        "bystander_failures": bystander.failures,
    }


def _flood(port: int, seconds: float, out: Any) -> None:
    """The attacker of :func:`malformed_flood`, in a process of its own."""
    sent = answered = 0
    sock = socket_from("127.0.0.1", port)
    with connect(f"ws://127.0.0.1:{port}/v1/ws", sock=sock) as ws:
        ws.recv(timeout=10)
        start = time.perf_counter()
        # the server stops reading a flood: a send then blocks, until this cuts the connection
        timer = threading.Timer(seconds, sock.shutdown, args=(socket.SHUT_RDWR,))
        timer.start()
        try:
            while time.perf_counter() - start < seconds and sent < 200_000:
                for frame in ("{", "[]", '{"type": 7}', "\u00ff" * 300):
                    ws.send(frame)
                sent += 4
                while True:
                    try:
                        ws.recv(timeout=0)
                        answered += 1
                    except TimeoutError:
                        break
        except Exception:  # noqa: BLE001 - cut by the timer
            pass
        timer.cancel()
        elapsed = time.perf_counter() - start
    out.put((sent, answered, elapsed))


def _typists(port: int, connections: int, seconds: float, out: Any) -> None:
    """The attacker of :func:`many_connections_one_address`: ``connections`` websockets of one
    address, each typing as fast as it is answered, in a process of its own."""
    stop = threading.Event()
    answered = [0]

    def typist() -> None:
        try:
            with ws_from("127.0.0.1", port) as ws:
                ws.recv(timeout=10)
                seq = 0
                while not stop.is_set() and seq < 100_000:
                    seq += 1
                    ws.send(json.dumps({"type": "input", "seq": seq, "text": "ro"[: 1 + seq % 2]}))
                    ws.recv(timeout=10)
                    answered[0] += 1
        except Exception:  # noqa: BLE001 - refused or closed: this typist stops
            pass

    threads = [in_thread(typist) for _ in range(connections)]
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(20)
    out.put((answered[0], seconds))


def _attacker(target: Callable[..., None], *args: Any) -> tuple[Any, Any]:
    """Run ``target(*args, queue)`` in another process, so that the bystander measured here does not
    wait for the attacker's threads (one interpreter lock)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue), daemon=True)
    process.start()
    return process, queue


def error_answers(port: int) -> float:
    """The error frames the server sent so far (``autocomplete_errors_total``, all codes)."""
    metrics = http_get(port, "/metrics")[2].decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("autocomplete_errors_total{")
    )


def malformed_flood(port: int, seconds: float = 3.0) -> dict[str, Any]:
    """One connection sends malformed frames as fast as it can (reading what comes back);
    a bystander types meanwhile."""
    quiet = Bystander(port)
    quiet.measure(1.0)
    errors_before = error_answers(port)
    process, queue = _attacker(_flood, port, seconds + 1.0)
    time.sleep(1.0)  # the attacker's interpreter starts
    bystander = Bystander(port)
    bystander.measure(seconds)
    sent, answered, elapsed = queue.get(timeout=60)
    process.join(20)
    refused = error_answers(port) - errors_before
    return {
        "bystander_quiet": quiet.figures(),
        "bystander": bystander.figures(),
        "bystander_failures": bystander.failures,
        "frames_sent_per_s": round(sent / max(elapsed, 0.1)),
        "answered_per_s": round(answered / max(elapsed, 0.1)),
        "server_error_frames_per_s": round(refused / max(elapsed, 0.1)),
    }


def many_connections_one_address(port: int, connections: int = 50, seconds: float = 3.0) -> dict[str, Any]:
    """``connections`` websockets from one address, each typing as fast as it is answered."""
    quiet = Bystander(port)
    quiet.measure(1.0)
    process, queue = _attacker(_typists, port, connections, seconds + 1.5)
    time.sleep(1.5)  # the attacker's interpreter starts and connects
    bystander = Bystander(port)
    bystander.measure(seconds)
    answered, elapsed = queue.get(timeout=60)
    process.join(20)
    return {
        "bystander_quiet": quiet.figures(),
        "bystander": bystander.figures(),
        "bystander_failures": bystander.failures,
        "attacker_answers_per_s": round(answered / elapsed),
    }


# ---------------------------------------------------------------- sessions (for main(): any checkout)


def burst_of_resumes(port: int, ws_url: str, n: int = 300) -> dict[str, Any]:
    """``n`` sessions with one stored query each, then ``n`` concurrent ``GET /v1/session`` resumes."""
    from concurrent.futures import ThreadPoolExecutor

    sessions = []
    for i in range(n):
        with connect(ws_url) as ws:
            sessions.append(json.loads(ws.recv(timeout=10))["session"])
            ws.send(json.dumps({"type": "submit", "text": f"query {i}"}))
            ws.recv(timeout=10)

    def resume(i: int) -> bool:
        try:
            status, _, body = http_get(
                port, f"/v1/session?session={sessions[i]}", {"X-Autocomplete-Session": sessions[i]}
            )
        except OSError:
            return False
        return status == 200 and body["session"] == sessions[i] and body["previous"] == [f"query {i}"]

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(resume, range(n)))
    return {"failed": results.count(False), "of": n}


def forged_ids_adopted(port: int) -> int:
    """Made-up ids of the old (22) and the new (43 characters) shape: how many were adopted."""
    adopted = 0
    for forged in ("Q" * 22, base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()):
        status, _, body = http_get(port, f"/v1/session?session={forged}")
        adopted += status == 200 and body["session"] == forged
    return adopted


def fixation_by_link(port: int) -> bool:
    """Whether a link with somebody's session id sets that id as the visitor's cookie."""
    victim = http_get(port, "/v1/session")[2]["session"]
    _, headers, _ = http_get(port, f"/v1/session?session={victim}")
    return victim in headers.get("set-cookie", headers.get("Set-Cookie", ""))


def planted_megabyte(ws_url: str, redis_port: int, keystrokes: int = 20) -> dict[str, Any]:
    import redis

    with connect(ws_url) as ws:
        session = json.loads(ws.recv(timeout=10))["session"]
        ws.send(json.dumps({"type": "submit", "text": "garden hose"}))
        ws.recv(timeout=10)
    redis.Redis(port=redis_port).lpush(session_keys("autocomplete:", session).trail, "x" * (1 << 20))
    timings = []
    with connect(f"{ws_url}?session={session}") as ws:
        json.loads(ws.recv(timeout=10))
        for seq in range(keystrokes):
            start = time.perf_counter()
            ws.send(json.dumps({"type": "input", "seq": seq, "text": "ga"}))
            ws.recv(timeout=30)
            timings.append((time.perf_counter() - start) * 1000)
            time.sleep(0.06)
    return {
        "keystroke_max_ms": round(max(timings), 1),
        "keystroke_p50_ms": round(statistics.median(timings), 1),
    }


def redis_out_of_memory(ws_url: str, redis_port: int) -> dict[str, Any]:
    """Redis refuses writes, a submit is sent, Redis is given memory again: what the client was
    told, and whether the query is in Redis 3 s later."""
    import redis

    client = redis.Redis(port=redis_port)
    with connect(ws_url) as ws:
        session = json.loads(ws.recv(timeout=10))["session"]
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", max(1, int(client.info("memory")["used_memory"]) - 1024))
        ws.send(json.dumps({"type": "submit", "text": "oom query"}))
        told = json.loads(ws.recv(timeout=10)).get("stored")
        client.config_set("maxmemory", 0)
        time.sleep(3)
    trail = session_keys("autocomplete:", session).trail
    return {
        "told": told,
        "in_redis_after": client.lrange(trail, 0, -1).count(b"oom query"),
    }


def main() -> None:  # pragma: no cover - a measuring tool, run by hand
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    try:
        from autocomplete.evaluation.server_process import ServerProcess, drop_redis_keys, free_port
    except ImportError:  # a checkout from before the evaluation package
        from autocomplete.serve_process import ServerProcess, drop_redis_keys, free_port  # type: ignore

    model = sys.argv[1]
    env = {"AUTOCOMPLETE_LOG_LEVEL": "warning"}
    results: dict[str, Any] = {}
    for name, attack in [
        ("endless_header", lambda s: endless_header(s.port, s.process.pid)),
        ("slow_headers", lambda s: slow_headers(s.port, hold=12.0)),
        ("unread_pings", lambda s: unread_pings(s.port, s.process.pid)),
        ("malformed_flood", lambda s: malformed_flood(s.port)),
        ("many_connections_one_address", lambda s: many_connections_one_address(s.port)),
        ("connection_flood", lambda s: connection_flood(s.port)),
    ]:
        with ServerProcess(model, env=env) as server:
            try:
                results[name] = attack(server)
            except Exception as exc:  # noqa: BLE001
                results[name] = {"error": repr(exc)}
            results[name]["server_alive"] = server.process.poll() is None
        print(name, results[name], flush=True)
    from server_support import own_redis

    redis_port = free_port()
    with own_redis(redis_port) as redis_process:
        url = f"redis://127.0.0.1:{redis_port}/0"
        big = dict(env, AUTOCOMPLETE_MAX_CONNECTIONS_PER_IP="1000")
        with ServerProcess(model, redis_url=url, env=big) as server:
            results["burst_of_300_resumes"] = burst_of_resumes(server.port, server.ws_url)
            results["fixation_by_link"] = {"cookie_set": fixation_by_link(server.port)}
            results["planted_megabyte"] = planted_megabyte(server.ws_url, redis_port)
            results["redis_out_of_memory"] = redis_out_of_memory(server.ws_url, redis_port)
            drop_redis_keys(url, "autocomplete:")
            redis_process.kill()
            redis_process.wait()
            results["forged_ids_while_redis_down"] = {"adopted": forged_ids_adopted(server.port)}
        for name in ("burst_of_300_resumes", "fixation_by_link", "planted_megabyte", "redis_out_of_memory"):
            print(name, results[name], flush=True)
        print("forged_ids_while_redis_down", results["forged_ids_while_redis_down"], flush=True)
    print(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":  # pragma: no cover
    main()
