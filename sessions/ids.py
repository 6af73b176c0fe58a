"""Session ids the server can verify without asking the store.

An id is 16 random bytes followed by the first 16 bytes of their HMAC-SHA256 under the server's
secret, URL-safe base64 without padding (43 characters). :meth:`SessionIds.verify` recomputes the
MAC: an id that was not issued under the current key or the grace key (the previous secret, kept
while a rotation is under way) is refused at once, whether or not the store answers, so a client
can never make up its own session id, nor keep one across a rotation that dropped its key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Sequence

RANDOM_BYTES = 16
MAC_BYTES = 16
SESSION_ID_CHARS = 43  # base64 of 32 bytes, unpadded
MIN_SECRET_CHARS = 16
_SHAPE = re.compile(rf"[A-Za-z0-9_-]{{{SESSION_ID_CHARS}}}")
_CONTEXT = b"autocomplete session id v1\x00"

logger = logging.getLogger("sessions")


def is_session_id(value: object) -> bool:
    """Whether ``value`` has the shape of an id this server issues (not whether it verifies)."""
    return isinstance(value, str) and _SHAPE.fullmatch(value) is not None


def _key(secret: str, context: bytes = _CONTEXT) -> bytes:
    return hashlib.sha256(context + secret.encode("utf-8")).digest()


class SessionIds:
    """Issues and verifies session ids under ``secret`` (and ``grace``, a previous secret).

    ``secret=None``: a random key for this object only (a single process, or tests); ids then
    do not survive a restart and are not valid in another process.
    """

    context = _CONTEXT  # a subclass with another context issues ids these never verify

    def __init__(self, secret: str | None = None, grace: Sequence[str] = ()) -> None:
        for value in (secret, *grace):
            if value is not None and len(value) < MIN_SECRET_CHARS:
                raise ValueError(
                    f"a session secret needs at least {MIN_SECRET_CHARS} characters; make one with "
                    "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
                )
        self._key = _key(secret, self.context) if secret is not None else secrets.token_bytes(32)
        self._keys = (self._key, *(_key(g, self.context) for g in grace if g))

    def issue(self) -> str:
        random = secrets.token_bytes(RANDOM_BYTES)
        return base64.urlsafe_b64encode(random + self._mac(self._key, random)).rstrip(b"=").decode("ascii")

    def verify(self, value: object) -> bool:
        """``value`` is an id issued under the current or the grace key."""
        if not is_session_id(value):
            return False
        assert isinstance(value, str)
        try:
            raw = base64.urlsafe_b64decode(value + "=")
        except (binascii.Error, ValueError):
            return False
        random, mac = raw[:RANDOM_BYTES], raw[RANDOM_BYTES:]
        return any(hmac.compare_digest(mac, self._mac(key, random)) for key in self._keys)

    @staticmethod
    def _mac(key: bytes, random: bytes) -> bytes:
        return hmac.new(key, random, hashlib.sha256).digest()[:MAC_BYTES]


def key_prefix(session_id: str) -> str:
    """The first characters of an id: enough to tell log lines apart, useless to resume it."""
    return session_id[:6]
