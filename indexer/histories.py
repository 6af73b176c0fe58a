"""What a deployed service would know of each person at each of their queries: their history.

:func:`histories_before` replays a log's sessions person by person in time order and gives, for
every (previous, next) pair of the sessions asked about, the person's history just before the next
query was typed: their last ``max_queries`` distinct queries of the earlier sessions (``prior``,
e.g. the training period) and of their sessions up to this point, each with how often they
submitted it and how many days ago they last did (by session start; 0 within the same session).
The ranker learns from these on the late training sessions, and ``eval --history`` scores with them.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Sequence

from indexer.querylog import Session

History = dict[str, tuple[int, float]]
_DAY = 86400.0


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
                    snapshots.append({q: (int(c), (start - last) / _DAY) for q, (c, last) in known.items()})
                entry = known.pop(query, None)
                known[query] = [1.0, start] if entry is None else [entry[0] + 1.0, start]
                if len(known) > max_queries:
                    known.popitem(last=False)
            if i >= 0:
                out[i] = snapshots
    return [h for i in range(len(sessions)) for h in out[i]]
