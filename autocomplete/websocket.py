"""The ``/v1/ws`` keystroke stream: one reader task queues parsed frames, one loop answers them.

Every input gets exactly one answer, in arrival order: its completions, an error, or
``superseded`` when a newer input of the same connection is already waiting (a fast typist never
waits for stale work). Completion is synchronous CPU work done in the event loop; the reader runs
whenever the loop yields, so frames that arrived meanwhile are queued before the next answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from starlette import status
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from autocomplete import protocol
from autocomplete.candidates import NO_HISTORY
from autocomplete.config import ServeConfig
from autocomplete.cors import origin_listed
from autocomplete.history import Identity, UserHistory
from autocomplete.limits import TokenBucket
from autocomplete.protocol import (
    ForgetMessage,
    FrameTooBig,
    InputMessage,
    ProtocolError,
    RecentMessage,
    SubmitMessage,
)
from autocomplete.service import Service
from sessions.guard import Stored, Submit

logger = logging.getLogger("autocomplete.websocket")


@dataclasses.dataclass(frozen=True, slots=True)
class _Close:
    code: int
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class _Stored:
    """A pending submit that the outbox has since written (or given up): the text as the client
    sent it, the query as stored."""

    text: str
    query: str
    stored: bool


_GONE = object()  # the client disconnected
_Item = (
    InputMessage | SubmitMessage | RecentMessage | ForgetMessage | ProtocolError | _Close | _Stored | object
)
SUBPROTOCOL = "autocomplete.v1"
SESSION_SUBPROTOCOL = "autocomplete.session."
USER_SUBPROTOCOL = "autocomplete.user."
HISTORY_OFF = ("false", "0", "off", "no")


class _Inbox:
    """A FIFO of parsed frames that knows how many inputs are waiting.

    Bounded: at ``limit`` unanswered frames the reader stops reading (``room``), so a client that
    does not read its answers is pushed back by TCP instead of filling the server's memory.
    """

    def __init__(self, limit: int = 256) -> None:
        self._items: deque[_Item] = deque()
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self.limit = limit
        self.waiting_inputs = 0

    @property
    def has_room(self) -> bool:
        return self._room.is_set()

    def put(self, item: _Item) -> None:
        self._items.append(item)
        if isinstance(item, InputMessage):
            self.waiting_inputs += 1
        if len(self._items) >= self.limit:
            self._room.clear()
        self._ready.set()

    async def room(self) -> None:
        await self._room.wait()

    async def get(self) -> _Item:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        item = self._items.popleft()
        if len(self._items) < self.limit:
            self._room.set()
        if isinstance(item, InputMessage):
            self.waiting_inputs -= 1
        return item


class _IdleTimer:
    """Calls ``on_idle`` once no frame came for ``idle`` seconds.

    A frame only stamps the time: one timer per connection, re-armed when it fires early, instead
    of a timer created and cancelled around every frame. While ``paused`` (the reader waits for
    room in the inbox, so it is not reading) the connection does not count as idle.
    """

    def __init__(self, idle: float, on_idle: Callable[[], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._idle = idle
        self._on_idle = on_idle
        self.last = self._loop.time()
        self.paused = False
        self._handle = self._loop.call_later(idle, self._check)

    def stamp(self) -> None:
        self.last = self._loop.time()

    def _check(self) -> None:
        now = self._loop.time()
        if self.paused:
            self.last = now
        due = self.last + self._idle
        if now < due:
            self._handle = self._loop.call_at(due, self._check)
        else:
            self._on_idle()

    def cancel(self) -> None:
        self._handle.cancel()


class _Context:
    """The session's recent queries as this connection knows them: read from the session store,
    then kept up to date by this connection's own submits without asking the store again.

    The store is read at the first input of a connection that resumed a session (awaited, within
    the store's timeout), then again once the context is older than
    ``serve.context_refresh_seconds`` (another tab or worker of the session may have recorded a
    query meanwhile). Such a refresh never delays an answer: it runs in the background, and an input
    that comes before it is done is answered with the context the connection already has; a store
    that answers at once (the in-process one) is used by that very input. A refresh that started
    before this connection's own submit is dropped (it cannot know the submitted query). A failed
    read keeps the context and is tried again after the refresh interval; a submit the store did
    not take is not context (as for another tab), and the store is asked again at the next input.
    """

    def __init__(self, service: Service, session: str, *, fresh: bool) -> None:
        self._sessions = service.sessions
        self.session = session
        self._queries = service.config.context_queries
        self._refresh = service.config.context_refresh_seconds
        self._previous: list[str] = []
        self._first_read = not fresh  # a fresh session has no queries yet: nothing to read
        self._due = time.monotonic() + self._refresh if fresh else -math.inf
        self._version = 0  # counts this connection's own submits
        self._pending: asyncio.Task[None] | None = None

    async def previous(self) -> list[str]:
        if self._pending is None and time.monotonic() >= self._due:
            self._pending = asyncio.create_task(self._read(self._version))
            if self._first_read:
                self._first_read = False
                await self._pending
            else:
                await asyncio.sleep(0)  # let a store that answers at once answer this input
        return self._previous

    def submitted(self, query: str, stored: Stored) -> None:
        """This connection's own submit: once stored, the new most recent query, known without a
        read; one the store did not take leaves the context as it was and asks the store again."""
        self._version += 1
        if stored is True:
            self._previous = (self._previous + [query])[-self._queries :] if self._queries > 0 else []
            self._first_read = False
            self._due = time.monotonic() + self._refresh
        else:
            self._due = -math.inf

    def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()

    async def _read(self, version: int) -> None:
        try:
            found = await self._sessions.try_previous(self.session, self._queries)
            if found is not None and version == self._version:
                self._previous = found
            if version == self._version:
                self._due = time.monotonic() + self._refresh
        finally:
            self._pending = None


def origin_allowed(websocket: WebSocket, allowed: tuple[str, ...]) -> bool:
    """Browsers always send ``Origin``: it must be listed, or same-origin when the list is empty."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True  # not a browser: nothing to forge
    if allowed:
        return origin_listed(origin, allowed)
    parts = urlsplit(origin)
    host = websocket.headers.get("host", "").lower()
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host


def requested_session(websocket: WebSocket, cookie_name: str) -> tuple[str | None, bool]:
    """The session id the client asks for and whether it came from the cookie.

    In order: the ``autocomplete.session.<id>`` subprotocol (how the widget sends it: a header,
    never the URL), ``?session=`` (non-browser clients), the cookie."""
    for offered in websocket.scope.get("subprotocols", ()):
        if offered.startswith(SESSION_SUBPROTOCOL):
            return offered[len(SESSION_SUBPROTOCOL) :], False
    from_url = websocket.query_params.get("session")
    if from_url:
        return from_url, False
    cookie = websocket.cookies.get(cookie_name)
    return cookie, cookie is not None


def requested_identity(websocket: WebSocket, service: Service) -> Identity:
    """Whose history the connection reads and writes: the signed user key of the
    ``autocomplete.user.<key>`` subprotocol (the widget's way) or ``?user=`` (other clients), else
    the browser-id cookie; nobody with ``?history=false``."""
    params = websocket.query_params
    signed = params.get("user")
    for offered in websocket.scope.get("subprotocols", ()):
        if offered.startswith(USER_SUBPROTOCOL):
            signed = offered[len(USER_SUBPROTOCOL) :]
    wanted = params.get("history", "").lower() not in HISTORY_OFF
    cookie = websocket.cookies.get(service.config.history_cookie_name)
    return service.histories.identify(signed, cookie, wanted, issue=True)


async def serve_connection(websocket: WebSocket, service: Service) -> None:
    """Accept, say hello, answer frames until the client leaves, the idle timeout, or a too-big frame.

    Refusals are sent after accepting, so that a browser's ``close`` event shows their code and
    reason: 1008 for an ``Origin`` that is not allowed, 1013 when this worker, or the client's
    address, holds as many connections as it may."""
    config = service.config
    subprotocol = SUBPROTOCOL if SUBPROTOCOL in websocket.scope.get("subprotocols", ()) else None
    if not origin_allowed(websocket, config.allowed_origins):
        service.metrics.errors.labels("origin_not_allowed").inc()
        logger.debug("websocket refused: origin not allowed")
        await websocket.accept(subprotocol=subprotocol)
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason="origin not allowed")
        return
    limits = service.client_limits
    client = websocket.client.host if websocket.client else None
    address = limits.address(client, websocket.headers.get("x-forwarded-for"))
    refused = limits.acquire(address)
    if refused is not None:
        service.refused("too_many" if "server" in refused else "per_ip")
        await websocket.accept(subprotocol=subprotocol)
        await websocket.close(code=status.WS_1013_TRY_AGAIN_LATER, reason=refused)
        return
    try:
        requested, from_cookie = requested_session(websocket, config.cookie_name)
        session = await service.sessions.resume(requested)
        # a cookie is set for a fresh session or refreshed for the cookie's own, never for an id
        # the client brought some other way (a link must not give its id to a browser)
        fresh = session != requested
        headers = cookie_headers(config, session) if fresh or from_cookie else []
        identity = requested_identity(websocket, service)
        if identity.cookie is not None:
            headers += browser_cookie_headers(config, identity.cookie)
        await websocket.accept(subprotocol=subprotocol, headers=headers)
        service.metrics.connections.inc()
        history = service.histories.open(identity.user)
        try:
            await _serve(websocket, service, address, _Context(service, session, fresh=fresh), history)
        finally:
            history.close()
            service.metrics.connections.dec()
    finally:
        limits.release(address)


async def _serve(
    websocket: WebSocket, service: Service, address: str, context: _Context, history: UserHistory
) -> None:
    inbox = _Inbox()
    reader = asyncio.create_task(_read(websocket, service, address, inbox))
    try:
        await _send(websocket, service, protocol.hello(context.session))
        await _answer(websocket, service, context, history, inbox)
    except WebSocketDisconnect:
        pass
    except TimeoutError:
        service.refused("not_reading")
        logger.debug("websocket dropped: its client did not read its answers")
    except (RuntimeError, OSError) as exc:  # uvicorn closed the transport itself (keepalive timeout)
        logger.debug("websocket transport closed under the server: %s", type(exc).__name__)
    finally:
        reader.cancel()


def cookie_headers(config: ServeConfig, session: str) -> list[tuple[bytes, bytes]]:
    response = Response()
    set_session_cookie(response, config, session)
    return [(name, value) for name, value in response.raw_headers if name == b"set-cookie"]


def browser_cookie_headers(config: ServeConfig, browser_id: str) -> list[tuple[bytes, bytes]]:
    response = Response()
    set_browser_cookie(response, config, browser_id)
    return [(name, value) for name, value in response.raw_headers if name == b"set-cookie"]


def set_browser_cookie(response: Response, config: ServeConfig, browser_id: str) -> None:
    """The long-lived first-party cookie that names the browser's history when the page passes
    no user key (HttpOnly: the page's scripts never see it)."""
    response.set_cookie(
        config.history_cookie_name,
        browser_id,
        max_age=config.history_cookie_max_age_days * 86400,
        httponly=True,
        samesite="lax",
        secure=config.cookie_secure,
        path="/",
    )


def set_session_cookie(response: Response, config: ServeConfig, session: str) -> None:
    response.set_cookie(
        config.cookie_name,
        session,
        max_age=int(config.session_ttl_seconds),
        httponly=True,
        samesite="lax",
        secure=config.cookie_secure,
        path="/",
    )


async def _read(websocket: WebSocket, service: Service, address: str, inbox: _Inbox) -> None:
    reader = asyncio.current_task()
    assert reader is not None

    def on_idle() -> None:
        inbox.put(_Close(status.WS_1000_NORMAL_CLOSURE, "idle timeout"))
        reader.cancel()

    timer = _IdleTimer(service.config.idle_timeout_seconds, on_idle)
    try:
        await _read_frames(websocket, service, address, inbox, timer)
    except (WebSocketDisconnect, RuntimeError, OSError):  # the transport went away under us
        inbox.put(_GONE)
    finally:
        timer.cancel()


def _seq_of(frame: str | bytes | None) -> int | None:
    """The ``seq`` of a frame that is refused unread (rate limited), if it has a valid one."""
    if not isinstance(frame, str):
        return None
    try:
        data = json.loads(frame)
    except (ValueError, RecursionError):
        return None
    seq = data.get("seq") if isinstance(data, dict) else None
    return (
        seq if isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq <= protocol.MAX_SEQ else None
    )


async def _wait_for(bucket: TokenBucket) -> None:
    """Sleep until ``bucket`` has a token, and take it."""
    while not bucket.take(time.monotonic()):
        await asyncio.sleep(max(bucket.wait(time.monotonic()), 0.001))


async def _read_frames(
    websocket: WebSocket, service: Service, address: str, inbox: _Inbox, timer: _IdleTimer
) -> None:
    """Every frame, well-formed or not, spends the connection's and its address's budget
    (``max_inputs_per_second``, ``max_inputs_per_second_per_ip``). Over budget, frames are answered
    ``rate_limited`` up to as many again per second; past that the reader stops reading until the
    budget allows the next one (TCP pushes back on the client), so a flood costs a bounded amount
    of work whatever it holds."""
    limits = service.limits
    rate = service.config.max_inputs_per_second
    inputs, refusals = TokenBucket(rate), TokenBucket(rate)
    address_inputs, address_refusals = service.client_limits.buckets(address)
    logged = False
    while True:
        if not inbox.has_room:
            timer.paused = True
            await inbox.room()
            timer.paused = False
        message = await websocket.receive()
        timer.stamp()
        if message["type"] == "websocket.disconnect":
            inbox.put(_GONE)
            return
        frame = message.get("text", message.get("bytes"))
        now = time.monotonic()
        if not (inputs.take(now) and address_inputs.take(now)):
            if refusals.take(now) and address_refusals.take(now):
                inbox.put(
                    ProtocolError("rate_limited", "too many frames per second; slow down", _seq_of(frame))
                )
                continue
            timer.paused = True  # over budget twice over: stop reading until the budget allows one
            await _wait_for(inputs)
            async with service.client_limits.gate(address):  # one waiter per address at a time
                await _wait_for(address_inputs)
            timer.paused = False
        try:
            parsed = protocol.parse_client_frame(frame, limits)
        except FrameTooBig as exc:
            inbox.put(exc)
            inbox.put(_Close(FrameTooBig.close_code, exc.message))
            return
        except ProtocolError as exc:
            if not logged:
                logged = True  # once per connection: a flood of bad frames is not a flood of lines
                logger.debug("websocket frame refused: %s", exc.code)
            inbox.put(exc)
            continue
        inbox.put(parsed)


async def _answer(
    websocket: WebSocket, service: Service, context: _Context, history: UserHistory, inbox: _Inbox
) -> None:
    try:
        await _answer_frames(websocket, service, context, history, inbox)
    finally:
        context.close()


async def _answer_frames(
    websocket: WebSocket, service: Service, context: _Context, history: UserHistory, inbox: _Inbox
) -> None:
    metrics = service.metrics
    while True:
        item = await inbox.get()
        if isinstance(item, InputMessage):
            metrics.websocket_inputs.inc()
            await asyncio.sleep(0)  # let the reader queue what arrived while we were busy
            previous = [] if inbox.waiting_inputs else await context.previous()
            past = NO_HISTORY if inbox.waiting_inputs else await history.current()
            if inbox.waiting_inputs:
                metrics.superseded.inc()
                await _send(websocket, service, protocol.superseded(item.seq))
                continue
            try:
                found, ms = service.complete(item.text, previous, item.k, past)
            except Exception as exc:
                # the error class only: a message or traceback may quote the typed text
                logger.error("the completer failed on an input: %s", type(exc).__name__)
                logger.debug("the completer's traceback", exc_info=True)
                metrics.errors.labels("internal").inc()
                failure = protocol.error("internal", "the server could not complete this input", item.seq)
                await _send(websocket, service, failure)
                continue
            await _send(websocket, service, protocol.completions(item.seq, item.text, found, ms))
        elif isinstance(item, SubmitMessage):
            metrics.websocket_submits.inc()
            if item.rank is not None:
                metrics.chosen_rank.observe(item.rank)
            query = service.normalize_query(item.text)
            submit, _ = await asyncio.gather(  # the history of every open connection of the person too
                service.sessions.record(context.session, query, item.key),
                service.histories.record(history.user, query, item.key),
            )
            context.submitted(query, submit.stored)
            if submit.stored is True:
                service.prepare(query)
            _count_submit(service, submit)
            service.count_live(context.session, query, submit)
            if submit.done is not None:
                submit.done.add_done_callback(_when_written(service, inbox, item.text, query))
            await _send(websocket, service, protocol.submitted(item.text, submit.stored))
        elif isinstance(item, RecentMessage):
            recent = await history.recent(item.k or service.config.k)
            await _send(websocket, service, protocol.recent(item.seq, recent))
        elif isinstance(item, ForgetMessage):
            forget = None if item.query is None else service.normalize_query(item.query)
            metrics.history_forgotten.labels("all" if forget is None else "query").inc()
            done = await service.histories.forget(history.user, forget)
            await _send(websocket, service, protocol.forgotten(item.seq, item.query, done))
        elif isinstance(item, _Stored):
            context.submitted(item.query, item.stored)
            await _send(websocket, service, protocol.stored(item.text, item.stored))
        elif isinstance(item, ProtocolError):
            metrics.errors.labels(item.code).inc()
            await _send(websocket, service, protocol.error(item.code, item.message, item.seq))
        elif isinstance(item, _Close):
            await websocket.close(code=item.code, reason=item.reason)
            return
        else:  # _GONE
            return


def _count_submit(service: Service, submit: Submit) -> None:
    result = "pending" if submit.stored == "pending" else "stored" if submit.stored else "refused"
    service.metrics.outbox_results.labels(result).inc()


def _when_written(
    service: Service, inbox: _Inbox, text: str, query: str
) -> Callable[[asyncio.Future[bool]], None]:
    def done(future: asyncio.Future[bool]) -> None:
        stored = not future.cancelled() and future.result()
        service.metrics.outbox_results.labels("retried" if stored else "given_up").inc()
        inbox.put(_Stored(text, query, stored))

    return done


async def _send(websocket: WebSocket, service: Service, payload: dict[str, Any]) -> None:
    """Send one frame; a client that has not read what it was sent for ``send_timeout_seconds``
    (its transport stays paused) is dropped with :class:`TimeoutError`."""
    async with asyncio.timeout(service.config.send_timeout_seconds):
        await websocket.send_text(protocol.encode(payload))
