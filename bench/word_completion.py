"""MPC + word completion (bench only): what a few lines of open vocabulary do for the baseline.

The most popular labels that start with the typed prefix; when no label does, the unfinished last
word is completed from the training vocabulary (the most frequent words of the training split's
queries, previous and next, that start with it, the typed words kept: "cheap flights to par" ->
"cheap flights to paris"), then the tail rule of :func:`bench.cooccurrence.popular_or_tail` fills the rest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from autocomplete.completer import Completion
from bench.cooccurrence import popular_or_tail
from indexer.labels import LabelSet
from indexer.normalize import get_normalizer, normalize_prefix
from indexer.pipeline import TrainingData
from indexer.popularity import PopularityIndex


class WordCompletionCompleter:
    """``complete(prefix, previous, k)``: MPC, else the last word completed, then tails."""

    kind = "mpc+words"

    def __init__(self, data: TrainingData, normalization: str) -> None:
        self.normalization = normalization
        self._normalize = get_normalizer(normalization)
        self.popularity = PopularityIndex(data.labels)
        words = Counter(w for s in data.log.sessions["train"] for query in s.queries for w in query.split())
        self.words = PopularityIndex(LabelSet(list(words), list(words.values())))

    def normalize_prefix(self, prefix: str) -> str:
        return normalize_prefix(prefix, self.normalization)

    def normalize_query(self, query: str) -> str:
        return self._normalize(query)

    def complete(self, prefix: str, previous: Sequence[str] = (), k: int = 10) -> list[Completion]:
        if k <= 0:
            return []
        typed = self.normalize_prefix(prefix)
        ids = self.popularity.top_ids(typed, k)
        texts = [self.popularity.labels.text(int(i)) for i in ids]
        if not texts and typed and not typed.endswith(" "):
            last = typed.rsplit(" ", 1)[-1]
            head = typed[: len(typed) - len(last)]
            texts = [head + self.words.labels.text(int(i)) for i in self.words.top_ids(last, k)]
        if not ids.shape[0]:
            texts += popular_or_tail(self.popularity, typed, k - len(texts), texts)
        return [Completion(t, 1.0 / (i + 1), "words") for i, t in enumerate(texts)]

    def prepare(self, previous: Sequence[str]) -> None:
        return None  # nothing is kept per context

    def warm_up(self) -> None:
        self.complete("a", ["warm up"], 10)
        self.complete("zzzz qq", [], 10)
