"""A real three-master Redis Cluster on loopback, for the session-store tests: started in a tmp
folder with ``redis-server --cluster-enabled yes`` and ``redis-cli --cluster create``, one master
at a time killed and restarted with its ``nodes.conf``."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

NODE_TIMEOUT_MS = 5000  # a master back within this is never marked failed by the others


def cluster_tools_missing() -> str | None:
    """Why a local cluster cannot be started here, or ``None``."""
    for tool in ("redis-server", "redis-cli"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian: apt-get install redis-server): no local Redis Cluster"
    return None


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_ports(n: int) -> list[int]:
    """``n`` loopback ports whose cluster bus ports (port + 10000) are free too."""
    ports: list[int] = []
    while len(ports) < n:
        port = random.randrange(20000, 30000)
        if port not in ports and _bindable(port) and _bindable(port + 10000):
            ports.append(port)
    return ports


class LocalCluster:
    """Three masters, no replicas, no persistence; ``url`` is the store's ``redis+cluster://``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ports = free_cluster_ports(3)
        self.processes: dict[int, subprocess.Popen] = {}
        try:
            for port in self.ports:
                (folder / str(port)).mkdir()
                self.start(port)
            for port in self.ports:
                self._wait_answers(port)
            subprocess.run(
                ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports)]
                + ["--cluster-replicas", "0", "--cluster-yes"],
                check=True,
                capture_output=True,
                timeout=60,
            )
            self.wait_ok()
        except BaseException:
            self.stop()
            raise
        self.url = "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def start(self, port: int) -> None:
        """Start (or restart) the master on ``port``; a restart reads its ``nodes.conf`` again."""
        self.processes[port] = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
            + ["--dir", str(self.folder / str(port))]
            + ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
            + ["--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--cluster-require-full-coverage", "no"]
            + ["--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )

    def heal(self) -> None:
        """Restart any master a test left stopped, and wait until the cluster is ok."""
        for port in self.ports:
            if port not in self.processes:
                self.start(port)
        self.wait_ok()

    def kill(self, port: int) -> None:
        process = self.processes.pop(port)
        process.kill()
        process.wait()

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_connect_timeout=0.5, socket_timeout=2, decode_responses=True)

    def _wait_answers(self, port: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        with self.client(port) as client:
            while True:
                try:
                    client.ping()
                    return
                except redis.RedisError:
                    assert time.monotonic() < deadline, f"redis-server on {port} did not start"
                    time.sleep(0.05)

    def wait_ok(self, timeout: float = 30) -> None:
        """Until every master answers and says ``cluster_state:ok`` with all slots assigned and ok."""
        deadline = time.monotonic() + timeout
        for port in self.ports:
            self._wait_answers(port, timeout)
            with self.client(port) as client:
                while True:
                    info = client.cluster("info")
                    if info["cluster_state"] == "ok" and int(info["cluster_slots_ok"]) == 16384:
                        break
                    assert time.monotonic() < deadline, f"the cluster is not ok on {port}: {info}"
                    time.sleep(0.05)

    def port_of(self, key: str) -> int:
        """The port of the master that serves ``key``'s slot."""
        with self.client(self.ports[0]) as client:
            slot = int(client.cluster("keyslot", key))
            for start, end, (_, port, *_), *_ in client.execute_command("CLUSTER SLOTS"):
                if start <= slot <= end:
                    return int(port)
        raise AssertionError(f"no master serves slot {slot}")

    def stop(self) -> None:
        for port in list(self.processes):
            self.kill(port)
