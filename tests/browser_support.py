"""Helpers for the browser tests: Debian's Chromium under Playwright, and a websocket tap.

The tap is an init script that wraps the page's ``WebSocket`` before any page script runs. It
records every frame sent and delivered, can hold back chosen incoming frames until the test
releases them (to make an old answer arrive after a newer one), and can make new connections
fail (to keep the websocket down while the widget answers over HTTP).
"""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

requires_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="no /usr/bin/chromium: install Debian's chromium (`make chromium`, or apt-get install chromium)",
)

SOCKET_TAP = """
(() => {
  const Native = window.WebSocket;
  const tap = {sent: [], delivered: [], sockets: [], held: [], hold: null, blocked: false};
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
    }
    send(data) {
      tap.sent.push(JSON.parse(data));
      super.send(data);
    }
    addEventListener(type, listener, options) {
      if (type !== 'message') return super.addEventListener(type, listener, options);
      return super.addEventListener(type, (event) => {
        const frame = JSON.parse(event.data);
        const deliver = () => {
          tap.delivered.push(frame);
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
