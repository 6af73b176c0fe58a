"""The websocket protocol: client frames parsed and checked, server frames built.

Documented for client authors in ``docs/protocol.md``. Parsing never raises anything but
:class:`ProtocolError`, whose ``code`` and ``seq`` go back to the client in an error frame;
:class:`FrameTooBig` additionally closes the connection with 1009.
"""

from __future__ import annotations

import dataclasses
import json
import re
import unicodedata
from collections.abc import Iterable
from math import isfinite
from typing import Any

import orjson
from starlette import status

from autocomplete.completer import Completion

PROTOCOL_VERSION = 1
MAX_SEQ = 2**53 - 1
_KEY = re.compile(r"[A-Za-z0-9_-]{8,64}")
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


class ProtocolError(ValueError):
    """A client frame or HTTP parameter the server refuses; answered, never fatal."""

    def __init__(self, code: str, message: str, seq: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.seq = seq


class FrameTooBig(ProtocolError):
    close_code = status.WS_1009_MESSAGE_TOO_BIG


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    max_frame_bytes: int = 4096
    max_prefix_chars: int = 100
    max_query_chars: int = 200
    max_k: int = 20


@dataclasses.dataclass(frozen=True, slots=True)
class InputMessage:
    seq: int
    text: str
    k: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class SubmitMessage:
    text: str
    key: str | None = None  # the client's idempotency key: a retry of the same submit is stored once
    rank: int | None = None  # 1-based position of the chosen suggestion; None when the text was typed


@dataclasses.dataclass(frozen=True, slots=True)
class RecentMessage:
    """Ask for the person's recent searches (the widget, on focusing an empty box)."""

    seq: int | None = None
    k: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ForgetMessage:
    """Forget one query of the person's history, or all of it (``query`` ``None``)."""

    seq: int | None = None
    query: str | None = None


ClientMessage = InputMessage | SubmitMessage | RecentMessage | ForgetMessage


def parse_client_frame(frame: str | bytes | None, limits: Limits) -> ClientMessage:
    """One websocket frame -> a message, or :class:`ProtocolError` saying what is wrong."""
    if not isinstance(frame, str):
        raise ProtocolError("bad_frame", "send JSON text frames, not binary ones")
    size = len(frame) if len(frame) * 4 <= limits.max_frame_bytes else len(frame.encode("utf-8", "replace"))
    if size > limits.max_frame_bytes:
        raise FrameTooBig("frame_too_big", f"frames are limited to {limits.max_frame_bytes} bytes")
    try:
        data = json.loads(frame)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise ProtocolError("bad_json", "the frame is not valid JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError("bad_frame", 'a frame must be a JSON object with a "type"')
    kind = data.get("type")
    if kind == "input":
        seq = data.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ:
            raise ProtocolError("bad_field", '"seq" must be a whole number from 0 to 2**53 - 1')
        text = check_text(data.get("text"), "text", limits.max_prefix_chars, seq)
        k = data.get("k")
        if k is not None:
            k = check_k(k, limits.max_k, seq)
        return InputMessage(seq, text, k)
    seq = data.get("seq")
    seq = seq if isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq <= MAX_SEQ else None
    if kind == "submit":
        text = check_query(data.get("text"), limits.max_query_chars, seq)
        key = check_idempotency_key(data.get("idempotency_key"), seq)
        return SubmitMessage(text, key, check_rank(data.get("rank"), limits.max_k, seq))
    if kind == "recent":
        k = data.get("k")
        return RecentMessage(seq, None if k is None else check_k(k, limits.max_k, seq))
    if kind == "forget":
        query = data.get("query")
        return ForgetMessage(seq, None if query is None else check_query(query, limits.max_query_chars, seq))
    raise ProtocolError("unknown_type", '"type" must be "input", "submit", "recent" or "forget"', seq)


def check_text(text: Any, name: str, max_chars: int, seq: int | None = None) -> str:
    if not isinstance(text, str):
        raise ProtocolError("bad_field", f'"{name}" must be a string', seq)
    if len(text) > max_chars:
        raise ProtocolError("too_long", f'"{name}" is limited to {max_chars} characters', seq)
    if _FORBIDDEN.search(text):
        raise ProtocolError("control_characters", f'"{name}" must not contain control characters', seq)
    # the model normalizes (NFKC, casefold): one character may become up to 18, and cost as many
    if not text.isascii() and len(unicodedata.normalize("NFKC", text).casefold()) > max_chars:
        raise ProtocolError(
            "too_long", f'"{name}" is limited to {max_chars} characters after Unicode normalization', seq
        )
    return text


def check_query(text: Any, max_chars: int, seq: int | None = None) -> str:
    """A submitted query: checked like any text, surrounding spaces dropped, never empty."""
    query = check_text(text, "text", max_chars, seq).strip()
    if not query:
        raise ProtocolError("bad_field", '"text" of a submit must not be empty', seq)
    return query


def check_idempotency_key(key: Any, seq: int | None = None) -> str | None:
    """An optional ``idempotency_key``: 8 to 64 characters of ``A-Z a-z 0-9 _ -``."""
    if key is None:
        return None
    if not isinstance(key, str) or _KEY.fullmatch(key) is None:
        raise ProtocolError(
            "bad_field", '"idempotency_key" must be 8 to 64 characters of A-Z, a-z, 0-9, _ or -', seq
        )
    return key


def check_rank(rank: Any, max_k: int, seq: int | None = None) -> int | None:
    """An optional ``rank``: the chosen suggestion's 1-based position, null when typed."""
    if rank is None:
        return None
    if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= max_k:
        raise ProtocolError("bad_field", f'"rank" must be null or a whole number from 1 to {max_k}', seq)
    return rank


def check_k(k: Any, max_k: int, seq: int | None = None) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= max_k:
        raise ProtocolError("bad_field", f'"k" must be a whole number from 1 to {max_k}', seq)
    return k


def items(completions: Iterable[Completion]) -> list[dict[str, Any]]:
    """The completions as frame items; a score is rounded to 6 decimals, 0.0 if not finite. A
    corrected completion (a typo fixed: it does not start with the typed text) also says which of
    its characters stand for what was typed: ``"matched": [0, end]`` (code points) and
    ``"corrected": true``."""
    out = []
    for c in completions:
        item: dict[str, Any] = {
            "text": c.text,
            "score": round(s, 6) if isfinite(s := float(c.score)) else 0.0,
        }
        if c.matched >= 0:
            item["matched"] = [0, c.matched]
            item["corrected"] = True
        out.append(item)
    return out


def encode(frame: dict[str, Any]) -> str:
    """A server frame as compact JSON text, non-ASCII kept as is (orjson: ~15x the standard library's
    speed on a completions frame, the largest cost of an answer after the model)."""
    return orjson.dumps(frame).decode()


def hello(session: str) -> dict[str, Any]:
    return {"type": "hello", "session": session, "protocol": PROTOCOL_VERSION}


def completions(seq: int | None, text: str, found: Iterable[Completion], ms: float) -> dict[str, Any]:
    return {"type": "completions", "seq": seq, "text": text, "items": items(found), "ms": round(ms, 3)}


def superseded(seq: int) -> dict[str, Any]:
    return {"type": "superseded", "seq": seq}


def submitted(text: str, stored: bool | str) -> dict[str, Any]:
    """``stored``: ``True`` once in the session store, ``"pending"`` while queued for it, ``False``
    when it was refused (the queue was full) or given up."""
    return {"type": "submitted", "text": text, "stored": stored}


def stored(text: str, stored: bool) -> dict[str, Any]:
    """What became of a submit answered ``"pending"``: written (``True``) or given up."""
    return {"type": "stored", "text": text, "stored": stored}


def recent(seq: int | None, queries: Iterable[str]) -> dict[str, Any]:
    """The person's recent searches, most recent first."""
    return {"type": "recent", "seq": seq, "items": [{"text": query} for query in queries]}


def forgotten(seq: int | None, query: str | None, done: bool) -> dict[str, Any]:
    """A deletion: ``done`` ``False`` when the store could not be reached (try again); this
    worker's connections of the person have forgotten it either way."""
    return {"type": "forgotten", "seq": seq, "query": query, "forgotten": done}


def error(code: str, message: str, seq: int | None = None) -> dict[str, Any]:
    return {"type": "error", "seq": seq, "code": code, "message": message}
