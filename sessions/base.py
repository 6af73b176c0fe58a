"""The session store protocol and the session id helpers.

A session is the short trail of queries one person submitted, most recent last; the server
reads the last one or two as the context of every keystroke. Session ids are issued by the
server only and signed (:mod:`sessions.ids`): an id that does not verify is never looked up, and
one the store does not know (expired, evicted) is not adopted either: :meth:`SessionStore.resume`
answers with a fresh one instead.
"""

from __future__ import annotations

from typing import Protocol

from sessions.ids import SessionIds, is_session_id

__all__ = ["SessionIds", "SessionStore", "SessionStoreBusy", "SessionStoreError", "is_session_id"]


class SessionStoreError(ConnectionError):
    """The backing store failed; the caller answers without context. The message names the
    operation and the error class only, never a key or a value."""


class SessionStoreBusy(SessionStoreError):
    """No pooled connection came free in time: the store is loaded, not down."""


class SessionStore(Protocol):
    """Where session trails live: process memory or Redis. Methods raise :class:`SessionStoreError`.

    ``ids`` issues and verifies the session ids; a store never resumes or records an id that
    does not verify.
    """

    ids: SessionIds

    async def resume(self, session_id: str | None) -> str:
        """``session_id`` if the store knows it (its expiry is pushed back), else a fresh registered id."""
        ...

    async def previous(self, session_id: str, n: int) -> list[str]:
        """The last ``n`` queries of the session, most recent last (empty for unknown sessions)."""
        ...

    async def record(self, session_id: str, query: str, key: str | None = None) -> None:
        """Append ``query`` to the session's trail (creating the session if it expired meanwhile).

        ``key`` makes the write idempotent: a second call with the same key (a retry of a write
        whose answer was lost) does not append again."""
        ...

    async def ping(self) -> None:
        """Raise :class:`SessionStoreError` unless the store answers."""
        ...

    async def close(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...
