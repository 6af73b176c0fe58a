"""The session store protocol and the session id helpers.

A session is the short trail of queries one person submitted, most recent last; the server
reads the last one or two as the context of every keystroke. Session ids are issued by the
server only: 128 random bits, URL-safe base64 (22 characters). An id the store does not know
(never issued, expired, evicted) is never adopted: :meth:`SessionStore.resume` answers with a
fresh one instead.
"""

from __future__ import annotations

import re
import secrets
from typing import Protocol

SESSION_ID_BYTES = 16
_SESSION_ID_RE = re.compile(r"[A-Za-z0-9_-]{22}")


class SessionStoreError(ConnectionError):
    """The backing store failed or timed out; the caller answers without context."""


def new_session_id() -> str:
    """A fresh 128-bit random session id (22 URL-safe characters)."""
    return secrets.token_urlsafe(SESSION_ID_BYTES)


def is_session_id(value: object) -> bool:
    """Whether ``value`` has the shape of an id this server issues (not whether it is known)."""
    return isinstance(value, str) and _SESSION_ID_RE.fullmatch(value) is not None


class SessionStore(Protocol):
    """Where session trails live: process memory or Redis. Methods raise :class:`SessionStoreError`."""

    async def resume(self, session_id: str | None) -> str:
        """``session_id`` if the store knows it (its expiry is pushed back), else a fresh registered id."""
        ...

    async def previous(self, session_id: str, n: int) -> list[str]:
        """The last ``n`` queries of the session, most recent last (empty for unknown sessions)."""
        ...

    async def record(self, session_id: str, query: str) -> None:
        """Append ``query`` to the session's trail (creating the session if it expired meanwhile)."""
        ...

    async def ping(self) -> None:
        """Raise :class:`SessionStoreError` unless the store answers."""
        ...

    async def close(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...
