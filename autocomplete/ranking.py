"""The ranking step of the chain: merge the candidates of every link, score them, keep the top k.

:class:`LearnedRanker` merges candidates that are the same text (their feature rows by maximum,
their source from the first link that proposed them), fills the features every candidate has
(whether it is a logged query and how popular, how often it followed the previous query, lengths,
the context flag) and scores the rows with the model's :class:`indexer.ranking.TreeRanker`. The
same merge gives the ranker's training rows (:meth:`LearnedRanker.features`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numba
import numpy as np

from autocomplete.candidates import (
    N_FEATURES,
    CandidateBatch,
    Feature,
    Ranked,
    Request,
    Source,
    concatenate,
    variant_key,
)
from autocomplete.context import ContextWords
from indexer.caches import through_cache
from indexer.cooccurrence import PairCounts
from indexer.labels import LabelSet
from indexer.modelio import freeze
from indexer.ranking import TreeRanker

if TYPE_CHECKING:
    from autocomplete.live import LiveView


def _most_popular_spelling(
    texts: list[str], slot: np.ndarray, spellings: list[str], log_counts: np.ndarray
) -> list[str]:
    """Each query's most popular spelling among those that start with the typed text (a
    correction's spelling is never swapped in: its matched span belongs to another text)."""
    best = np.full(len(texts), -np.inf)
    out = list(texts)
    for i, s in enumerate(slot.tolist()):
        if log_counts[i] > best[s]:
            best[s] = log_counts[i]
            out[s] = spellings[i]
    return out


@numba.njit(cache=True, nogil=True)
def merge_rows(
    slot: np.ndarray, n_slots: int, features: np.ndarray, label_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One row per distinct candidate: row ``s`` is the element-wise maximum of the ``features``
    rows ``i`` with ``slot[i] == s`` (and of their ``label_ids``); ``first[s]``: the first such ``i``."""
    X = np.empty((n_slots, features.shape[1]), dtype=features.dtype)
    ids = np.empty(n_slots, dtype=label_ids.dtype)
    first = np.full(n_slots, -1, dtype=np.int64)
    for i in range(slot.shape[0]):
        r = slot[i]
        if first[r] < 0:
            first[r] = i
            X[r] = features[i]
            ids[r] = label_ids[i]
            continue
        for j in range(features.shape[1]):
            if features[i, j] > X[r, j]:
                X[r, j] = features[i, j]
        if label_ids[i] > ids[r]:
            ids[r] = label_ids[i]
    return X, ids, first


IS_LABEL, LOG_COUNT, PAIR_LOG_COUNT = (
    int(Feature.IS_LABEL),
    int(Feature.LOG_COUNT),
    int(Feature.PAIR_LOG_COUNT),
)
CHARS_ADDED, TYPED_CHARS = int(Feature.CHARS_ADDED), int(Feature.TYPED_CHARS)
HAS_CONTEXT, ECHO = int(Feature.HAS_CONTEXT), int(Feature.ECHO)


@numba.njit(cache=True, nogil=True)
def fill_common(
    X: np.ndarray,
    ids: np.ndarray,
    log_counts: np.ndarray,
    followed: np.ndarray,
    counts: np.ndarray,
    lengths: np.ndarray,
    typed_chars: int,
    has_context: bool,
) -> None:
    """The columns every candidate has: whether it is a label and how popular, ``log(1 + count)``
    of it after the previous query (``followed``/``counts``: the labels that followed it, a short
    row: scanned, not searched), and its length against the typed text."""
    for i in range(ids.shape[0]):
        label = ids[i]
        if label >= 0:
            X[i, IS_LABEL] = 1.0
            X[i, LOG_COUNT] = log_counts[label]
            for j in range(followed.shape[0]):
                if followed[j] == label:
                    X[i, PAIR_LOG_COUNT] = np.log1p(np.float64(counts[j]))
                    break
        added = lengths[i] - typed_chars
        X[i, CHARS_ADDED] = added
        X[i, TYPED_CHARS] = typed_chars
        X[i, HAS_CONTEXT] = 1.0 if has_context else 0.0
        X[i, ECHO] = 1.0 if added == 0 else 0.0


HISTORY_LOG_COUNT, HISTORY_RECENCY = int(Feature.HISTORY_LOG_COUNT), int(Feature.HISTORY_RECENCY)


@numba.njit(cache=True, nogil=True)
def fill_history(X: np.ndarray, at: np.ndarray, counts: np.ndarray, days: np.ndarray) -> None:
    """The person's count and recency of every candidate ``i`` they submitted before: their
    past query ``at[i]`` (-1: never submitted)."""
    for i in range(at.shape[0]):
        p = at[i]
        if p >= 0:
            X[i, HISTORY_LOG_COUNT] = np.log1p(counts[p])
            X[i, HISTORY_RECENCY] = 1.0 / (1.0 + days[p])


_NO_PAIRS = (np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int32))
freeze(*_NO_PAIRS)
_MADE_CACHE = 1 << 16  # generated texts whose label id (or -1) is kept


class LearnedRanker:
    """Candidates ranked by a learned scorer over their merged feature rows.

    Parameters
    ----------
    labels : LabelSet
    pairs : PairCounts or None
        (previous query -> next label) counts, for the ``PAIR_LOG_COUNT`` feature.
    model : TreeRanker or None
        None: the rows are still built (for training), ``rank`` keeps the chain order.
    fold_variants : bool
        Spellings differing only in case, punctuation or spacing are one candidate, shown in its
        most popular logged spelling.
    context : ContextWords or None
        Fills the context columns that generalize over people (word overlap and word links
        between the previous query and each candidate).
    live : LiveView or None
        The worker's live counts, for the live feature columns (None: they stay 0).
    """

    def __init__(
        self,
        labels: LabelSet,
        pairs: PairCounts | None,
        model: TreeRanker | None,
        fold_variants: bool = False,
        context: ContextWords | None = None,
        live: LiveView | None = None,
    ) -> None:
        self.labels = labels
        self.pairs = pairs
        self.model = model
        self.fold_variants = fold_variants
        self.context = context
        self.live = live
        self._log_counts = labels.log_counts
        self._made_ids: dict[str, int] = {}
        # no previous query: an empty row of the pair arrays (read-only, one kernel type for both)
        self._no_pairs = (pairs.labels_[:0], pairs.counts_[:0]) if pairs is not None else _NO_PAIRS

    def features(
        self, request: Request, batches: Sequence[CandidateBatch]
    ) -> tuple[list[str], list[Source], np.ndarray, np.ndarray, np.ndarray]:
        """Distinct texts (first proposal first), their sources, feature rows, chain scores and
        matched spans (-1: the text starts with the typed text)."""
        joined = concatenate(batches)
        keys = [variant_key(t) for t in joined.texts] if self.fold_variants else joined.texts
        slot_of: dict[str, int] = {}
        slot = np.array([slot_of.setdefault(key, len(slot_of)) for key in keys], dtype=np.int64)
        X, ids, first = merge_rows(slot, len(slot_of), joined.features, joined.label_ids)
        rows = first.tolist()
        if not self.fold_variants:
            texts = list(slot_of)  # the distinct texts, first proposal first
        else:  # show each query in its most popular logged spelling
            texts = [joined.texts[i] for i in rows]
            if len(rows) < len(keys):
                counts = np.where(
                    joined.matched_or_default() < 0, joined.features[:, Feature.LOG_COUNT], -np.inf
                )
                texts = _most_popular_spelling(texts, slot, joined.texts, counts)
        made = np.flatnonzero(ids == -1).tolist()  # not looked up by the link that made them
        if made and request.lo == request.hi:  # no label starts with the typed text: a text that does is none
            typed = request.typed
            made = [i for i in made if not texts[i].startswith(typed)]
        if made:  # a generated text may be a logged query
            id_of = self.labels.id_of  # generated texts come back keystroke after keystroke
            ids[made] = through_cache(
                self._made_ids, [texts[i] for i in made], lambda m: [id_of(t) for t in m], _MADE_CACHE
            )
        followed, counts = self._no_pairs
        if self.pairs is not None and request.context:
            row = self.pairs.row(request.context)
            if len(row[0]):
                followed, counts = row
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        fill_common(
            X, ids, self._log_counts, followed, counts, lengths, len(request.typed), bool(request.context)
        )
        history = request.history
        if history:
            fill_history(X, history.positions(texts), history.counts, history.days)
        if self.context is not None and request.context:
            self.context.fill(X, texts, ids, request.context)
        if self.live is not None:
            self.live.fill(texts, X)
        matched = joined.matched_or_default()[first]
        return texts, [joined.sources[i] for i in rows], X, joined.scores[first], matched

    def prepare(self, context: str) -> None:
        if self.context is not None:
            self.context.previous(context)

    def warm_up(self) -> None:
        """Compile the merge kernels for the arrays a keystroke passes them (the pair rows are
        slices of the model's read-only arrays, a type of their own to numba)."""
        ids = np.zeros(1, dtype=np.int64)
        X, ids, _ = merge_rows(ids, 1, np.zeros((1, N_FEATURES), dtype=np.float32), ids)
        followed, counts = self._no_pairs
        fill_common(X, ids, self._log_counts, followed, counts, ids.copy(), 1, True)
        fill_history(X, ids, np.ones(1), np.ones(1))
        if self.context is not None:
            self.context.warm_up()
        if self.model is not None:
            self.model.score(X)

    def rank(self, request: Request, batches: Sequence[CandidateBatch]) -> list[Ranked]:
        if not batches:
            return []
        texts, sources, X, chain_scores, matched = self.features(request, batches)
        if self.model is None:
            order = np.arange(len(texts))[: request.k]
            scores = chain_scores[order]
        else:
            raw = self.model.score(X)
            order = np.argsort(-raw, kind="stable")[: request.k]
            scores = np.exp(raw[order] - raw[order[0]])
        spans = matched[order].tolist()
        return [(texts[i], s, sources[i], m) for i, s, m in zip(order.tolist(), scores.tolist(), spans)]
