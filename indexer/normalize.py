"""Query normalization: one named scheme for labels, logs and typed prefixes alike.

``aol``: the benchmark's (split on whitespace and '.', strip non-word characters from each token,
drop empty tokens, join with one space, lower-case). ``unicode``: for product use (NFKC, casefold,
control characters removed, whitespace collapsed, punctuation kept).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

_AOL_SPLIT = re.compile(r"[\s.]+")
_NON_WORD_OR_SPACE = re.compile(r"[^\w ]+")
_WHITESPACE = re.compile(r"\s+")
_INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn"}


def normalize_aol(text: str) -> str:
    # the separators become spaces, every other non-word character goes: the same tokens as
    # stripping each token of them, in two passes over the text rather than one per token
    return " ".join(_NON_WORD_OR_SPACE.sub("", _AOL_SPLIT.sub(" ", text)).split()).lower()


def normalize_unicode(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch) not in _INVISIBLE
    )
    return _WHITESPACE.sub(" ", text).strip()


_SCHEMES: dict[str, Callable[[str], str]] = {"aol": normalize_aol, "unicode": normalize_unicode}
_SEPARATORS: dict[str, re.Pattern[str]] = {"aol": re.compile(r"[\s.]$"), "unicode": re.compile(r"\s$")}


def get_normalizer(scheme: str) -> Callable[[str], str]:
    try:
        return _SCHEMES[scheme]
    except KeyError:
        raise ValueError(f"unknown normalization {scheme!r}; choose one of {sorted(_SCHEMES)}") from None


def normalize_prefix(text: str, scheme: str) -> str:
    """Normalize typed text, keeping the word boundary a trailing separator announces.

    "rose " must complete to "rose of jericho" but not to "roses", so a prefix ending in a
    separator keeps one trailing space (when anything is left of it).
    """
    normalized = get_normalizer(scheme)(text)
    if normalized and _SEPARATORS[scheme].search(text):
        return normalized + " "
    return normalized
