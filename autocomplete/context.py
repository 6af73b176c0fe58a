"""The previous query as evidence that generalizes: word statistics over many people, not pairs.

- :class:`ContextWords` fills the ranker's context columns of every candidate (``PREV_SHARE``,
  ``PREV_COVER``, ``LINK_LIFT``, ``LINK_PROB``) from the model's :class:`indexer.wordlinks.WordLinks`:
  how much of the candidate repeats the previous query's words (weighted by rarity) and how
  strongly its words followed the previous query's words in other people's sessions. The previous
  query's part is computed once per context (it changes only when a query is submitted) and kept
  in a small cache; the per-keystroke part is one numba kernel over the candidates' word ids.
- :class:`SharedWords`, a link of the chain: the most popular labels of the typed prefix that
  hold a rare word of the previous query or one of its strongest linked words. With one or two
  letters typed the prefix matches many thousands of labels, and these are the ones a
  reformulation ("house plants" -> "h" -> "house plants care") is likely among.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import NamedTuple

import numba
import numpy as np

from autocomplete.candidates import CandidateBatch, Feature, Request, Source
from autocomplete.generators import label_batch
from indexer.caches import through_cache
from indexer.labels import LabelSet
from indexer.language import lower_bound
from indexer.wordlinks import WordLinks, merged_links

PREV_SHARE, PREV_COVER = int(Feature.PREV_SHARE), int(Feature.PREV_COVER)  # the kernel's columns
LINK_LIFT, LINK_PROB = int(Feature.LINK_LIFT), int(Feature.LINK_PROB)


class _Previous(NamedTuple):
    words: np.ndarray  # int32, the previous query's word ids, ascending
    idf_sum: float
    linked: np.ndarray  # int32, linked word ids, ascending
    lift: np.ndarray  # float32
    prob: np.ndarray  # float32


_NONE = _Previous(
    np.empty(0, np.int32), 0.0, np.empty(0, np.int32), np.empty(0, np.float32), np.empty(0, np.float32)
)


class ContextWords:
    """The previous query's words and links, cached per context, and the candidates' columns."""

    def __init__(self, links: WordLinks, cache_size: int = 1024, word_cache_size: int = 1 << 16) -> None:
        self.links = links
        self.cache_size = cache_size
        self.word_cache_size = word_cache_size
        self._ids: dict[str, int] = {}
        n_labels = len(links.label_indptr_) - 1
        self._unknown_idf = float(np.log(1.0 + n_labels) + 1.0)  # WordLinks' idf of a word no label holds
        self._cache: OrderedDict[str, _Previous] = OrderedDict()

    def previous(self, context: str) -> _Previous:
        if not context:
            return _NONE
        found = self._cache.get(context)
        if found is not None:
            self._cache.move_to_end(context)
            return found
        words = self.links.word_ids(context)
        linked, lift, prob = self.links.linked(words)
        unknown = len(set(context.split())) - len(words)  # words no label holds: the rarest of all
        idf_sum = float(self.links.idf_[words].sum()) + unknown * self._unknown_idf
        found = _Previous(words, idf_sum, linked, lift, prob)
        self._cache[context] = found
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return found

    def warm_up(self) -> None:
        """Compile the kernels for the model's own (read-only, memory-mapped) arrays."""
        links = self.links
        none, words = np.empty(0, np.float32), np.zeros(1, np.int32)
        X = np.zeros((2, len(Feature)), dtype=np.float32)
        ids, ends = np.array([0, -1], dtype=np.int64), np.ones(1, dtype=np.int64)
        context_columns(
            links.label_indptr_, links.label_words_, ids, words, ends, links.idf_, words, 1.0, words,
            none, none, X,
        )  # fmt: skip
        if len(links.link_words_):
            one = np.zeros(1, np.int64)
            merged_links(one, one + 1, links.link_words_, links.lift_, links.prob_)

    def fill(self, X: np.ndarray, texts: Sequence[str], ids: np.ndarray, context: str) -> None:
        """Set the context columns of candidate rows ``X`` (texts ``texts``, label ids ``ids``,
        -1 for a text that is no label)."""
        prev = self.previous(context)
        if not len(prev.words) or not len(texts):
            return
        links = self.links
        made_words: list[int] = []  # the words of the texts no label is (generated, after a head)
        made_ends: list[int] = []
        cache, get = self._ids, links.vocab_.get  # made texts share most words, keystroke after keystroke
        for i in np.flatnonzero(ids < 0).tolist():
            for word in texts[i].split():
                found = cache.get(word)
                if found is None:
                    if len(cache) >= self.word_cache_size:
                        cache.clear()
                    found = cache[word] = get(word, -1)
                made_words.append(found)
            made_ends.append(len(made_words))
        context_columns(
            links.label_indptr_, links.label_words_, ids, np.array(made_words, dtype=np.int32),
            np.array(made_ends, dtype=np.int64), links.idf_, prev.words, prev.idf_sum, prev.linked,
            prev.lift, prev.prob, X,
        )  # fmt: skip


@numba.njit(cache=True, nogil=True)
def context_columns(
    label_indptr: np.ndarray,
    label_words: np.ndarray,
    ids: np.ndarray,
    made_words: np.ndarray,
    made_ends: np.ndarray,
    idf: np.ndarray,
    prev_words: np.ndarray,
    prev_idf_sum: float,
    linked: np.ndarray,
    lift: np.ndarray,
    prob: np.ndarray,
    X: np.ndarray,
) -> None:
    """Row ``i`` of ``X``, a candidate that is label ``ids[i]`` (its words ``label_words`` of
    the CSR ``label_indptr``) or no label (``ids[i] < 0``: the next of the texts whose words are
    ``made_words``, the ``j``-th ending at ``made_ends[j]``): the idf-weighted share of its words
    in the previous query and of the previous query's words in it, and the best lift and
    probability of its words among the previous query's links. A word id below 0 (a word no
    label holds) is skipped, a word repeated in a candidate counted once."""
    made = 0
    for i in range(ids.shape[0]):
        if ids[i] >= 0:
            words, start, end = label_words, label_indptr[ids[i]], label_indptr[ids[i] + 1]
        else:
            words, start, end = made_words, made_ends[made - 1] if made > 0 else 0, made_ends[made]
            made += 1
        _fill_row(words, start, end, idf, prev_words, prev_idf_sum, linked, lift, prob, X, i)


@numba.njit(cache=True, nogil=True, inline="always")
def _fill_row(words, start, end, idf, prev_words, prev_idf_sum, linked, lift, prob, X, r):  # type: ignore[no-untyped-def]
    """Row ``r`` of ``X`` for the candidate whose word ids are ``words[start:end]``."""
    n_linked = linked.shape[0]
    total = 0.0
    shared = 0.0
    best_lift = 0.0
    best_prob = 0.0
    for j in range(start, end):
        w = words[j]
        if w < 0:
            continue
        repeated = False
        for q in range(start, j):
            if words[q] == w:
                repeated = True
                break
        if repeated:
            continue
        weight = idf[w]
        total += weight
        for p in prev_words:
            if p == w:
                shared += weight
                break
        lo = lower_bound(linked, 0, n_linked, w)
        if lo < n_linked and linked[lo] == w:
            best_lift = max(best_lift, lift[lo])
            best_prob = max(best_prob, prob[lo])
    X[r, PREV_SHARE] = shared / total if total > 0 else 0.0
    X[r, PREV_COVER] = shared / prev_idf_sum if prev_idf_sum > 0 else 0.0
    X[r, LINK_LIFT] = best_lift
    X[r, LINK_PROB] = best_prob


class SharedWords:
    """Up to ``n`` of the most popular labels of the typed prefix holding a word of the previous
    query whose idf is at least ``min_idf``, or one of its ``linked`` strongest linked words."""

    def __init__(
        self, context: ContextWords, labels: LabelSet, n: int, linked: int = 5, min_idf: float = 3.0
    ) -> None:
        self.context = context
        self.labels = labels
        self.n = n
        self.linked = linked
        self.min_idf = min_idf
        self._words: dict[str, np.ndarray] = {}

    def generate(self, request: Request, found: Sequence[CandidateBatch]) -> CandidateBatch | None:
        if not request.context or self.n <= 0 or request.hi - request.lo <= sum(len(b) for b in found):
            return None
        words = self._words_of(request.context)
        if not len(words):
            return None
        links = self.context.links
        ids = most_counted(
            links.postings_, links.post_indptr_, words, self.labels.counts, request.lo, request.hi, self.n
        )
        if not len(ids):
            return None
        return label_batch(self.labels, ids, self.labels.counts[ids].astype(np.float64), Source.RELATED)

    def prepare(self, context: str) -> None:
        self._words_of(context)

    def _words_of(self, context: str) -> np.ndarray:
        return through_cache(self._words, [context], self._pick_words, _WORDS_KEPT)[0]

    def _pick_words(self, contexts: list[str]) -> list[np.ndarray]:
        """The previous query's words of idf at least ``min_idf`` and its ``linked`` strongest
        linked words (ascending ids), per context: they depend on it alone."""
        idf = self.context.links.idf_
        out = []
        for context in contexts:
            prev = self.context.previous(context)
            words = prev.words[idf[prev.words] >= self.min_idf]
            if len(prev.linked) and self.linked > 0:
                strongest = np.argsort(-prev.lift * prev.prob, kind="stable")[: self.linked]
                words = np.union1d(words, prev.linked[strongest])
            out.append(words.astype(np.int64))
        return out

    def warm_up(self) -> None:
        self.context.warm_up()
        links, one = self.context.links, np.zeros(1, dtype=np.int64)
        most_counted(links.postings_, links.post_indptr_, one, self.labels.counts, 0, 1, 1)


_WORDS_KEPT = 1024  # previous queries whose chosen words a worker keeps


@numba.njit(cache=True, nogil=True)
def most_counted(
    postings: np.ndarray, indptr: np.ndarray, words: np.ndarray, counts: np.ndarray, lo: int, hi: int, n: int
) -> np.ndarray:
    """The ``n`` label ids of ``[lo, hi)`` holding any of ``words`` with the largest ``counts``,
    most counted first, ties by ascending id (``postings[indptr[w]:indptr[w + 1]]``: the
    ascending label ids holding word ``w``). A label met again through another word is either
    among the kept ones already or was beaten before, so no set of seen labels is needed."""
    top = np.empty(n, dtype=np.int64)
    kept = 0
    for w in words:
        a, b = indptr[w], indptr[w + 1]
        a = a + np.searchsorted(postings[a:b], lo)
        b = a + np.searchsorted(postings[a:b], hi)
        for q in range(a, b):
            label = postings[q]
            c = counts[label]
            if kept == n and (c < counts[top[n - 1]] or (c == counts[top[n - 1]] and label > top[n - 1])):
                continue
            again = False
            for r in range(kept):
                if top[r] == label:
                    again = True
                    break
            if again:
                continue
            pos = kept if kept < n else n - 1
            if kept < n:
                kept += 1
            while pos > 0 and (
                counts[top[pos - 1]] < c or (counts[top[pos - 1]] == c and top[pos - 1] > label)
            ):
                top[pos] = top[pos - 1]
                pos -= 1
            top[pos] = label
    return top[:kept]
