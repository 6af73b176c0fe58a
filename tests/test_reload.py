"""Hot reload and the live blocklist against real ``autocomplete serve`` processes."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import re
import shutil
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ROOT
from server_support import workers_loaded
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from indexer.config import load_train_config
from indexer.manifest import digest
from indexer.pipeline import build_model
from indexer.synthetic import generate_log

pytestmark = pytest.mark.slow
TOKEN = "reload-test-token-0123456789"
AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def other_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second MPC model, from another seed's log: other labels, other answers."""
    log = generate_log(tmp_path_factory.mktemp("logs") / "other.tsv", n_users=200, seed=11)
    config = dataclasses.replace(load_train_config(ROOT / "configs" / "demo.toml"), model="mpc")
    out = tmp_path_factory.mktemp("models") / "other"
    build_model(log, config, out)
    return out


def point(link: Path, target: Path) -> None:
    """Swap the symlink ``link`` to ``target`` atomically, as a deployment does."""
    staging = link.with_name(link.name + ".new")
    staging.unlink(missing_ok=True)
    staging.symlink_to(target)
    os.replace(staging, link)


def model_id(folder: Path) -> str:
    return digest(folder / "params.json")[:12]


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def post(url: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body or {}).encode()
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"content-type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def reloads(server, result: str) -> float:
    text = urllib.request.urlopen(f"{server.url}/metrics", timeout=10).read().decode()
    found = re.search(rf'autocomplete_model_reloads_total\{{result="{result}"\}} (\S+)', text)
    return float(found.group(1)) if found else 0.0


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.1)


def texts(ws, seq: int, text: str = "c") -> list[str]:
    ws.send(json.dumps({"type": "input", "seq": seq, "text": text, "k": 5}))
    answer = json.loads(ws.recv(timeout=10))
    assert answer["type"] == "completions", answer
    return [item["text"] for item in answer["items"]]


def served_ids(server, n: int = 12) -> set[str]:
    return {get(f"{server.url}/readyz")["model_id"] for _ in range(n)}


def start(live_server, link: Path, tmp_path: Path, workers: int = 1, **env: str):
    env = {"AUTOCOMPLETE_MODEL_SNAPSHOT_DIR": str(tmp_path / "snapshots"), **env}
    return live_server(link, workers=workers, env=env)


def test_a_swapped_symlink_is_served_by_both_workers_and_open_websockets_stay_open(
    live_server, mpc_model: Path, other_model: Path, tmp_path: Path
) -> None:
    link = tmp_path / "current"
    point(link, mpc_model)
    server = start(live_server, link, tmp_path, workers=2)
    assert served_ids(server) == {model_id(mpc_model)}
    with connect(server.ws_url) as first, connect(server.ws_url) as second:
        assert (
            json.loads(first.recv(timeout=10))["type"]
            == json.loads(second.recv(timeout=10))["type"]
            == "hello"
        )
        before = texts(first, 1)
        point(link, other_model)
        wait_for(lambda: reloads(server, "loaded") == 2)  # one load in each worker (metrics add up)
        assert served_ids(server) == {model_id(other_model)}
        after = texts(first, 2)
        assert after != before and texts(second, 1) == after  # the same connections, the new model
    info = get(f"{server.url}/readyz")
    labels = json.loads((other_model / "params.json").read_text())["summary"]
    assert info["labels"] > 0 and info["trained_at"] == labels.get("trained_at", "")


@pytest.mark.parametrize("workers", [1, 2])
def test_sighup_reloads_every_worker_in_place(
    live_server, mpc_model: Path, other_model: Path, tmp_path: Path, workers: int
) -> None:
    link = tmp_path / "current"
    point(link, mpc_model)
    server = start(live_server, link, tmp_path, workers=workers, AUTOCOMPLETE_RELOAD_POLL_SECONDS="0")
    wait_for(lambda: workers_loaded(server.process.pid, workers) if workers > 1 else True, 60)
    with connect(server.ws_url) as ws:
        ws.recv(timeout=10)
        before = texts(ws, 1)
        point(link, other_model)  # only once every worker has loaded the first model
        time.sleep(1.5)
        assert served_ids(server) == {model_id(mpc_model)}  # no polling: nothing happens by itself
        os.kill(server.process.pid, signal.SIGHUP)
        wait_for(lambda: reloads(server, "loaded") == workers)
        assert served_ids(server) == {model_id(other_model)}
        assert texts(ws, 2) != before  # the connection outlived the reload
    assert server.process.poll() is None


def test_admin_endpoints_need_the_token_and_a_damaged_model_is_refused_naming_its_file(
    live_server, mpc_model: Path, other_model: Path, tmp_path: Path
) -> None:
    link = tmp_path / "current"
    point(link, mpc_model)
    off = start(live_server, link, tmp_path)
    assert post(f"{off.url}/admin/reload", headers=AUTH)[0] == 403  # no token configured: off
    off.stop()
    server = start(
        live_server, link, tmp_path, AUTOCOMPLETE_ADMIN_TOKEN=TOKEN, AUTOCOMPLETE_RELOAD_POLL_SECONDS="0"
    )
    assert post(f"{server.url}/admin/reload")[0] == 401
    assert (
        post(f"{server.url}/admin/reload", headers={"authorization": "Bearer " + "x" * len(TOKEN)})[0] == 401
    )
    assert post(f"{server.url}/admin/reload", headers=AUTH) == (
        200,
        {"type": "reload", "result": "unchanged", "model_id": model_id(mpc_model), "seconds": 0.0},
    )
    damaged = tmp_path / "damaged"
    shutil.copytree(other_model, damaged)
    counts = damaged / "counts.npy"
    data = bytearray(counts.read_bytes())
    data[-1] ^= 0xFF  # same size, other bytes
    counts.write_bytes(bytes(data))
    answers = get(f"{server.url}/v1/complete?q=c&k=5")["items"]
    point(link, damaged)
    status, body = post(f"{server.url}/admin/reload", headers=AUTH)
    assert status == 422 and body["code"] == "model_refused" and "counts.npy" in body["message"]
    assert body["model_id"] == model_id(mpc_model)
    assert served_ids(server, 3) == {model_id(mpc_model)}
    assert get(f"{server.url}/v1/complete?q=c&k=5")["items"] == answers  # the old model keeps answering
    assert reloads(server, "refused") == 1
    assert "new model refused" in server.output() and "counts.npy" in server.output()
    point(link, other_model)
    assert post(f"{server.url}/admin/reload", headers=AUTH)[1]["result"] == "loaded"
    assert served_ids(server, 3) == {model_id(other_model)}


def test_a_blocklist_change_applies_at_once_to_every_worker_s_answers(
    live_server, mpc_model: Path, tmp_path: Path
) -> None:
    blocklist = tmp_path / "blocklist.txt"
    server = start(
        live_server,
        mpc_model,
        tmp_path,
        workers=2,
        AUTOCOMPLETE_ADMIN_TOKEN=TOKEN,
        AUTOCOMPLETE_BLOCKLIST=str(blocklist),
    )
    with connect(server.ws_url) as ws:
        ws.recv(timeout=10)
        before = texts(ws, 1)
        assert len(before) == 5
        word = before[0].split()[0]
        status, body = post(f"{server.url}/admin/blocklist", {"words": [word.upper()]}, AUTH)
        assert status == 200 and body["words"] == [word.upper().casefold()]
        assert post(f"{server.url}/admin/blocklist", {"words": [word]})[0] == 401

        seqs = itertools.count(2)

        def blocked_everywhere() -> bool:
            answers = [texts(ws, next(seqs))] + [
                [i["text"] for i in get(f"{server.url}/v1/complete?q=c&k=5")["items"]] for _ in range(8)
            ]
            return all(len(a) == 5 and not any(word in t.split() for t in a) for a in answers)

        wait_for(blocked_everywhere, timeout=3)  # the other worker is told through the supervisor
        blocklist.write_text("re:.\n")  # edited by hand: picked up by the poll
        wait_for(lambda: texts(ws, next(seqs)) == [], timeout=5)
    assert post(f"{server.url}/admin/blocklist", {"patterns": ["(unclosed"]}, AUTH)[0] == 400


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_closes_open_websockets_with_a_close_code_never_1006(
    live_server, mpc_model: Path, workers: int
) -> None:
    server = live_server(mpc_model, workers=workers)
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(connect(server.ws_url)) for _ in range(3)]
        for ws in sockets:
            ws.recv(timeout=10)
        server.process.terminate()
        for ws in sockets:
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    ws.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code in (1001, 1012)
    # uvicorn ends by the signal it shut down for, after its clean shutdown
    assert server.process.wait(timeout=15) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in server.output()
