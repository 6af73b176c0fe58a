"""Request bodies over ``[serve] max_frame_bytes``: refused with 413 and the service's JSON error.

Starlette's own ``max_body_size`` answers a body declared too large with a plain-text
``Content Too Large``, replacing whatever the handlers answered (schemathesis found it: the API
promises a JSON error body on every 4xx). This middleware refuses a declared ``Content-Length``
over the limit before the app runs, and a body that grows over it while streamed (no
``Content-Length``) with an ``HTTPException(413)`` that the app's own handler turns into JSON.
"""

from __future__ import annotations

from starlette import status
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from autocomplete import protocol


class BodyLimit:
    """ASGI middleware: at most ``max_bytes`` of HTTP request body."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.message = f"request bodies are limited to {max_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            body = protocol.error("too_big", self.message)
            await JSONResponse(body, status_code=status.HTTP_413_CONTENT_TOO_LARGE)(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, self.message)
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
