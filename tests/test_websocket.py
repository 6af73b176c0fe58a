"""``serve_connection`` driven through raw ASGI messages: the transport failing under the server."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from serving_stubs import EchoCompleter
from starlette.websockets import WebSocket

from autocomplete.config import ServeConfig
from autocomplete.metrics import ServiceMetrics
from autocomplete.service import Service
from autocomplete.websocket import serve_connection
from sessions.guard import GuardedSessionStore
from sessions.memory import MemorySessionStore


def make_service() -> Service:
    config = ServeConfig()
    sessions = GuardedSessionStore(MemorySessionStore())
    return Service(EchoCompleter(), sessions, config, ServiceMetrics(), Service.limits_of(config), ready=True)


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
