"""Helpers for the browser tests: Debian's Chromium under Playwright, a websocket tap, a stub
service, and axe-core.

The tap is an init script that wraps the page's ``WebSocket`` before any page script runs. It
records every connection attempt (with its time) and every frame sent and delivered (in one
timeline), can hold back chosen incoming frames until the test releases them, and can make new
connections fail (to keep the websocket down while the widget answers over HTTP).

The stub service (:class:`StubServer`, uvicorn in a thread) serves the widget's static files and
websockets that behave as no real model does on demand: one that accepts and closes with 1008
(an origin the service refuses), one that answers canned completions with matched spans and
acknowledges submits with ``"stored": false`` or ``"pending"``.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Pages the tests fulfil themselves (page.route) count as public: let them reach the loopback service.
    "--disable-features=LocalNetworkAccessChecks",
]

requires_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="no /usr/bin/chromium: install Debian's chromium (`make chromium`, or apt-get install chromium)",
)

SOCKET_TAP = """
(() => {
  const Native = window.WebSocket;
  const tap = {sent: [], delivered: [], sockets: [], created: [], timeline: [], held: [], hold: null};
  tap.blocked = false;
  tap.release = () => {
    const held = tap.held.splice(0);
    held.forEach((deliver) => deliver());
    return held.length;
  };
  tap.dropAll = () => tap.sockets.forEach((socket) => socket.close(4000, 'dropped by the test'));
  class TappedWebSocket extends Native {
    constructor(url, protocols) {
      super(tap.blocked ? 'ws://127.0.0.1:9/blocked-by-test' : url, protocols);
      tap.sockets.push(this);
      tap.created.push(performance.now());  // ms since the page's navigation
    }
    send(data) {
      const frame = JSON.parse(data);
      tap.sent.push(frame);
      tap.timeline.push(['sent', frame.type, frame.seq ?? null]);
      super.send(data);
    }
    addEventListener(type, listener, options) {
      if (type !== 'message') return super.addEventListener(type, listener, options);
      return super.addEventListener(type, (event) => {
        const frame = JSON.parse(event.data);
        const deliver = () => {
          tap.delivered.push(frame);
          tap.timeline.push(['delivered', frame.type, frame.seq ?? null]);
          listener.call(this, event);
        };
        if (tap.hold && tap.hold(frame)) tap.held.push(deliver);
        else deliver();
      }, options);
    }
  }
  window.WebSocket = TappedWebSocket;
  window.socketTap = tap;
})();
"""


def relative_luminance(rgb: tuple[float, float, float]) -> float:
    """WCAG 2 relative luminance of an sRGB colour with 0-255 channels."""
    linear = [c / 255 / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(foreground: str, background: str) -> float:
    """WCAG 2 contrast ratio of two opaque CSS ``rgb(r, g, b)`` colours as getComputedStyle reports them."""
    lighter, darker = sorted(
        (relative_luminance(parse_rgb(foreground)), relative_luminance(parse_rgb(background))), reverse=True
    )
    return (lighter + 0.05) / (darker + 0.05)


def parse_rgb(color: str) -> tuple[float, float, float]:
    channels = color[color.index("(") + 1 : color.index(")")].replace(",", " ").split()
    if len(channels) > 3 and float(channels[-1].lstrip("/")) != 1:
        raise ValueError(f"{color} is translucent; compare it against what lies beneath it instead")
    return float(channels[0]), float(channels[1]), float(channels[2])


# ---------------------------------------------------------------- stub service

STATIC_DIR = Path(__file__).resolve().parent.parent / "autocomplete" / "static"
STUB_SESSION = "stub-session"
REFUSAL_REASON = "origin not allowed"


def canned_items(text: str) -> list[dict[str, Any]]:
    """Completions of ``text`` as a typo-tolerant service would send them."""
    return [
        {"text": f"{text} reel", "score": 0.9},  # no span: highlighted by the typed prefix
        {"text": f"garden {text} fitting", "score": 0.8, "matched": [7, 7 + len(text)]},
        {"text": "house plants", "score": 0.7, "matched": [0, 5], "corrected": True},
        {"text": f"{text} span out of range", "score": 0.6, "matched": [3, 999]},
    ]


def stub_app() -> Starlette:
    """``/refuse/v1/ws`` accepts then closes with 1008; ``/canned/v1/ws`` and ``/canned/v1/submit``
    answer canned completions and acknowledge a submit with ``stored: false`` (``"pending"`` for a
    text starting with "pending") on the websocket and ``stored: true`` over HTTP."""

    def subprotocol(websocket: WebSocket) -> str | None:
        """The widget offers ``autocomplete.v1`` (and its session): a browser drops a connection
        whose server selects none of the offered subprotocols, so the stub selects it as ours does."""
        return "autocomplete.v1" if "autocomplete.v1" in websocket.scope.get("subprotocols", ()) else None

    async def refuse(websocket: WebSocket) -> None:
        await websocket.accept(subprotocol=subprotocol(websocket))
        await websocket.close(code=1008, reason=REFUSAL_REASON)

    async def canned(websocket: WebSocket) -> None:
        await websocket.accept(subprotocol=subprotocol(websocket))
        await websocket.send_json({"type": "hello", "session": STUB_SESSION, "protocol": 1})
        while True:
            try:
                frame = await websocket.receive_json()
            except WebSocketDisconnect:
                return
            app.state.frames.append(frame)
            if frame.get("type") == "input":
                answer = {"type": "completions", "seq": frame["seq"], "text": frame["text"], "ms": 0.1}
                await websocket.send_json(answer | {"items": canned_items(frame["text"])})
            elif frame.get("type") == "submit":
                stored: bool | str = "pending" if frame["text"].startswith("pending") else False
                await websocket.send_json({"type": "submitted", "text": frame["text"], "stored": stored})

    async def submit(request: Request) -> JSONResponse:
        body = await request.json()
        app.state.posts.append(body)
        return JSONResponse(
            {"type": "submitted", "text": body["text"], "stored": True, "session": STUB_SESSION}
        )

    app = Starlette(
        routes=[
            WebSocketRoute("/refuse/v1/ws", refuse),
            WebSocketRoute("/canned/v1/ws", canned),
            Route("/canned/v1/submit", submit, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC_DIR)),
        ]
    )
    app.state.frames = []
    app.state.posts = []
    return app


class StubServer:
    """:func:`stub_app` served by uvicorn in a thread on a free loopback port."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = stub_app()
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> StubServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the stub service did not start within 10 s")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


# ---------------------------------------------------------------- axe-core

JS_DIR = Path(__file__).resolve().parent / "js"
AXE_SCRIPT = JS_DIR / "node_modules" / "axe-core" / "axe.min.js"


def axe_source() -> str:
    """axe-core's browser script, installed from tests/js/package-lock.json (`make axe`) if missing."""
    if not AXE_SCRIPT.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("no npm to install axe-core: apt-get install npm, then `make axe`")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, check=True, capture_output=True)
    return AXE_SCRIPT.read_text()


def axe_violations(page: Any, source: str) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now: rule id, impact and the offending elements."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(content=source)
    found = page.evaluate("axe.run(document, {resultTypes: ['violations']}).then((r) => r.violations)")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [json.dumps(n["target"]) for n in v["nodes"]]}
        for v in found
    ]
