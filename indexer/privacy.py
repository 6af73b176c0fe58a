"""Privacy filters: which training queries may ever be suggested.

A query becomes a label only if at least ``min_users`` distinct users issued it in the training
split, and it neither contains a blocklisted word nor matches a blocklisted pattern. Both filters
are counted in the training summary.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from indexer.params import ConfigError, PrivacyParams
from indexer.querylog import Session


@dataclasses.dataclass(frozen=True)
class Blocklist:
    """Whole words (case-insensitive) and ``re:`` patterns, one per line; ``#`` starts a comment."""

    words: frozenset[str]
    patterns: tuple[re.Pattern[str], ...]

    @classmethod
    def read(cls, path: str | Path | None) -> Blocklist:
        if not path:
            return cls(frozenset(), ())
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"privacy.blocklist: cannot read {path} ({exc})") from exc
        return cls.parse(lines, str(path))

    @classmethod
    def parse(cls, lines: Iterable[str], source: str) -> Blocklist:
        """The entries of ``lines``; a bad pattern raises :class:`ConfigError` naming
        ``source:line``."""
        words, patterns = set(), []
        for number, line in enumerate(lines, 1):
            entry = line.split("#", 1)[0].strip() if not line.startswith("re:") else line.strip()
            if not entry:
                continue
            if entry.startswith("re:"):
                try:
                    patterns.append(re.compile(entry[3:], re.IGNORECASE))
                except re.error as exc:
                    raise ConfigError(f"{source}:{number}: bad pattern {entry[3:]!r} ({exc})") from exc
            else:
                words.add(entry.casefold())
        return cls(frozenset(words), tuple(patterns))

    def blocks(self, query: str) -> bool:
        if self.words and any(word.casefold() in self.words for word in query.split()):
            return True
        return any(p.search(query) for p in self.patterns)


def users_per_query(sessions: Iterable[Session]) -> dict[str, int]:
    users: dict[str, set[str]] = defaultdict(set)
    for session in sessions:
        for query in session.queries:
            users[query].add(session.user)
    return {query: len(who) for query, who in users.items()}


def filter_labels(
    candidates: Iterable[str], sessions: Iterable[Session], params: PrivacyParams, untimed: bool = False
) -> tuple[list[str], dict[str, int]]:
    """Keep the candidate labels that pass both filters; return them and what each filter removed."""
    if params.min_users < 1:
        raise ConfigError(f"privacy.min_users must be at least 1, got {params.min_users}")
    if untimed and params.min_users > 1:
        raise ConfigError(
            "privacy.min_users > 1 needs user ids, and this log format has none: "
            "set privacy.min_users = 1 for one-query-per-line logs"
        )
    blocklist = Blocklist.read(params.blocklist)
    users = users_per_query(sessions) if params.min_users > 1 else {}
    kept, few_users, blocked = [], 0, 0
    for label in candidates:
        if params.min_users > 1 and users.get(label, 0) < params.min_users:
            few_users += 1
        elif blocklist.blocks(label):
            blocked += 1
        else:
            kept.append(label)
    return kept, {"removed_min_users": few_users, "removed_blocklist": blocked}
