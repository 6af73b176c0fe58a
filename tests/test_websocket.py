"""``serve_connection`` driven through raw ASGI messages: the transport failing under the server,
and when a connection asks the session store for its context."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from serving_stubs import EchoCompleter
from starlette.websockets import WebSocket

from autocomplete.config import ServeConfig
from autocomplete.holder import ModelHolder
from autocomplete.metrics import ServiceMetrics
from autocomplete.service import Service
from autocomplete.websocket import serve_connection
from sessions.guard import GuardedSessionStore
from sessions.memory import MemorySessionStore


def make_service(store: MemorySessionStore | None = None, **config_values: Any) -> Service:
    config = ServeConfig(**config_values)
    metrics = ServiceMetrics()
    backing = MemorySessionStore() if store is None else store  # an empty store is falsy (len 0)
    sessions = GuardedSessionStore(backing, timeout=None, on_error=metrics.store_error)
    return Service(
        ModelHolder(EchoCompleter()), sessions, config, metrics, Service.limits_of(config), ready=True
    )


class ClosedByServerTransport:
    """An ASGI transport that closes the connection itself after ``sends_before_close`` frames,
    as uvicorn does when a keepalive ping goes unanswered; later sends fail like uvicorn's do."""

    def __init__(self, frames: list[dict[str, Any]], sends_before_close: int, error: Exception) -> None:
        self.incoming = [{"type": "websocket.connect"}]
        self.incoming += [{"type": "websocket.receive", "text": json.dumps(f)} for f in frames]
        self.incoming.append({"type": "websocket.disconnect", "code": 1011})
        self.sends_before_close = sends_before_close
        self.error = error
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        await asyncio.sleep(0)
        return self.incoming.pop(0)

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.send":
            if self.sends_before_close == 0:
                raise self.error
            self.sends_before_close -= 1
        self.sent.append(message)


def websocket_over(transport: ClosedByServerTransport) -> WebSocket:
    scope = {"type": "websocket", "path": "/v1/ws", "headers": [], "query_string": b"", "state": {}}
    return WebSocket(scope, transport.receive, transport.send)


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("Unexpected ASGI message 'websocket.send', after sending 'websocket.close'."),
        ConnectionResetError("Connection lost"),
    ],
    ids=["closed-by-uvicorn", "connection-lost"],
)
@pytest.mark.parametrize("sends_before_close", [0, 1], ids=["before-hello", "after-hello"])
async def test_a_connection_closed_by_the_transport_ends_quietly(
    error: Exception, sends_before_close: int, caplog: pytest.LogCaptureFixture
) -> None:
    service = make_service()
    frames = [{"type": "input", "seq": 1, "text": "ro"}, {"type": "input", "seq": 2, "text": "ros"}]
    transport = ClosedByServerTransport(frames, sends_before_close, error)
    with caplog.at_level(logging.DEBUG):
        await asyncio.wait_for(serve_connection(websocket_over(transport), service), timeout=5)
    assert transport.sent[0]["type"] == "websocket.accept"
    assert len([m for m in transport.sent if m["type"] == "websocket.send"]) == sends_before_close
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert b"autocomplete_open_connections 0.0" in service.metrics.render()


async def test_a_healthy_transport_gets_every_answer() -> None:
    service = make_service()
    frames = [{"type": "input", "seq": 1, "text": "ro"}, {"type": "submit", "text": "roses"}]
    transport = ClosedByServerTransport(frames, sends_before_close=10, error=AssertionError("unused"))
    await asyncio.wait_for(serve_connection(websocket_over(transport), service), timeout=5)
    answers = [json.loads(m["text"]) for m in transport.sent if m["type"] == "websocket.send"]
    assert [a["type"] for a in answers][0] == "hello"
    assert {"completions", "submitted"} <= {a["type"] for a in answers}


class GatedStore(MemorySessionStore):
    """Counts trail reads; while ``gate`` is closed a read waits for it (a slow Redis)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def previous(self, session_id: str, n: int) -> list[str]:
        self.reads += 1
        await self.gate.wait()
        return await super().previous(session_id, n)


class Conversation:
    """A client that sends one frame at a time and reads the server's answers as they come."""

    def __init__(self, service: Service, session: str) -> None:
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outgoing: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.incoming.put_nowait({"type": "websocket.connect"})
        query = f"session={session}".encode()
        scope = {"type": "websocket", "path": "/v1/ws", "headers": [], "query_string": query, "state": {}}
        websocket = WebSocket(scope, self.incoming.get, self._send)
        self.server = asyncio.create_task(serve_connection(websocket, service))

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.send":
            await self.outgoing.put(json.loads(message["text"]))

    async def answer(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.outgoing.get(), timeout=5)

    async def ask(self, frame: dict[str, Any]) -> dict[str, Any]:
        await self.incoming.put({"type": "websocket.receive", "text": json.dumps(frame)})
        return await self.answer()

    async def close(self) -> None:
        await self.incoming.put({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(self.server, timeout=5)


async def resumed(store: MemorySessionStore, *trail: str) -> str:
    session = await store.resume(None)
    for query in trail:
        await store.record(session, query)
    return session


def context_of(answer: dict[str, Any]) -> str:
    assert answer["type"] == "completions", answer
    return answer["items"][0]["text"].split(" after ", 1)[1]


async def test_after_its_own_submit_a_connection_knows_its_context_without_reading_the_store() -> None:
    store = GatedStore()
    session = await resumed(store, "garden hose")
    service = make_service(store, context_refresh_seconds=3600.0)
    talk = Conversation(service, session)
    assert (await talk.answer())["session"] == session
    assert context_of(await talk.ask({"type": "input", "seq": 1, "text": "ro"})) == "garden hose"
    assert store.reads == 1  # the resumed session's context, read at its first input
    submitted = await talk.ask({"type": "submit", "text": "roses"})
    assert submitted == {"type": "submitted", "text": "roses", "stored": True}
    for seq in (2, 3, 4):
        assert context_of(await talk.ask({"type": "input", "seq": seq, "text": "x"})) == "roses"
    await talk.close()
    assert store.reads == 1
    assert await store.previous(session, 2) == ["garden hose", "roses"]
    assert b"autocomplete_session_store_errors_total{" not in service.metrics.render()


async def test_a_fresh_session_answers_its_first_input_without_reading_the_store() -> None:
    store = GatedStore()
    service = make_service(store, context_refresh_seconds=3600.0)
    talk = Conversation(service, "never-issued")
    assert (await talk.answer())["type"] == "hello"
    assert context_of(await talk.ask({"type": "input", "seq": 1, "text": "ro"})) == "nothing"
    await talk.close()
    assert store.reads == 0


async def test_a_slow_refresh_never_delays_an_answer_and_its_context_is_used_once_read() -> None:
    store = GatedStore()
    session = await resumed(store, "garden hose")
    talk = Conversation(make_service(store, context_refresh_seconds=0.0), session)
    await talk.answer()
    assert context_of(await talk.ask({"type": "input", "seq": 1, "text": "x"})) == "garden hose"
    store.gate.clear()  # the store hangs; the guard has no timeout to cut it short
    await store.record(session, "tulips")  # another tab of the session
    for seq in (2, 3):  # answered at once, with the context already known
        assert context_of(await talk.ask({"type": "input", "seq": seq, "text": "x"})) == "garden hose"
    assert store.reads == 2  # one refresh in flight at a time
    store.gate.set()
    assert context_of(await talk.ask({"type": "input", "seq": 4, "text": "x"})) == "tulips"
    await talk.close()


async def test_a_client_that_takes_no_answers_is_dropped_after_the_send_timeout() -> None:
    service = make_service(send_timeout_seconds=0.2)
    incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    incoming.put_nowait({"type": "websocket.connect"})
    incoming.put_nowait(
        {"type": "websocket.receive", "text": json.dumps({"type": "input", "seq": 1, "text": "a"})}
    )
    sent: list[dict[str, Any]] = []
    never = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "websocket.send" and len(sent) > 2:
            await never.wait()  # the transport stays paused: the client reads nothing

    scope = {"type": "websocket", "path": "/v1/ws", "headers": [], "query_string": b"", "state": {}}
    await asyncio.wait_for(serve_connection(WebSocket(scope, incoming.get, send), service), timeout=5)
    assert [m["type"] for m in sent][:2] == ["websocket.accept", "websocket.send"]  # hello, then stuck
    assert b'autocomplete_connections_refused_total{reason="not_reading"} 1.0' in service.metrics.render()
    assert service.client_limits.open == 0  # its place is free again
