"""A session store that never stalls or fails a keystroke.

Wraps any :class:`~sessions.base.SessionStore`: every call is bounded by ``timeout`` seconds
(``None``: unbounded, for an in-process store that never waits);
a failure or timeout degrades to "no context" (``previous`` -> ``[]``, ``record`` -> ``False``,
``resume`` keeps a well-formed id). After a failure, or a second timeout in a row, the store is
left alone for ``retry_after`` seconds, so a dead or hung Redis costs nothing per keystroke, then
tried again: it reconnects by itself. A single slow call (a busy shared machine, a loaded event
loop) only costs that call its answer. Failures are counted through ``on_error`` and logged at
most once per ``log_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sessions.base import SessionStore, SessionStoreError, is_session_id, new_session_id

logger = logging.getLogger("sessions")
T = TypeVar("T")


class GuardedSessionStore:
    def __init__(
        self,
        store: SessionStore,
        *,
        timeout: float | None = 0.02,
        retry_after: float = 1.0,
        log_interval: float = 60.0,
        on_call: Callable[[str, float], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.timeout = timeout
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
        self.healthy = True

    async def resume(self, session_id: str | None) -> str:
        fallback = session_id if session_id is not None and is_session_id(session_id) else new_session_id()
        return await self._call("resume", lambda: self.store.resume(session_id), fallback)

    async def previous(self, session_id: str, n: int) -> list[str]:
        found = await self.try_previous(session_id, n)
        return [] if found is None else found

    async def try_previous(self, session_id: str, n: int) -> list[str] | None:
        """Like :meth:`previous`, but ``None`` when the store failed or is being left alone."""
        if n <= 0:
            return []
        return await self._call("previous", lambda: self.store.previous(session_id, n), None)

    async def record(self, session_id: str, query: str) -> bool:
        async def record() -> bool:
            await self.store.record(session_id, query)
            return True

        return await self._call("record", record, False)

    async def ping(self) -> bool:
        async def ping() -> bool:
            await self.store.ping()
            return True

        self._down_until = float("-inf")  # an explicit probe always asks the store
        return await self._call("ping", ping, False)

    async def close(self) -> None:
        await self.store.close()

    async def _call(self, op: str, call: Callable[[], Awaitable[T]], fallback: T) -> T:
        now = self._clock()
        if now < self._down_until:
            self._failed(op, now, None)
            return fallback
        start = time.perf_counter()
        try:
            if self.timeout is None:
                result = await call()
            else:
                async with asyncio.timeout(self.timeout):
                    result = await call()
        except SessionStoreError as exc:
            self._failed(op, self._clock(), exc, leave_alone=True)
            return fallback
        except TimeoutError as exc:
            self._timeouts += 1
            self._failed(op, self._clock(), exc, leave_alone=self._timeouts >= 2)
            return fallback
        finally:
            if self._on_call is not None:
                self._on_call(op, time.perf_counter() - start)
        self._timeouts = 0
        if not self.healthy:
            self.healthy = True
            if self._reported:
                logger.info("session store is back after %d failed call(s)", self._failures)
                self._failures = 0
                self._reported = False
        return result

    def _failed(self, op: str, now: float, exc: BaseException | None, leave_alone: bool = False) -> None:
        if self._on_error is not None:
            self._on_error(op)
        self._failures += 1
        if leave_alone:
            self._down_until = now + self.retry_after
        self.healthy = False
        if now - self._last_log >= self.log_interval:
            reason = f"{type(exc).__name__}: {exc}" if exc is not None else "store marked down"
            logger.warning(
                "session store %s failed (%d failure(s) since last report; answering without context, "
                "retrying every %.1f s): %s",
                op,
                self._failures,
                self.retry_after,
                reason,
            )
            self._failures = 0
            self._last_log = now
            self._reported = True
