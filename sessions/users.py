"""Who a history belongs to: a user key signed by the host page, or a browser id issued by us.

A host page that knows its user passes the widget a **signed user key**, ``<id>.<mac>``: the
user's id on the host (1 to 128 characters of ``A-Z a-z 0-9 _ . ~ + -``) and the lowercase hex
HMAC-SHA256 of that id under the secret the host shares with this service
(``serve.history_secret``). Only the host can make one, so nobody reads another person's history
by guessing or changing an id. A key that does not verify (unsigned, forged, signed with another
secret, malformed) identifies nobody: it reads and writes nothing.

Without a user key, a **browser id** identifies the browser: 16 random bytes and their MAC, issued
by this service in a long-lived first-party cookie, signed like session ids but under their own
context (a session id is never a browser id, nor the reverse).

Neither goes to the store: the store key of a person is the hex HMAC-SHA256 of ``u:<id>`` or
``b:<browser id>`` under a key derived from the server's own secret (``serve.session_secret``),
so a store read by someone without that secret holds no user id, and a user id and a browser id
never share a history.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence

from sessions.ids import SessionIds

MAX_USER_ID_CHARS = 128
STORE_KEY_CHARS = 32  # hex of 16 bytes
_SIGNED = re.compile(r"([A-Za-z0-9_.~+-]{1,128})\.([0-9a-f]{64})")
_STORE_CONTEXT = b"autocomplete history store key v1\x00"


class BrowserIds(SessionIds):
    """Browser ids: the session id format under their own context."""

    context = b"autocomplete browser id v1\x00"


def sign_user(user_id: str, secret: str) -> str:
    """The signed user key the host page passes as the widget's ``user`` option (docs/protocol.md)."""
    if not re.fullmatch(r"[A-Za-z0-9_.~+-]{1,128}", user_id):
        raise ValueError(
            "a user id is 1 to 128 characters of A-Z a-z 0-9 _ . ~ + -; encode other ids first "
            "(base64url, or the host's own hash of them)"
        )
    mac = hmac.new(secret.encode("utf-8"), user_id.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{user_id}.{mac}"


class UserKeys:
    """Verifies signed user keys and browser ids and turns them into store keys.

    ``host_secret``: the secret shared with host pages (``None``: no user key verifies);
    ``host_grace``: a previous one, still accepted during a rotation. ``server_secret``: this
    service's own (``serve.session_secret``; ``None``: a key for this object only, for tests)."""

    def __init__(
        self,
        host_secret: str | None,
        server_secret: str | None,
        *,
        host_grace: Sequence[str] = (),
        server_grace: Sequence[str] = (),
    ) -> None:
        self._host = tuple(s.encode("utf-8") for s in (host_secret, *host_grace) if s)
        self.browsers = BrowserIds(server_secret, server_grace)
        self._store_key = (
            hashlib.sha256(_STORE_CONTEXT + server_secret.encode("utf-8")).digest()
            if server_secret
            else secrets.token_bytes(32)
        )

    @property
    def accepts_user_keys(self) -> bool:
        return bool(self._host)

    def user(self, signed: object) -> str | None:
        """The store key of a signed user key that verifies, else ``None``."""
        if not self._host or not isinstance(signed, str) or len(signed) > MAX_USER_ID_CHARS + 65:
            return None
        match = _SIGNED.fullmatch(signed)
        if match is None:
            return None
        user_id, mac = match.groups()
        for secret in self._host:
            expected = hmac.new(secret, user_id.encode("utf-8"), hashlib.sha256).hexdigest()
            if hmac.compare_digest(expected, mac):
                return self._derive(b"u:" + user_id.encode("utf-8"))
        return None

    def browser(self, browser_id: object) -> str | None:
        """The store key of a browser id this service issued, else ``None``."""
        if not self.browsers.verify(browser_id):
            return None
        assert isinstance(browser_id, str)
        return self._derive(b"b:" + browser_id.encode("ascii"))

    def issue_browser(self) -> str:
        return self.browsers.issue()

    def _derive(self, identity: bytes) -> str:
        return hmac.new(self._store_key, identity, hashlib.sha256).hexdigest()[:STORE_KEY_CHARS]
