"""Cross-origin HTTP for the widget's fallback (``GET /v1/complete``, ``POST /v1/submit``).

The same allow-list as the websocket's ``Origin`` check (``serve.allowed_origins``): a listed
origin gets Starlette's CORS answers, with credentials since the widget sends its session cookie;
any other origin, and the same origin, get the plain app with no CORS header at all.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send


def origin_listed(origin: str, allowed: Collection[str]) -> bool:
    """``origin`` (an ``Origin`` header) is in ``allowed``, or ``allowed`` holds ``"*"``."""
    return "*" in allowed or origin.rstrip("/") in allowed


class ListedOriginsCORS:
    """ASGI middleware: CORS for requests from an origin of ``allowed``, nothing for the rest."""

    def __init__(self, app: ASGIApp, allowed: Collection[str]) -> None:
        self.app = app
        self.allowed = tuple(origin.rstrip("/") for origin in allowed)
        self.cors = CORSMiddleware(
            app,
            allow_origins=self.allowed,
            allow_methods=("GET", "POST", "DELETE"),
            allow_headers=("Content-Type", "X-Autocomplete-Session", "X-Autocomplete-User"),
            allow_credentials=True,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            origin = Headers(scope=scope).get("origin")
            if origin is not None and origin_listed(origin, self.allowed):
                await self.cors(scope, receive, send)
                return
        await self.app(scope, receive, send)
