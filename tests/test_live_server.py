"""Real servers: ``autocomplete serve`` subprocesses and uvicorn in a thread, real websocket clients."""

from __future__ import annotations

import json
import shutil
import urllib.request
import uuid
from pathlib import Path

import pytest
import redis
from server_support import own_redis, uvicorn_in_thread
from serving_stubs import EchoCompleter
from websockets.sync.client import connect

from autocomplete.completer import load_completer
from autocomplete.config import ServeConfig
from autocomplete.evaluation.server_process import free_port
from autocomplete.server import create_app
from sessions.base import is_session_id

REDIS_URL = "redis://127.0.0.1:6379/0"
pytestmark = pytest.mark.slow


def shared_redis_or_skip() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379 (make test starts one)")


def ask(ws, frame: dict) -> dict:
    ws.send(json.dumps(frame))
    return json.loads(ws.recv(timeout=10))


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def check_session_flow(server, model_folder: Path) -> None:
    model = load_completer(model_folder, warm_up=False)
    with connect(server.ws_url, compression="deflate") as ws:  # offered, as browsers do
        hello = json.loads(ws.recv(timeout=10))
        session = hello["session"]
        assert hello["type"] == "hello" and is_session_id(session)
        cookies = ws.response.headers.get_all("set-cookie")  # the session's and the browser id's
        assert any(cookie.startswith(f"ac_session={session};") for cookie in cookies)
        assert "sec-websocket-extensions" not in ws.response.headers  # small frames go uncompressed
        answer = ask(ws, {"type": "input", "seq": 1, "text": "ch"})
        assert [i["text"] for i in answer["items"]] == [c.text for c in model.complete("ch", (), 10)]
        assert ask(ws, {"type": "submit", "text": "zanzibarquery"})["stored"] is True
    with connect(f"{server.ws_url}?session={session}") as ws:
        assert json.loads(ws.recv(timeout=10))["session"] == session
        assert ask(ws, {"type": "input", "seq": 2, "text": "zanzibarprefix"})["type"] == "completions"
    assert get_json(f"{server.url}/v1/session?session={session}")["previous"] == ["zanzibarquery"]
    log = server.output()
    assert "WebSocket /v1/ws" in log  # the access lines are there, with query strings cut
    assert session not in log and "zanzibar" not in log


def test_serve_subprocess_with_memory_sessions(live_server, mpc_model: Path) -> None:
    check_session_flow(live_server(mpc_model), mpc_model)


@pytest.mark.redis
def test_serve_subprocess_two_workers_with_redis_sessions(live_server, mpc_model: Path) -> None:
    shared_redis_or_skip()
    prefix = f"test-{uuid.uuid4().hex}:"
    server = live_server(mpc_model, redis_url=REDIS_URL, workers=2, env={"AUTOCOMPLETE_REDIS_PREFIX": prefix})
    try:
        check_session_flow(server, mpc_model)
        assert get_json(f"{server.url}/readyz")["session_store"] == "ok"
        metrics = urllib.request.urlopen(f"{server.url}/metrics", timeout=10).read().decode()
        assert 'autocomplete_inputs_total{transport="websocket"} 2.0' in metrics  # summed over workers
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)


def test_stale_inputs_are_superseded_and_every_input_gets_one_answer_in_order() -> None:
    completer = EchoCompleter(delay=0.05)
    text = "house plants"
    with uvicorn_in_thread(create_app(completer=completer)) as url, connect(url) as ws:
        ws.recv(timeout=10)
        for seq in range(1, len(text) + 1):
            ws.send(json.dumps({"type": "input", "seq": seq, "text": text[:seq]}))
        answers = [json.loads(ws.recv(timeout=10)) for _ in text]
    assert [a["seq"] for a in answers] == list(range(1, len(text) + 1))
    kinds = [a["type"] for a in answers]
    assert "superseded" in kinds and kinds[-1] == "completions"
    assert answers[-1]["items"][0]["text"] == "house plants after nothing"
    assert len(completer.calls) == kinds.count("completions") < len(text)  # stale work was skipped


@pytest.mark.redis
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_redis_dies_mid_session_inputs_still_answered_and_context_returns() -> None:
    port = free_port()
    # context read from the store at every input, so every input meets the dead store
    config = ServeConfig(
        redis_url=f"redis://127.0.0.1:{port}/0", store_retry_seconds=0.2, context_refresh_seconds=0.0
    )
    with (
        own_redis(port) as first,
        uvicorn_in_thread(create_app(completer=EchoCompleter(), config=config)) as url,
    ):
        with connect(url) as ws:
            json.loads(ws.recv(timeout=10))
            assert ask(ws, {"type": "submit", "text": "garden hose"})["stored"] is True
            assert (
                ask(ws, {"type": "input", "seq": 1, "text": "ro"})["items"][0]["text"]
                == "ro after garden hose"
            )

            first.kill()
            first.wait()
            for seq in range(2, 6):  # this connection keeps the context it read last
                answer = ask(ws, {"type": "input", "seq": seq, "text": "ro"})
                assert answer["type"] == "completions"
                assert answer["items"][0]["text"] == "ro after garden hose"
            assert ask(ws, {"type": "submit", "text": "kept"})["stored"] == "pending"  # in the outbox
            with connect(url) as newcomer:  # a connection opened meanwhile has none to keep
                json.loads(newcomer.recv(timeout=10))
                answer = ask(newcomer, {"type": "input", "seq": 1, "text": "ro"})
                assert answer["items"][0]["text"] == "ro after nothing"

            with own_redis(port):
                # the outbox writes the pending submit once the store is back, and says so
                assert json.loads(ws.recv(timeout=15)) == {"type": "stored", "text": "kept", "stored": True}
                answer = ask(ws, {"type": "input", "seq": 9, "text": "ro"})
                assert answer["items"][0]["text"] == "ro after kept"
                assert ask(ws, {"type": "submit", "text": "house plants"})["stored"] is True
                answer = ask(ws, {"type": "input", "seq": 10, "text": "ro"})
                assert answer["items"][0]["text"] == "ro after house plants"
