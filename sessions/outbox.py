"""Submits the store did not take at once, kept and retried until they are written.

Each submit carries an idempotency key, so a retry of a write whose answer was lost (a timeout
after Redis did the work) is not appended twice. The outbox is bounded in items and in age: a
submit that could not be written within ``max_age`` seconds is given up (its future answers
``False``), and :meth:`Outbox.put` refuses a new one when ``size`` are already waiting.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

logger = logging.getLogger("sessions")


@dataclasses.dataclass(slots=True)
class _Pending:
    session: str
    query: str
    key: str
    since: float
    done: asyncio.Future[bool]


class Outbox:
    """``write(session, query, key)`` answers whether the store took it (never raises)."""

    def __init__(
        self,
        write: Callable[[str, str, str], Awaitable[bool]],
        *,
        size: int = 10_000,
        max_age: float = 60.0,
        retry_interval: float = 0.25,
        on_change: Callable[[int], None] | None = None,
    ) -> None:
        self._write = write
        self.size = size
        self.max_age = max_age
        self.retry_interval = retry_interval
        self._on_change = on_change
        self._items: deque[_Pending] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.given_up = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, session: str, query: str, key: str) -> asyncio.Future[bool] | None:
        """Queue a submit; ``None`` when the outbox is full (the submit is refused)."""
        if len(self._items) >= self.size:
            return None
        loop = asyncio.get_running_loop()
        item = _Pending(session, query, key, time.monotonic(), loop.create_future())
        self._items.append(item)
        self._changed()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain())
        self._wake.set()
        return item.done

    def discard(self, session: str, query: str | None = None) -> int:
        """Drop the waiting submits of ``session`` (of ``query`` only, if given): a history its
        person just deleted. They are never written; their futures answer ``False``."""
        kept: deque[_Pending] = deque()
        dropped = 0
        for item in self._items:
            if item.session == session and (query is None or item.query == query):
                dropped += 1
                if not item.done.done():
                    item.done.set_result(False)
            else:
                kept.append(item)
        if dropped:
            self._items = kept
            self._changed()
        return dropped

    async def flush(self, timeout: float) -> None:
        """Try the waiting submits once more, for at most ``timeout`` seconds (at shutdown)."""
        deadline = time.monotonic() + timeout
        while self._items and time.monotonic() < deadline:
            if not await self._try(self._items[0]):
                break

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for item in self._items:
            if not item.done.done():
                item.done.set_result(False)
        self._items.clear()

    async def _drain(self) -> None:
        while True:
            while not self._items:
                self._wake.clear()
                await self._wake.wait()
            item = self._items[0]
            if time.monotonic() - item.since > self.max_age:
                self._items.popleft()
                self.given_up += 1
                logger.warning("a submit was given up after %.0f s of failed writes", self.max_age)
                item.done.set_result(False)
                self._changed()
                continue
            if not await self._try(item):
                await asyncio.sleep(self.retry_interval)

    async def _try(self, item: _Pending) -> bool:
        if not await self._write(item.session, item.query, item.key):
            return False
        if self._items and self._items[0] is item:
            self._items.popleft()
        if not item.done.done():
            item.done.set_result(True)
        self._changed()
        return True

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(len(self._items))
