"""Requests and websockets whose ``Host`` is not in ``[serve] allowed_hosts``: refused with 400 and
the service's JSON error.

Starlette's ``TrustedHostMiddleware`` answers a plain-text ``Invalid host header``, where the API
promises a JSON error body on every 4xx (schemathesis found it, with a Host of punctuation). The
rules are the same: a pattern is a host name, ``*.example.com`` (any subdomain), or ``*`` (any
Host); the port is ignored; a Host that is not ``name[:port]`` or ``[ipv6][:port]`` is refused.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from starlette import status
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from autocomplete import protocol

_HOST = re.compile(r"(?P<name>\[[0-9A-Fa-f:.]+\]|[^\s:/@\[\]\\?#]+)(?::[0-9]{1,5})?")


def host_name(header: str | None) -> str | None:
    """The lower-cased host name of a ``Host`` header without its port, or None if it is malformed."""
    match = _HOST.fullmatch(header or "")
    return match["name"].lower() if match else None


class AllowedHosts:
    """ASGI middleware: only Host headers that match one of ``allowed`` (patterns checked by
    ``ServeConfig``) reach the app."""

    def __init__(self, app: ASGIApp, allowed: Sequence[str]) -> None:
        self.app = app
        self.exact = frozenset(p.lower() for p in allowed if not p.startswith("*"))
        self.suffixes = tuple(p[1:].lower() for p in allowed if p.startswith("*."))
        self.any = "*" in allowed

    def allows(self, header: str | None) -> bool:
        if self.any:
            return True
        name = host_name(header)
        return name is not None and (name in self.exact or name.endswith(self.suffixes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.allows(Headers(scope=scope).get("host")):
            await self.app(scope, receive, send)
            return
        body = protocol.error("bad_host", "the Host header is not one this server answers for")
        await JSONResponse(body, status_code=status.HTTP_400_BAD_REQUEST)(scope, receive, send)
