"""A session store that never stalls or fails a keystroke, and never loses a submit silently.

Wraps any :class:`~sessions.base.SessionStore`. Every call is bounded: reads on the keystroke
path by ``timeout`` seconds, resumes and writes by ``write_timeout`` (``None``: unbounded, for an
in-process store that never waits). A failure or timeout degrades to "no context"
(``previous`` -> ``[]``); ``resume`` keeps an id only if it verifies (:mod:`sessions.ids`), so
a made-up id is never adopted, store or no store.

The guard opens (leaves the store alone for ``retry_after`` seconds, so a dead Redis costs nothing
per keystroke) only on real failures: an error from the store, or calls that kept timing out, none
succeeding in between, for ``retry_after`` seconds (a hung store). A slow call under load, or a
wait for a pooled connection that ran out, costs only that call its answer.

Submits go through an :class:`~sessions.outbox.Outbox`: one tried at once and stored answers
``stored=True``; one the store did not take is queued and retried (``stored="pending"``, its
``done`` future answers later); ``stored=False`` only when the outbox is full. Failures are
counted through ``on_error`` and logged at most once per ``log_interval`` seconds, with the error
class and a session id prefix, never a query or a whole id.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from sessions.base import SessionStore, SessionStoreBusy, SessionStoreError
from sessions.ids import SessionIds, key_prefix
from sessions.outbox import Outbox

logger = logging.getLogger("sessions")
T = TypeVar("T")
Stored = bool | Literal["pending"]
_SUSTAINED_TIMEOUTS = 3  # in a row, and nothing succeeded for retry_after seconds: the store hangs


@dataclasses.dataclass(frozen=True, slots=True)
class Submit:
    """What became of a submit: ``stored`` now, and for a pending one, ``done`` later."""

    stored: Stored
    done: asyncio.Future[bool] | None = None


class StoreGuard:
    """The bounded, circuit-broken calls and the outbox of writes, for any store whose
    ``record(key, query, idempotency_key)`` is its write (sessions, user histories).

    ``what`` names the store in log lines, ``subject`` the kind of key whose 6-character prefix a
    log line may show, ``degraded`` what the service does meanwhile.
    """

    what = "session store"
    subject = "session"
    degraded = "answering without context"
    ops = ""  # prefix of the operation names counted in the metrics ("history_": history_record)

    def __init__(
        self,
        store: Any,
        *,
        timeout: float | None = 0.02,
        write_timeout: float | None = None,
        retry_after: float = 1.0,
        log_interval: float = 60.0,
        outbox_size: int = 10_000,
        outbox_max_age: float = 60.0,
        on_call: Callable[[str, float], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        on_outbox: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.timeout = timeout
        self.write_timeout = write_timeout if write_timeout is not None else timeout
        self.retry_after = retry_after
        self.log_interval = log_interval
        self._on_call = on_call
        self._on_error = on_error
        self._clock = clock
        self._down_until = float("-inf")
        self._failures = 0  # since the last log line
        self._last_log = float("-inf")
        self._reported = False  # a warning went out for the current outage
        self._timeouts = 0  # consecutive calls that timed out
        self._slow_since = float("inf")  # when the first of them started
        self.healthy = True
        self.outbox = Outbox(
            self._retry_write,
            size=outbox_size,
            max_age=outbox_max_age,
            retry_interval=min(0.25, retry_after),
            on_change=on_outbox,
        )

    async def record(self, session_id: str, query: str, key: str | None = None) -> Submit:
        """Store ``query``; ``key`` (the client's idempotency key, else a fresh one) makes its
        retries, by the outbox or by the client, count once."""
        key = key or secrets.token_urlsafe(12)
        if await self._write(session_id, query, key):
            return Submit(True)
        done = self.outbox.put(session_id, query, key)
        if done is None:
            return Submit(False)
        return Submit("pending", done)

    async def _write(self, session_id: str, query: str, key: str) -> bool:
        async def record() -> bool:
            await self.store.record(session_id, query, key)
            return True

        return await self._call(self.ops + "record", record, False, self.write_timeout, session_id)

    async def _retry_write(self, session_id: str, query: str, key: str) -> bool:
        wait = self._down_until - self._clock()
        if wait > 0:
            await asyncio.sleep(min(wait, self.retry_after))
        return await self._write(session_id, query, key)

    async def ping(self) -> bool:
        async def ping() -> bool:
            await self.store.ping()
            return True

        self._down_until = float("-inf")  # an explicit probe always asks the store
        return await self._call(self.ops + "ping", ping, False, self.write_timeout)

    async def close(self, flush_seconds: float = 1.0) -> None:
        await self.outbox.flush(flush_seconds)
        await self.outbox.close()
        await self.store.close()

    async def _call(
        self,
        op: str,
        call: Callable[[], Awaitable[T]],
        fallback: T,
        timeout: float | None,
        session_id: str | None = None,
    ) -> T:
        now = self._clock()
        if now < self._down_until:
            self._failed(op, now, None, session_id)
            return fallback
        start = time.perf_counter()
        try:
            if timeout is None:
                result = await call()
            else:
                async with asyncio.timeout(timeout):
                    result = await call()
        except SessionStoreBusy as exc:
            self._slow(op, now, exc, session_id)
            return fallback
        except SessionStoreError as exc:
            self._failed(op, self._clock(), exc, session_id, open_guard=True)
            return fallback
        except TimeoutError as exc:
            self._slow(op, now, exc, session_id)
            return fallback
        finally:
            if self._on_call is not None:
                self._on_call(op, time.perf_counter() - start)
        self._timeouts = 0
        self._slow_since = float("inf")
        if not self.healthy:
            self.healthy = True
            if self._reported:
                logger.info("%s is back after %d failed call(s)", self.what, self._failures)
                self._failures = 0
                self._reported = False
        return result

    def _slow(self, op: str, started: float, exc: BaseException, session_id: str | None) -> None:
        """A call that ran out of time: load, unless calls have kept timing out, with none
        succeeding, for ``retry_after`` seconds (a hung store)."""
        self._timeouts += 1
        self._slow_since = min(self._slow_since, started)
        now = self._clock()
        hung = self._timeouts >= _SUSTAINED_TIMEOUTS and now - self._slow_since >= self.retry_after
        self._failed(op, now, exc, session_id, open_guard=hung)

    def _failed(
        self,
        op: str,
        now: float,
        exc: BaseException | None,
        session_id: str | None,
        open_guard: bool = False,
    ) -> None:
        if self._on_error is not None:
            self._on_error(op)
        self._failures += 1
        if open_guard:
            self._down_until = now + self.retry_after
            self.healthy = False
        if now - self._last_log >= self.log_interval and (open_guard or exc is None):
            # our stores' messages name the operation and the error class only; any other store's
            # message is not trusted to be free of keys and values
            if isinstance(exc, SessionStoreError) and type(self.store).__module__.startswith("sessions."):
                reason = f"{type(exc).__name__}: {exc}"
            else:
                reason = type(exc).__name__ if exc is not None else "store left alone"
            session = f" ({self.subject} {key_prefix(session_id)}...)" if session_id else ""
            logger.warning(
                "%s %s failed%s, %d failure(s) since last report; %s and keeping submits in the "
                "outbox, retrying every %.1f s: %s",
                self.what,
                op,
                session,
                self._failures,
                self.degraded,
                self.retry_after,
                reason,
            )
            self._failures = 0
            self._last_log = now
            self._reported = True


class GuardedSessionStore(StoreGuard):
    """A :class:`~sessions.base.SessionStore` behind a :class:`StoreGuard`; ids are verified
    before the store is asked anything."""

    def __init__(self, store: SessionStore, **guard: Any) -> None:
        super().__init__(store, **guard)
        self.store: SessionStore = store
        self.ids: SessionIds = store.ids

    def verify(self, session_id: object) -> bool:
        return self.ids.verify(session_id)

    async def resume(self, session_id: str | None) -> str:
        """The session ``session_id`` if it verifies and (when the store answers) is known, else a
        fresh one. While the store is down a verified id is kept, any other gets a fresh id."""
        if session_id is not None and not self.ids.verify(session_id):
            session_id = None
        fallback = session_id if session_id is not None else self.ids.issue()
        return await self._call("resume", lambda: self.store.resume(session_id), fallback, self.write_timeout)

    async def previous(self, session_id: str, n: int, *, timeout: float | None = None) -> list[str]:
        found = await self.try_previous(session_id, n, timeout=timeout)
        return [] if found is None else found

    async def try_previous(
        self, session_id: str, n: int, *, timeout: float | None = None
    ) -> list[str] | None:
        """Like :meth:`previous`, but ``None`` when the store failed or is being left alone."""
        if n <= 0 or not self.ids.verify(session_id):
            return []
        call = lambda: self.store.previous(session_id, n)  # noqa: E731
        return await self._call("previous", call, None, timeout or self.timeout, session_id)
