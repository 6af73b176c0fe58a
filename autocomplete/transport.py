"""uvicorn's HTTP and websocket protocols with the bounds they leave to the application.

uvicorn (httptools) reads headers without a size or time limit, holds a connection that never
sends a byte forever, and queues the pong of every ping a client sends whether or not the client
reads them. These subclasses add, from ``serve.*``:

- ``max_header_bytes``: a request head larger than this is answered 431 and the connection closed;
- ``header_timeout_seconds``: a request head not complete this long after the connection opened
  (or the previous response) is answered 408 and closed; ``body_timeout_seconds`` likewise for a
  body once its head is in;
- ``max_connections_per_ip``: TCP connections per peer address (trusted proxies excepted); more
  are answered 503 and closed before anything is read;
- ``handshake_timeout_seconds``: a websocket that is not accepted this long after its upgrade
  request is dropped;
- ``max_outgoing_bytes``: a websocket whose unsent data (pongs included) passes this is dropped:
  its client does not read; so is one still open (its unsent data never taken)
  ``send_timeout_seconds`` after the application is done with it.

Invalid UTF-8 in a text frame closes the connection with 1007 and is logged at DEBUG (uvicorn logs
a traceback at ERROR for each). Settings come from the ``service`` in the lifespan state; without
one (no lifespan yet) the protocols behave as uvicorn's own.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

if TYPE_CHECKING:
    from autocomplete.service import Service

logger = logging.getLogger("autocomplete.transport")


def _plain(status: bytes, message: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
        b"content-length: " + str(len(message)).encode() + b"\r\n\r\n" + message
    )


class LimitedHttpProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._service: Service | None = self.app_state.get("service")
        self._peer: str | None = None
        self._counted = False
        self._upgraded = False
        self._head_bytes = 0
        self._in_head = True
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        service = self._service
        if service is None:
            return
        self._peer = self.client[0] if self.client else None
        if not service.client_limits.acquire_peer(self._peer):
            service.refused("per_ip_tcp")
            transport.write(_plain(b"503 Service Unavailable", b"too many connections from your address"))
            transport.close()
            return
        self._counted = True
        self._arm(service.config.header_timeout_seconds, "header_timeout")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._counted and self._service is not None:
            self._service.client_limits.release_peer(self._peer)
            self._counted = False
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        service = self._service
        if service is not None and self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > service.config.max_header_bytes:
                service.refused("header_too_big")
                self._disarm()
                self.transport.write(_plain(b"431 Request Header Fields Too Large", b"request head too big"))
                self.transport.close()
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._in_head = True
        if self._service is not None and self._timer is None:
            self._arm(self._service.config.header_timeout_seconds, "header_timeout")

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm()
        super().on_headers_complete()
        service = self._service
        if service is not None and not self.parser.should_upgrade():
            length = dict(self.headers).get(b"content-length", b"0")
            chunked = b"chunked" in dict(self.headers).get(b"transfer-encoding", b"")
            if chunked or length.strip() not in (b"", b"0"):
                self._arm(service.config.body_timeout_seconds, "body_timeout")

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()
        super().handle_websocket_upgrade()
        protocol = self.transport.get_protocol()
        if isinstance(protocol, LimitedWebSocketProtocol) and self._counted:
            protocol.peer_counted = self._peer  # released when the websocket goes
            self._counted = False
        self._upgraded = True

    def _arm(self, seconds: float, reason: str) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, self._timed_out, reason)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self, reason: str) -> None:
        self._timer = None
        if self.transport.is_closing() or self._upgraded:
            return
        if self._service is not None:
            self._service.refused(reason)
        if self.cycle is None or self.cycle.response_complete or not self.cycle.response_started:
            self.transport.write(_plain(b"408 Request Timeout", b"request not received in time"))
        self.transport.close()


class LimitedWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._service: Service | None = self.app_state.get("service")
        self.peer_counted: str | None = None
        self._handshake_timer: asyncio.TimerHandle | None = None
        self._bad_utf8_logged = False

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        if self._service is not None:
            seconds = self._service.config.handshake_timeout_seconds
            self._handshake_timer = self.loop.call_later(seconds, self._handshake_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None
        if self.peer_counted is not None and self._service is not None:
            self._service.client_limits.release_peer(self.peer_counted)
            self.peer_counted = None
        super().connection_lost(exc)

    def _handshake_timed_out(self) -> None:
        self._handshake_timer = None
        if not self.handshake_complete and not self.transport.is_closing():
            if self._service is not None:
                self._service.refused("handshake_timeout")
            self.transport.abort()

    def on_task_complete(self, task: asyncio.Task[None]) -> None:
        super().on_task_complete(task)
        # the app is done with the connection; a client that reads nothing would keep a closing
        # transport (its unsent data, its socket) forever
        if not self.transport.is_closing() or self.transport.get_write_buffer_size() > 0:
            grace = self._service.config.send_timeout_seconds if self._service else self.close_timeout
            self.loop.call_later(grace, self._abort_if_open)

    def _abort_if_open(self) -> None:
        if not self.disconnected:
            self.transport.abort()

    def handle_ping(self) -> None:
        super().handle_ping()
        self._check_outgoing()

    def _check_outgoing(self) -> None:
        service = self._service
        if service is None or self.transport.is_closing():
            return
        if self.transport.get_write_buffer_size() > service.config.max_outgoing_bytes:
            service.refused("outgoing_queue_full")
            logger.debug("websocket dropped: its client does not read what it is sent")
            self.transport.abort()

    def send_receive_event_to_app(self) -> None:
        if self.curr_msg_data_type == "text" and not self.close_sent:
            data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
            try:
                bytes(data).decode()
            except UnicodeDecodeError:
                self.frames = []
                if not self._bad_utf8_logged:
                    self._bad_utf8_logged = True
                    logger.debug("websocket closed 1007: a text frame was not valid UTF-8")
                if self._service is not None:
                    self._service.metrics.errors.labels("invalid_utf8").inc()
                self.conn.send_close(1007, "text frames must be valid UTF-8")
                self.handle_parser_exception()
                return
        super().send_receive_event_to_app()
