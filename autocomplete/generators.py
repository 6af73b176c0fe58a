"""The candidate generators: the chain's links, each (request, batches so far) -> a batch.

- :class:`ExactPrefix`: the labels that start with the typed text, found by the XMR model's
  prefix-constrained beam search and re-ranked with their popularity.
- :class:`FollowedBefore`: the labels that followed the session's previous query in training and
  start with the typed text, most frequent first.
- :class:`UnseenTails`: when no label starts with the typed text, its longest word-boundary tail
  that does ("cheap flights to par" -> "flights to par"), completed the same way, the typed head
  put back in front.
- :class:`Generated`: the typed words with the unfinished word completed and further words added
  by the word language model (queries nobody typed whole).
- :class:`FromHistory`: the person's own past queries that start with the typed text, the most
  often and most recently submitted first.
- :class:`PopularFill`: the most popular labels of the prefix, when the links before it came back
  with fewer than ``min(k, matching labels)`` (never expected from the beam; visible as ``popular``).
- :class:`PopularRange`: the most-popular-completion baseline's only link.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from autocomplete.candidates import (
    CandidateBatch,
    Feature,
    Request,
    Source,
    concatenate,
    empty_features,
    looked_up,
)
from autocomplete.fuzzy import fuzzy_ranges, top_in_ranges, trie_top
from autocomplete.fuzzy import warm_up as fuzzy_warm_up
from autocomplete.generation import Candidates, Generator
from autocomplete.search import BeamSearcher, rerank_by_count
from indexer.caches import through_cache
from indexer.cooccurrence import PairCounts
from indexer.labels import LabelSet, encode, prefix_range
from indexer.model import XmrModel
from indexer.params import FuzzyParams
from indexer.popularity import PopularityIndex


def label_batch(
    labels: LabelSet, ids: np.ndarray, scores: np.ndarray, source: Source, head: str = ""
) -> CandidateBatch:
    """A batch of labels ``ids`` (after ``head``: then the texts are no labels) with their own scores."""
    ids = np.asarray(ids, dtype=np.int64)
    features = empty_features(len(ids), source)
    features[:, Feature.HEAD_CHARS] = len(head)
    features[:, Feature.LOG_COUNT] = labels.log_counts[ids]
    texts = [head + text for text in labels.texts_of(ids)] if head else labels.texts_of(ids)
    label_ids = np.full(len(ids), -1, dtype=np.int64) if head else ids
    return CandidateBatch(
        texts, [source] * len(ids), np.asarray(scores, dtype=np.float64), features, label_ids
    )


_CONTEXT_CACHE = 1024  # previous queries whose input columns a worker keeps
_TYPED_CACHE = 1 << 14  # typed texts whose input columns a worker keeps
_NO_VECTOR = (np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float32))


class XmrScorer:
    """The model's ranking of a label range: beam search, then ``log score + w * log(1 + count)``."""

    def __init__(self, model: XmrModel) -> None:
        self.model = model
        self.labels = model.labels
        self.searcher = BeamSearcher.from_tree(model.weights_, model.tree_)
        self.search = model.search
        self._bias_index = np.array([self.searcher.n_features - 1], dtype=np.int32)
        self._bias_value = np.array([model.training.bias], dtype=np.float32)
        self.log_counts = self.labels.log_counts
        self._context_parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._typed_parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def ranked(
        self, typed: str, context: str, lo: int, hi: int, n: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The best ``n`` labels of ``[lo, hi)``: ids, their re-ranked score relative to the best
        (1 for the first), and their log model score."""
        indices, data = through_cache(self._typed_parts, [typed], self._typed_columns, _TYPED_CACHE)[0]
        tail_indices, tail_data = self.context_part(context)
        indices = np.concatenate((indices, tail_indices))
        data = np.concatenate((data, tail_data))
        pool = max(n, self.search.candidates)
        ids, scores = self.searcher.search(indices, data, lo, hi, len(typed), self.search.beam_width, pool)
        if not len(ids):
            return ids, np.empty(0), np.empty(0)
        log_scores = np.log(np.maximum(scores, 1e-30))
        ids, ranked, log_scores = rerank_by_count(
            ids, log_scores, self.log_counts, self.search.popularity_weight, n
        )
        return ids, np.exp(ranked - ranked[0]), log_scores

    def _typed_columns(self, typed: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """The input vector's typed-text columns (the same for everyone who types it)."""
        return [self.model.vectorizer_.transform_one(t) for t in typed]

    def context_part(self, context: str) -> tuple[np.ndarray, np.ndarray]:
        """The input vector's columns that come after the typed text's: the previous query's
        (kept per context: it changes only when a query is submitted) and the bias."""
        return through_cache(self._context_parts, [context], self._context_columns, _CONTEXT_CACHE)[0]

    def _context_columns(self, contexts: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        for context in contexts:
            indices, data = self.model.vectorizer_.previous_vector(context) if context else _NO_VECTOR
            out.append(
                (np.concatenate((indices, self._bias_index)), np.concatenate((data, self._bias_value)))
            )
        return out

    def batch(
        self, request: Request, typed: str, lo: int, hi: int, n: int, head: str, source: Source
    ) -> CandidateBatch:
        """The ``n`` best labels of ``[lo, hi)`` after ``head``, filled from popularity when short."""
        ids, scores, log_scores = self.ranked(typed, request.context, lo, hi, n)
        batch = label_batch(self.labels, ids, scores, source, head)
        batch.features[:, Feature.MODEL_LOG_SCORE] = log_scores
        want = min(n, hi - lo)
        if len(batch) < want:  # the beam came back short: never expected, visible as "popular"
            pool = want + len(batch)
            extra = popular_batch(
                self.model.popularity_, typed, head, want - len(batch), set(batch.texts), pool
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
    kept: list[int] = []
    for i in ids:
        text = head + popularity.labels.text(i)
        if text not in seen and len(kept) < room:
            seen.add(text)
            kept.append(i)
    return label_batch(
        popularity.labels, np.array(kept, dtype=np.int64), np.zeros(len(kept)), Source.POPULAR, head
    )


class ExactPrefix:
    """The labels that start with the typed text, ranked by the model with the context; ``pool``
    of them (default: the answer's ``k``) go on to the ranking step."""

    def __init__(self, scorer: XmrScorer, pool: int = 0) -> None:
        self.scorer = scorer
        self.pool = pool

    def generate(self, request: Request, found: Sequence[CandidateBatch]) -> CandidateBatch | None:
        if request.hi <= request.lo or request.k <= 0:
            return None
        n = max(self.pool, request.k)
        return self.scorer.batch(request, request.typed, request.lo, request.hi, n, "", Source.EXACT)

    def prepare(self, context: str) -> None:
        self.scorer.context_part(context)  # the tails' link shares the scorer

    def warm_up(self) -> None:
        self.scorer.warm_up()


class FollowedBefore:
    """The labels that followed the session's previous query in training, starting with the
    typed text, most frequent first (at most ``limit``)."""

    def __init__(self, pairs: PairCounts, labels: LabelSet, limit: int) -> None:
        self.pairs = pairs
        self.labels = labels
        self.limit = limit

    def generate(self, request: Request, found: Sequence[CandidateBatch]) -> CandidateBatch | None:
        if not request.context or request.hi <= request.lo or self.limit <= 0:
            return None
        ids, counts = self.pairs.row(request.context)
        inside = (ids >= request.lo) & (ids < request.hi)
        ids, counts = ids[inside][: self.limit], counts[inside][: self.limit]
        if not len(ids):
            return None
        return label_batch(self.labels, ids, counts.astype(np.float64), Source.FOLLOWED)

    def warm_up(self) -> None:
        self.pairs.row("warm up")


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
        kept: list[CandidateBatch] = []
        seen: set[str] = set()
        floor, tails, n = 1.0, 0, 0
        for start in range(1, len(typed)):
            if typed[start - 1] != " " or tails >= self.max_tails or n >= request.k:
                continue
            lo, hi = prefix_range(labels.indptr, labels.chars, encode(typed[start:]))
            if lo == hi:
                continue
            tails += 1
            batch = self.scorer.batch(request, typed[start:], lo, hi, request.k, typed[:start], Source.TAIL)
            rows = [i for i, text in enumerate(batch.texts) if text not in seen][: request.k - n]
            seen.update(batch.texts[i] for i in rows)
            scores = np.minimum(batch.scores[rows], floor)
            kept.append(
                CandidateBatch(
                    [batch.texts[i] for i in rows],
                    [batch.sources[i] for i in rows],
                    scores,
                    batch.features[rows],
                    batch.label_ids[rows],
                )
            )
            n += len(rows)
            floor = float(scores[-1]) if len(rows) else floor
        return concatenate(kept) if kept else None

    def warm_up(self) -> None:
        self.scorer.warm_up()


# typed texts whose generated completions (without the previous query: they depend on the typed
# text alone) a worker keeps; the short prefixes everyone types first, the dearest to generate, hit
_PLAIN_KEPT = 1 << 14


class Generated:
    """Queries nobody may have typed whole: the typed words, the unfinished one completed from
    the vocabulary, then up to a few more words, from the word language model; with a previous
    query, ``context_limit`` more from the language model with its words mixed in (the
    generator's ``cache_weight``), marked ``LM_CACHED``, when the typed text ends a word or its
    unfinished word starts a word of the previous query."""

    def __init__(
        self, generator: Generator, limit: int, context_limit: int = 0, labels: LabelSet | None = None
    ) -> None:
        self.generator = generator
        self.limit = limit
        self.context_limit = context_limit if generator.cache_weight > 0.0 else 0
        self.labels = labels
        # typed text -> its batch without the previous query (read-only downstream) and its texts
        self._plain: dict[str, tuple[CandidateBatch | None, frozenset[str]]] = {}

    def generate(self, request: Request, found: Sequence[CandidateBatch]) -> CandidateBatch | None:
        if self.limit <= 0 or not request.typed.strip():
            return None
        plain, known = through_cache(self._plain, [request.typed], self._generate_plain, _PLAIN_KEPT)[0]
        if not request.context or self.context_limit <= 0:
            return plain
        partial = request.typed.rsplit(" ", 1)[-1]
        if partial and not any(w.startswith(partial) for w in request.context.split()):
            return plain  # no word of the previous query can complete it: the mixture changes little
        made = self.generator.generate(
            request.typed, self.limit + self.context_limit, previous=request.context
        )
        keep = [i for i, text in enumerate(made.text) if text not in known][: self.context_limit]
        cached = self._batch(made, cached=True, rows=keep)
        parts = [b for b in (plain, cached) if b is not None]
        return concatenate(parts) if parts else None

    def _generate_plain(self, typed: list[str]) -> list[tuple[CandidateBatch | None, frozenset[str]]]:
        """Each typed text's batch, with the label ids of the generated texts that are logged
        queries (found once here, not by the ranker at every keystroke that asks again)."""
        out = []
        for text in typed:
            batch = self._batch(self.generator.generate(text, self.limit), cached=False)
            if batch is not None and self.labels is not None:
                batch.label_ids = looked_up(self.labels, batch.texts)
            out.append((batch, frozenset(batch.texts) if batch is not None else frozenset()))
        return out

    @staticmethod
    def _batch(made: Candidates, cached: bool, rows: list[int] | None = None) -> CandidateBatch | None:
        texts = list(made.text) if rows is None else [made.text[i] for i in rows]
        n = len(texts)
        if not n:
            return None
        pick = slice(None) if rows is None else np.asarray(rows, dtype=np.int64)
        features = empty_features(n, Source.GENERATED)
        features[:, Feature.LM_LOGPROB] = made.logprob[pick]
        features[:, Feature.LM_END_LOGPROB] = made.end_logprob[pick]
        features[:, Feature.WORDS_ADDED] = made.n_added[pick]
        features[:, Feature.COMPLETED_COUNT] = np.log1p(made.completed_count[pick])
        features[:, Feature.BACKOFF_STEPS] = made.backoff_steps[pick]
        features[:, Feature.LM_CACHED] = float(cached)
        scores = made.logprob[pick] + made.end_logprob[pick]
        return CandidateBatch(texts, [Source.GENERATED] * n, scores, features, np.full(n, -1))

    def prepare(self, context: str) -> None:
        if self.context_limit > 0:
            self.generator.cache_words(context)

    def warm_up(self) -> None:
        self.generator.warm_up()
        if self.context_limit > 0:
            self.generator.generate("a", 2, previous="warm up")


_FUZZY_WALKS = 3  # walks per keystroke at most: the whole text and its two longest tails
_NOTHING_KEPT = 1 << 14  # texts known to have no label prefix near them that a worker keeps


class FuzzyPrefix:
    """Typos: the most popular logged queries whose prefix is a few edits from the typed text,
    cheapest first, when fewer than ``params.when_fewer`` logged queries start with it. When none
    is near the whole text, the same is tried on its longest word-boundary tail that has one, the
    typed head kept in front (as :class:`UnseenTails` does for exact tails). Each candidate says
    how many of its leading characters stand for the typed text (``matched``).

    A text one character longer than one that is known to have nothing within the same edits is
    not walked: appending a character never brings a label prefix closer (an alignment of the
    longer text, cut where the shorter one ends, aligns a shorter label prefix with it for no
    more). So as someone types on past the last logged query, a walk that found nothing is not
    repeated at every keystroke; the answers are the same.

    ``asked`` counts the keystrokes that walked the trie at all, ``walks`` the walks (at most three
    per keystroke), so a benchmark can say how often the walk ran."""

    def __init__(self, popularity: PopularityIndex, params: FuzzyParams) -> None:
        self.popularity = popularity
        self.params = params
        self.top_runs = trie_top(popularity.labels.indptr, popularity.labels.chars)
        self.asked = 0
        self.walks = 0
        self._nothing_within: dict[str, int] = {}  # text -> edits within which no label prefix is

    def generate(self, request: Request, found: Sequence[CandidateBatch]) -> CandidateBatch | None:
        p, typed = self.params, request.typed
        if not p.enabled or request.hi - request.lo >= p.when_fewer or p.max_distance(len(typed)) == 0:
            return None
        self.asked += 1
        starts = [0] + [i for i in range(1, len(typed)) if typed[i - 1] == " "]
        for start in starts[:_FUZZY_WALKS]:  # the whole text first, then ever shorter tails
            tail = typed[start:]
            if p.max_distance(len(tail)) == 0:
                return None
            batch = self._near(tail, typed[:start], request)
            if batch is not None:
                return batch
        return None

    def _near(self, tail: str, head: str, request: Request) -> CandidateBatch | None:
        p, labels = self.params, self.popularity.labels
        edits = p.max_distance(len(tail))
        if self._nothing_within.get(tail[:-1], -1) >= edits:
            self._keep_nothing(tail, edits)
            return None
        self.walks += 1
        ranges = fuzzy_ranges(labels.indptr, labels.chars, self.top_runs, tail, p)
        if not len(ranges.lo):
            if not ranges.truncated:  # the whole trie within ``edits`` was seen: nothing there
                self._keep_nothing(tail, edits)
            return None
        ids, cost, matched = top_in_ranges(
            self.popularity.table, labels.counts, ranges.lo, ranges.hi, ranges.cost, ranges.matched_len,
            p.candidates, True,
        )  # fmt: skip
        if not head:  # the exact matches of the whole text are the other links' business
            outside = (ids < request.lo) | (ids >= request.hi)
            ids, cost, matched = ids[outside], cost[outside], matched[outside]
        if not len(ids):
            return None
        batch = label_batch(labels, ids, -cost.astype(np.float64), Source.FUZZY, head)
        batch.features[:, Feature.EDIT_COST] = cost
        batch.matched = (matched + len(head)).astype(np.int32)
        return batch

    def _keep_nothing(self, text: str, edits: int) -> None:
        if len(self._nothing_within) >= _NOTHING_KEPT:
            self._nothing_within.clear()
        self._nothing_within[text] = edits

    def warm_up(self) -> None:
        labels = self.popularity.labels
        fuzzy_warm_up(labels.indptr, labels.chars, self.top_runs, self.popularity.table, labels.counts)
        self.asked = self.walks = 0


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

    def generate(self, request: Request, found: Sequence[CandidateBatch]) -> CandidateBatch | None:
        if request.k <= 0:
            return None
        # twice k: a ranker folding spelling variants still has k distinct queries to show
        ids = self.popularity.top_ids(request.typed, 2 * request.k)
        return label_batch(self.popularity.labels, ids, self._share[ids], Source.POPULAR)

    def warm_up(self) -> None:
        self.popularity.top_ids("a", 10)
        self.popularity.top_ids("", 10)


class FromHistory:
    """Up to ``n`` of the person's past queries that start with the typed text, ordered by
    ``count / (1 + days since last)``; each carries its count and recency as features (the
    ranking step sets them on every candidate the person submitted before, whoever proposed it)."""

    def __init__(self, labels: LabelSet, n: int) -> None:
        self.labels = labels
        self.n = n

    def generate(self, request: Request, found: Sequence[CandidateBatch]) -> CandidateBatch | None:
        history = request.history
        if self.n <= 0 or not history:
            return None
        lo, hi = history.span(request.typed)
        if lo == hi:
            return None
        order, weight = most_weighted(history.counts, history.days, history.position, lo, hi, self.n)
        texts = [history.sorted_queries[lo + i] for i in order.tolist()]
        ids = looked_up(self.labels, texts)  # so the ranker keeps no copy of a personal query
        features = empty_features(len(texts), Source.HISTORY)
        return CandidateBatch(texts, [Source.HISTORY] * len(texts), weight, features, ids)

    def warm_up(self) -> None:
        one = np.ones(1)
        most_weighted(one, one, np.zeros(1, dtype=np.int64), 0, 1, 1)


@numba.njit(cache=True, nogil=True)
def most_weighted(
    counts: np.ndarray, days: np.ndarray, position: np.ndarray, lo: int, hi: int, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` past queries of ``[lo, hi)`` with the highest ``count / (1 + days)``, ties the
    older (lower ``position``) first: their offsets from ``lo`` and weights."""
    weight = counts[lo:hi] / (1.0 + days[lo:hi])
    by_age = np.argsort(position[lo:hi], kind="mergesort")
    order = by_age[np.argsort(-weight[by_age], kind="mergesort")][:n]
    return order, weight[order]
