"""The candidate generators over the model's logged queries: exact prefix, tails, popular.

- :class:`ExactPrefix`: the labels that start with the typed text, found by the XMR model's
  prefix-constrained beam search and re-ranked with their popularity.
- :class:`UnseenTails`: when no label starts with the typed text, its longest word-boundary tail
  that does ("cheap flights to par" -> "flights to par"), completed the same way, the typed head
  put back in front.
- :class:`PopularFill`: the most popular labels of the prefix, when the links before it came back
  with fewer than ``min(k, matching labels)`` (never expected from the beam; visible as ``popular``).
- :class:`PopularRange`: the most-popular-completion baseline's only link.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from autocomplete.candidates import CandidateBatch, Feature, Request, Source, concatenate, empty_features
from autocomplete.search import BeamSearcher
from indexer.labels import encode, prefix_range
from indexer.model import XmrModel
from indexer.popularity import PopularityIndex


class XmrScorer:
    """The model's ranking of a label range: beam search, then ``log score + w * log(1 + count)``."""

    def __init__(self, model: XmrModel) -> None:
        self.model = model
        self.labels = model.labels
        self.searcher = BeamSearcher.from_tree(model.weights_, model.tree_)
        self.search = model.search
        self._bias_index = np.array([self.searcher.n_features - 1], dtype=np.int32)
        self._bias_value = np.array([model.training.bias], dtype=np.float32)
        self.log_counts = np.log1p(np.asarray(self.labels.counts, dtype=np.float64))

    def ranked(
        self, typed: str, context: str, lo: int, hi: int, k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The best ``k`` labels of ``[lo, hi)``: ids, their re-ranked score relative to the best
        (1 for the first), and their log model score."""
        indices, data = self.model.vectorizer_.transform_one(typed, context)
        indices = np.concatenate((indices, self._bias_index))
        data = np.concatenate((data, self._bias_value))
        pool = max(k, self.search.candidates)
        ids, scores = self.searcher.search(indices, data, lo, hi, len(typed), self.search.beam_width, pool)
        if not len(ids):
            return ids, np.empty(0), np.empty(0)
        log_scores = np.log(np.maximum(scores, 1e-30))
        ranked = log_scores + self.search.popularity_weight * self.log_counts[ids]
        order = np.argsort(-ranked, kind="stable")[:k]
        return ids[order], np.exp(ranked[order] - ranked[order[0]]), log_scores[order]

    def batch(
        self, request: Request, typed: str, lo: int, hi: int, head: str, source: Source
    ) -> CandidateBatch:
        """The ranked labels of ``[lo, hi)`` after ``head``, filled from popularity when short."""
        ids, scores, log_scores = self.ranked(typed, request.context, lo, hi, request.k)
        texts = [head + self.labels.text(int(i)) for i in ids]
        features = empty_features(len(ids))
        features[:, Feature.MODEL_LOG_SCORE] = log_scores
        features[:, Feature.LOG_COUNT] = self.log_counts[ids]
        features[:, Feature.HEAD_CHARS] = len(head)
        batch = CandidateBatch(texts, [source] * len(ids), scores, features)
        want = min(request.k, hi - lo)
        if len(batch) < want:  # the beam came back short: never expected, visible as "popular"
            extra = popular_batch(
                self.model.popularity_, typed, head, want - len(batch), set(texts), want + len(batch)
            )
            batch = concatenate([batch, extra])
        return batch

    def warm_up(self) -> None:
        self.searcher.warm_up()
        self.ranked("a", "warm up", 0, len(self.labels), 10)


def popular_batch(
    popularity: PopularityIndex, typed: str, head: str, room: int, seen: set[str], pool: int
) -> CandidateBatch:
    """At most ``room`` of the ``pool`` most popular labels of ``typed`` not in ``seen``, after ``head``."""
    ids = [int(i) for i in popularity.top_ids(typed, pool)]
    texts: list[str] = []
    rows: list[int] = []
    for i in ids:
        text = head + popularity.labels.text(i)
        if text not in seen and len(texts) < room:
            seen.add(text)
            texts.append(text)
            rows.append(i)
    features = empty_features(len(rows))
    features[:, Feature.LOG_COUNT] = np.log1p(popularity.labels.counts[rows].astype(np.float64))
    features[:, Feature.HEAD_CHARS] = len(head)
    return CandidateBatch(texts, [Source.POPULAR] * len(rows), np.zeros(len(rows)), features)


class ExactPrefix:
    """The labels that start with the typed text, ranked by the model with the context."""

    def __init__(self, scorer: XmrScorer) -> None:
        self.scorer = scorer

    def generate(self, request: Request, found: Sequence[CandidateBatch]) -> CandidateBatch | None:
        if request.hi <= request.lo or request.k <= 0:
            return None
        return self.scorer.batch(request, request.typed, request.lo, request.hi, "", Source.EXACT)

    def warm_up(self) -> None:
        self.scorer.warm_up()


class UnseenTails:
    """No label starts with the typed text: keep its first words and complete the rest.

    "cheap flights to par" may never have been searched whole, but "flights to paris" was: the
    tails that start at a word boundary are tried longest first (at most ``max_tails`` of them),
    each ranked by the model with the same context; no candidate scores above the one before it.
    """

    def __init__(self, scorer: XmrScorer, max_tails: int) -> None:
        self.scorer = scorer
        self.max_tails = max_tails

    def generate(self, request: Request, found: Sequence[CandidateBatch]) -> CandidateBatch | None:
        if request.hi > request.lo or request.k <= 0 or self.max_tails <= 0:
            return None
        typed, labels = request.typed, self.scorer.labels
        texts: list[str] = []
        sources: list[Source] = []
        scores: list[float] = []
        rows: list[np.ndarray] = []
        tails = 0
        for start in range(1, len(typed)):
            if typed[start - 1] != " " or tails >= self.max_tails or len(texts) >= request.k:
                continue
            lo, hi = prefix_range(labels.indptr, labels.chars, encode(typed[start:]))
            if lo == hi:
                continue
            tails += 1
            floor = scores[-1] if scores else 1.0
            batch = self.scorer.batch(request, typed[start:], lo, hi, typed[:start], Source.TAIL)
            for i, text in enumerate(batch.texts):
                if text not in texts and len(texts) < request.k:
                    texts.append(text)
                    sources.append(batch.sources[i])
                    scores.append(min(float(batch.scores[i]), floor))
                    rows.append(batch.features[i])
        if not texts:
            return None
        return CandidateBatch(texts, sources, np.array(scores), np.array(rows, dtype=np.float32))

    def warm_up(self) -> None:
        self.scorer.warm_up()


class PopularFill:
    """Tops up a short answer with the prefix's most popular labels (score 0, after the rest)."""

    def __init__(self, popularity: PopularityIndex) -> None:
        self.popularity = popularity

    def generate(self, request: Request, found: Sequence[CandidateBatch]) -> CandidateBatch | None:
        want = min(request.k, request.hi - request.lo)
        have = sum(len(b) for b in found)
        if have >= want:
            return None
        seen = {text for b in found for text in b.texts}
        return popular_batch(self.popularity, request.typed, "", want - have, seen, request.k + have)

    def warm_up(self) -> None:
        self.popularity.top_ids("a", 10)


class PopularRange:
    """Most-popular completion: the ``k`` most frequent labels that start with the typed text,
    ties broken by the label text; score = the label's share of all training counts."""

    def __init__(self, popularity: PopularityIndex) -> None:
        self.popularity = popularity
        counts = np.asarray(popularity.labels.counts)
        self._share = counts / float(max(int(counts.sum()), 1))
        self._log_counts = np.log1p(counts.astype(np.float64))

    def generate(self, request: Request, found: Sequence[CandidateBatch]) -> CandidateBatch | None:
        if request.k <= 0:
            return None
        ids = self.popularity.top_ids(request.typed, request.k)
        features = empty_features(len(ids))
        features[:, Feature.LOG_COUNT] = self._log_counts[ids]
        texts = [self.popularity.labels.text(int(i)) for i in ids]
        return CandidateBatch(texts, [Source.POPULAR] * len(ids), self._share[ids], features)

    def warm_up(self) -> None:
        self.popularity.top_ids("a", 10)
        self.popularity.top_ids("", 10)
