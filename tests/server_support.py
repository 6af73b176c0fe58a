"""Real servers for tests: a private Redis the test may kill, and uvicorn in a thread."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
import uvicorn

from autocomplete.evaluation.server_process import free_port


@contextmanager
def own_redis(port: int) -> Iterator[subprocess.Popen]:
    """A private redis-server on ``port`` (never the shared one), so the test may kill it."""
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.RedisError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    try:
        yield process
    finally:
        process.kill()
        process.wait()


@contextmanager
def uvicorn_in_thread(app) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"ws://127.0.0.1:{port}/v1/ws"
    finally:
        server.should_exit = True
        thread.join(15)


def worker_pids(parent: int) -> list[int]:
    """uvicorn's worker processes: the children of ``parent`` started by multiprocessing's spawn."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return sorted(found)


def workers_loaded(parent: int, workers: int) -> bool:
    """Every one of ``workers`` uvicorn workers has memory-mapped a model's arrays (loaded it)."""
    pids = worker_pids(parent)
    if len(pids) != workers:
        return False
    for pid in pids:
        try:
            maps = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            return False
        if ".npy" not in maps:
            return False
    return True
