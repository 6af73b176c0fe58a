"""Live exclusions: blocklisted words and patterns taken out of every answer, whatever proposed it.

The list has the training blocklist's format (:class:`indexer.privacy.Blocklist`: one word or
phrase a line, ``re:`` patterns, ``#`` comments) and lives in the file ``serve.blocklist``, which
every worker watches (``serve.reload_poll_seconds``) and ``POST /admin/blocklist`` rewrites. It
applies to the final answers, so model labels, generated, fuzzy and any later source are filtered
alike, from the next keystroke on.

Word matching is insensitive to case, accents and compatibility forms (``Café``, ``CAFE`` and
``cafe`` are one word) and to punctuation inside a word (``o'neil`` also blocks ``oneil``, as the
``aol`` normalization writes it). An entry of several words blocks that sequence of whole words.
Patterns are searched, case-insensitively, in the completion as shown and in its folded form.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import re
import tempfile
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from indexer.errors import ConfigError
from indexer.privacy import Blocklist

logger = logging.getLogger("autocomplete.exclusions")
_WORD = re.compile(r"\w+")
_PLAIN = re.compile(r"[a-z0-9]+(?: [a-z0-9]+)*")
_CACHED = 65_536  # verdicts kept per list: the same completions come back keystroke after keystroke
T = TypeVar("T")


def fold(text: str) -> str:
    """Lower case without accents or compatibility forms: what two spellings of one word share."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def _spellings(text: str) -> tuple[str, str]:
    """The folded words of ``text`` split at every non-word character, and with the non-word
    characters inside a whitespace-separated word dropped (``o'neil`` -> ``o neil``, ``oneil``)."""
    folded = fold(text)
    if _PLAIN.fullmatch(folded):  # lower-case words and single spaces (the aol normalization's)
        return folded, folded
    split = " ".join(_WORD.findall(folded))
    joined = " ".join(w for w in ("".join(_WORD.findall(token)) for token in folded.split()) if w)
    return split, joined


class _AnyOf:
    """Patterns searched one by one, behind the one-pattern interface :class:`Exclusions` uses."""

    def __init__(self, patterns: Sequence[re.Pattern[str]]) -> None:
        self.patterns = patterns

    def search(self, text: str) -> re.Match[str] | None:
        for p in self.patterns:
            if found := p.search(text):
                return found
        return None


@dataclasses.dataclass(frozen=True)
class Exclusions:
    """A blocklist ready to match completions. ``words``: folded single words; ``phrases``: folded
    word sequences, each padded with one space on both sides; ``patterns``: as compiled."""

    words: frozenset[str] = frozenset()
    phrases: tuple[str, ...] = ()
    patterns: tuple[re.Pattern[str], ...] = ()
    entries: int = 0
    _verdicts: dict[str, bool] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, blocklist: Blocklist) -> Exclusions:
        words: set[str] = set()
        phrases: set[str] = set()
        for entry in blocklist.words:
            for spelling in set(_spellings(entry)):
                if " " in spelling:
                    phrases.add(f" {spelling} ")
                elif spelling:
                    words.add(spelling)
        entries = len(blocklist.words) + len(blocklist.patterns)
        return cls(frozenset(words), tuple(sorted(phrases)), blocklist.patterns, entries)

    def __bool__(self) -> bool:
        return self.entries > 0

    def blocks(self, text: str) -> bool:
        verdict = self._verdicts.get(text)
        if verdict is None:
            if len(self._verdicts) >= _CACHED:
                self._verdicts.clear()
            verdict = self._verdicts[text] = self._matches(text)
        return verdict

    def _matches(self, text: str) -> bool:
        split, joined = _spellings(text)
        if self.words and not self.words.isdisjoint(split.split() + joined.split()):
            return True
        if self.phrases:
            padded = (f" {split} ", f" {joined} ")
            if any(phrase in p for phrase in self.phrases for p in padded):
                return True
        if self.pattern is None:
            return False
        return self.pattern.search(text) is not None or (
            split != text and self.pattern.search(split) is not None
        )

    @functools.cached_property
    def pattern(self) -> re.Pattern[str] | None:
        """All patterns as one alternation (one search per text), or ``None`` when there are none."""
        if not self.patterns:
            return None
        try:
            return re.compile("|".join(f"(?:{p.pattern})" for p in self.patterns), re.IGNORECASE)
        except re.error:  # a pattern with global flags cannot sit inside an alternation
            return _AnyOf(self.patterns)  # type: ignore[return-value]

    def first_allowed(self, found: Sequence[T], k: int, text_of: Callable[[T], str]) -> tuple[list[T], int]:
        """The first ``k`` items of ``found`` it lets through, and how many it took out before them."""
        kept: list[T] = []
        removed = 0
        for item in found:
            if len(kept) == k:
                break
            if self.blocks(text_of(item)):
                removed += 1
            else:
                kept.append(item)
        return kept, removed


def complete_allowed(
    complete: Callable[[int], list[T]], k: int, exclusions: Exclusions, text_of: Callable[[T], str]
) -> tuple[list[T], int]:
    """The first ``k`` answers of ``complete(n)`` that ``exclusions`` let through, and how many of
    the ``k`` it would have answered it took out. Nothing is asked twice unless something was taken
    out; then the completer is asked for 4x as many, at most twice (16x), while it had as many as
    asked: a bounded price, paid only on keystrokes whose answers held a blocked completion."""
    found = complete(k)
    if not exclusions:
        return found, 0
    kept, removed = exclusions.first_allowed(found, k, text_of)
    asked = k
    while len(kept) < k and len(found) >= asked and asked < 16 * k:
        asked *= 4
        found = complete(asked)
        kept, _ = exclusions.first_allowed(found, k, text_of)
    return kept, removed


class LiveExclusions:
    """The exclusions in service, re-read when their file changes; :meth:`replace` rewrites it.

    Parameters
    ----------
    path : str
        ``serve.blocklist``: the file (``""``: none; nothing is excluded and :meth:`replace` refuses).
    max_bytes : int
        The largest file accepted.
    on_load : callable
        Called with ``(result, exclusions)`` after every attempt (``"loaded"`` or ``"refused"``).
    """

    def __init__(
        self,
        path: str,
        max_bytes: int,
        on_load: Callable[[str, Exclusions], None] = lambda result, exclusions: None,
    ) -> None:
        self.path = Path(path) if path else None
        self.max_bytes = max_bytes
        self._on_load = on_load
        self.current = Exclusions()
        self._signature: tuple[int, int, int] | None = None
        if self.path is not None:
            self.current = self._read()  # at start a bad file stops the server (ConfigError)
            self._signature = self._stat()
            on_load("loaded", self.current)

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)  # type: ignore[arg-type]
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _read(self) -> Exclusions:
        assert self.path is not None
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return Exclusions()  # not written yet: nothing excluded
        except OSError as exc:
            raise ConfigError(f"serve.blocklist: cannot read {self.path} ({exc})") from exc
        if len(data) > self.max_bytes:
            raise ConfigError(
                f"{self.path} has {len(data)} bytes, more than serve.blocklist_max_bytes "
                f"({self.max_bytes}): raise the limit or shorten the list"
            )
        try:
            lines = data.decode("utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{self.path} is not UTF-8 ({exc}): save it as UTF-8") from exc
        return Exclusions.of(Blocklist.parse(lines, str(self.path)))

    def check(self) -> bool:
        """Re-read the file if it changed since it was last read; True if the exclusions changed.
        A file that does not parse is refused (logged, counted) and the exclusions stay."""
        if self.path is None:
            return False
        signature = self._stat()
        if signature == self._signature:
            return False
        self._signature = signature
        try:
            loaded = self._read()
        except ConfigError as exc:
            logger.error("blocklist refused, the previous one stays in service: %s", exc)
            self._on_load("refused", self.current)
            return False
        self.current = loaded
        logger.info("blocklist loaded: %d entries", loaded.entries)
        self._on_load("loaded", loaded)
        return True

    def replace(self, words: Iterable[str], patterns: Iterable[str]) -> Exclusions:
        """Check ``words`` and ``patterns``, write them to the file atomically and serve them.

        Raises :class:`ConfigError` (nothing written) for an entry the file format cannot hold,
        a bad pattern, or when ``serve.blocklist`` is not set."""
        if self.path is None:
            raise ConfigError(
                "serve.blocklist is not set: it names the file the blocklist is kept in (every "
                "worker watches it), e.g. /var/lib/autocomplete/blocklist.txt"
            )
        lines = []
        for word in words:
            if not word.strip() or "#" in word or "\n" in word or "\r" in word or word.startswith("re:"):
                raise ConfigError(
                    f"blocklist word {word!r}: a word must be non-empty, on one line, without '#', "
                    "and not start with 're:' (send patterns as patterns)"
                )
            lines.append(word.strip())
        for pattern in patterns:
            if "\n" in pattern or "\r" in pattern:
                raise ConfigError(f"blocklist pattern {pattern!r}: a pattern must be on one line")
            lines.append("re:" + pattern)
        text = "".join(line + "\n" for line in lines)
        if len(text.encode("utf-8")) > self.max_bytes:
            raise ConfigError(f"the blocklist is larger than serve.blocklist_max_bytes ({self.max_bytes})")
        loaded = Exclusions.of(Blocklist.parse(text.splitlines(), "the blocklist sent"))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            mode = self.path.stat().st_mode & 0o777
        except OSError:
            mode = 0o644
        fd, staging = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.chmod(staging, mode)  # mkstemp's 0600 would hide the list from other readers
            os.replace(staging, self.path)  # atomic: a reader sees the old file or the new one
        except BaseException:
            Path(staging).unlink(missing_ok=True)
            raise
        self._signature = self._stat()
        self.current = loaded
        logger.info("blocklist replaced: %d entries", loaded.entries)
        self._on_load("loaded", loaded)
        return loaded

    def lines(self) -> tuple[list[str], list[str]]:
        """The words and patterns of the file as written (for ``GET /admin/blocklist``)."""
        if self.path is None or not self.path.is_file():
            return [], []
        blocklist = Blocklist.parse(self.path.read_text(encoding="utf-8").splitlines(), str(self.path))
        return sorted(blocklist.words), [p.pattern for p in blocklist.patterns]
