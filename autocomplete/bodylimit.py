"""Request bodies over ``[serve] max_frame_bytes``: refused with 413 and the service's JSON error.

Starlette's own ``max_body_size`` answers a body declared too large with a plain-text
``Content Too Large``, replacing whatever the handlers answered (schemathesis found it: the API
promises a JSON error body on every 4xx). This middleware refuses a declared ``Content-Length``
over the limit before the app runs, and a body that grows over it while streamed (no
``Content-Length``) with an ``HTTPException(413)`` that the app's own handler turns into JSON.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette import status
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from autocomplete import protocol


class BodyLimit:
    """ASGI middleware: at most ``max_bytes`` of HTTP request body; the paths of ``larger`` (the
    admin blocklist) have their own limits."""

    def __init__(self, app: ASGIApp, max_bytes: int, larger: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.larger.get(scope.get("path", ""), self.max_bytes)
        refusal = f"request bodies are limited to {max_bytes} bytes"
        declared = _content_length(scope)
        if declared is not None and declared > max_bytes:
            body = protocol.error("too_big", refusal)
            await JSONResponse(body, status_code=status.HTTP_413_CONTENT_TOO_LARGE)(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, refusal)
            return message

        await self.app(scope, limited, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
