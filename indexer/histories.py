"""What a deployed service would know of each person at each of their queries: their history.

:func:`histories_before` replays a log's sessions person by person in time order and gives, for
every (previous, next) pair of the sessions asked about, the person's history just before the next
query was typed: their last ``max_queries`` distinct queries of the earlier sessions (``prior``,
e.g. the training period) and of their sessions up to this point, each with how often they
submitted it and how many days ago they last did (by session start; 0 within the same session).
The ranker learns from these on the late training sessions, and ``eval --history`` scores with them.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import OrderedDict, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from itertools import repeat

import numpy as np

from indexer.querylog import Session

_DAY = 86400.0
_MAX_POINT = 0x10FFFF


class PastQueries(Mapping[str, tuple[int, float]]):
    """A person's history as a keystroke reads it: past query -> (times submitted, days since
    last), in the order given (oldest first). The queries are also kept sorted, with their counts,
    days and given positions as arrays in that order, so the ones that start with a typed text are
    a :meth:`span` found by bisection instead of a test of every query at every keystroke.

    Built once per change of the history (a server builds it when a submit or a read changes its
    view; the evaluation when it replays the log), not per keystroke."""

    __slots__ = ("_given", "_index", "sorted_queries", "counts", "days", "position")

    def __init__(self, stats: Mapping[str, tuple[int, float]]) -> None:
        given = list(stats)
        order = sorted(range(len(given)), key=given.__getitem__)
        self._given = given
        self.sorted_queries = [given[i] for i in order]
        self._index = {query: i for i, query in enumerate(self.sorted_queries)}
        values = [stats[query] for query in self.sorted_queries]
        self.counts = np.array([v[0] for v in values], dtype=np.float64)
        self.days = np.array([v[1] for v in values], dtype=np.float64)
        self.position = np.array(order, dtype=np.int64)

    def __getitem__(self, query: str) -> tuple[int, float]:
        i = self._index[query]
        return int(self.counts[i]), float(self.days[i])

    def __contains__(self, query: object) -> bool:
        return query in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._given)

    def __len__(self) -> int:
        return len(self._given)

    def __repr__(self) -> str:
        return f"PastQueries({len(self._given)} queries)"

    def positions(self, queries: Sequence[str]) -> np.ndarray:
        """The position of each of ``queries`` among :attr:`sorted_queries` (-1: not one), int64."""
        return np.fromiter(map(self._index.get, queries, repeat(-1)), dtype=np.int64, count=len(queries))

    def span(self, prefix: str) -> tuple[int, int]:
        """``(lo, hi)``: :attr:`sorted_queries` ``[lo:hi]`` are those that start with ``prefix``."""
        ordered = self.sorted_queries
        lo = bisect_left(ordered, prefix)
        if not prefix:
            return lo, len(ordered)
        last = ord(prefix[-1])
        if last < _MAX_POINT:  # the first text past every one that starts with the prefix
            return lo, bisect_left(ordered, prefix[:-1] + chr(last + 1), lo)
        hi = lo
        while hi < len(ordered) and ordered[hi].startswith(prefix):
            hi += 1
        return lo, hi


History = PastQueries
NO_PAST_QUERIES = PastQueries({})


def past_queries(history: Mapping[str, tuple[int, float]]) -> PastQueries:
    """``history`` as :class:`PastQueries`, indexed now if it is a plain mapping."""
    if isinstance(history, PastQueries):
        return history
    return PastQueries(history) if history else NO_PAST_QUERIES


def histories_before(
    prior: Sequence[Session], sessions: Sequence[Session], max_queries: int = 200
) -> list[History]:
    """One history per pair of ``sessions``, in the order their pairs come (session by session)."""
    by_user: dict[str, list[tuple[float, int, Session]]] = defaultdict(list)
    for s in prior:
        by_user[s.user].append((s.start, -1, s))
    for i, s in enumerate(sessions):
        by_user[s.user].append((s.start, i, s))
    out: dict[int, list[History]] = {}
    for timeline in by_user.values():
        if all(i < 0 for _, i, _ in timeline):
            continue
        timeline.sort(key=lambda item: (item[0], item[1]))
        known: OrderedDict[str, list[float]] = OrderedDict()  # query -> [count, last start], oldest first
        for start, i, session in timeline:
            snapshots: list[History] = []
            for j, query in enumerate(session.queries):
                if i >= 0 and j > 0:
                    stats = {q: (int(c), (start - last) / _DAY) for q, (c, last) in known.items()}
                    snapshots.append(PastQueries(stats))
                entry = known.pop(query, None)
                known[query] = [1.0, start] if entry is None else [entry[0] + 1.0, start]
                if len(known) > max_queries:
                    known.popitem(last=False)
            if i >= 0:
                out[i] = snapshots
    return [h for i in range(len(sessions)) for h in out[i]]
