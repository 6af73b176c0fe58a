"""The co-occurrence baseline (bench only): memorized pairs, then MPC, then the tail rule.

For the typed prefix: the next queries that followed this exact previous query in training, most
frequent first, that start with the prefix; then the most popular labels that start with it; and
for a prefix no label starts with, the typed head kept and its longest word-boundary tail that
matches completed from MPC ("cheap flights to par" -> "cheap " + MPC of "flights to par"). No
model, no features: the figure a learned model has to beat to say it learned anything.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from autocomplete.completer import Completion
from indexer.labels import encode, prefix_range
from indexer.normalize import get_normalizer, normalize_prefix
from indexer.pipeline import TrainingData
from indexer.popularity import PopularityIndex


def popular_or_tail(popularity: PopularityIndex, typed: str, room: int, taken: Sequence[str]) -> list[str]:
    """At most ``room`` labels not in ``taken``: the most popular that start with ``typed``, or,
    when none does, the longest matching word-boundary tail's most popular after the typed head."""
    labels = popularity.labels
    head, tail = "", typed
    lo, hi = prefix_range(labels.indptr, labels.chars, encode(typed))
    if lo == hi:
        for start in range(1, len(typed)):
            if typed[start - 1] == " ":
                lo, hi = prefix_range(labels.indptr, labels.chars, encode(typed[start:]))
                if lo < hi:
                    head, tail = typed[:start], typed[start:]
                    break
    if lo == hi or room <= 0:
        return []
    skip = set(taken)
    texts = [head + labels.text(int(i)) for i in popularity.top_ids(tail, room + len(skip))]
    return [t for t in texts if t not in skip][:room]


class CooccurrenceCompleter:
    """``complete(prefix, previous, k)`` from the training pairs of :class:`TrainingData`."""

    kind = "cooccurrence"

    def __init__(self, data: TrainingData, normalization: str) -> None:
        self.normalization = normalization
        self._normalize = get_normalizer(normalization)
        self.popularity = PopularityIndex(data.labels)
        followers: dict[str, Counter] = defaultdict(Counter)
        for prev, nxt in zip(data.pairs.previous, data.pairs.next):
            followers[prev][nxt] += 1
        self.followers = {
            prev: [q for q, _ in sorted(c.items(), key=lambda qc: (-qc[1], qc[0]))]
            for prev, c in followers.items()
        }

    def normalize_prefix(self, prefix: str) -> str:
        return normalize_prefix(prefix, self.normalization)

    def normalize_query(self, query: str) -> str:
        return self._normalize(query)

    def complete(self, prefix: str, previous: Sequence[str] = (), k: int = 10) -> list[Completion]:
        if k <= 0:
            return []
        typed = self.normalize_prefix(prefix)
        texts: list[str] = []
        for query in self.followers.get(previous[-1], ()) if previous else ():
            if query.startswith(typed):
                texts.append(query)
                if len(texts) == k:
                    break
        texts += popular_or_tail(self.popularity, typed, k - len(texts), texts)
        return [Completion(t, 1.0 / (i + 1), "cooccurrence") for i, t in enumerate(texts)]

    def prepare(self, previous: Sequence[str]) -> None:
        return None  # nothing is kept per context

    def warm_up(self) -> None:
        self.complete("a", ["warm up"], 10)
