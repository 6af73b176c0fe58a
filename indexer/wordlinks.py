"""Which words of a next query go with which words of the query before it, over many people.

The pair counts of :mod:`indexer.cooccurrence` know only exact (previous query, next query) pairs,
so the previous query of someone whose searches were never logged rarely helps. Words generalize:
after any query with "plants", queries with "garden", "seeds" or "plants" again are likelier than
their popularity says. :class:`WordLinks` keeps, over the words of the labels:

- ``links``: for each word, the words of next queries that followed a query containing it more
  often than chance, with their lift ``log P(b in next | a in previous) / P(b in next)`` and the
  conditional probability ``P(b in next | a in previous)``; a link needs ``min_pairs`` pairs and
  ``min_users`` distinct people (the privacy floor of the labels), and each word keeps its
  ``per_word`` strongest links;
- ``idf``: each word's inverse document frequency over the labels (rare words say more);
- ``label_words``: each label's distinct word ids (a CSR), and ``postings``, its transpose (each
  word's label ids, ascending), so the labels of a prefix's id range that contain a word are one
  binary search away.

Everything is arrays, memory-mapped on load; the vocabulary is a marisa-trie.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import marisa_trie
import numba
import numpy as np
from sklearn.base import BaseEstimator

from indexer.errors import ModelFileError
from indexer.labels import LabelSet
from indexer.modelio import freeze, load_array, load_marisa

_NO_IDS = np.empty(0, dtype=np.int32)
_NO_SCORES = np.empty(0, dtype=np.float32)


@numba.njit(cache=True, nogil=True)
def merged_links(
    starts: np.ndarray, ends: np.ndarray, link_words: np.ndarray, lift: np.ndarray, prob: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The link rows ``[starts[i], ends[i])`` merged: their distinct words, ascending, each with
    its largest lift and largest probability."""
    total = 0
    for i in range(starts.shape[0]):
        total += ends[i] - starts[i]
    rows = np.empty(total, dtype=np.int64)
    n = 0
    for i in range(starts.shape[0]):
        for r in range(starts[i], ends[i]):
            rows[n] = r
            n += 1
    order = np.argsort(link_words[rows], kind="mergesort")
    ids = np.empty(total, dtype=np.int32)
    best_lift = np.zeros(total, dtype=np.float32)
    best_prob = np.zeros(total, dtype=np.float32)
    m = -1
    for r in rows[order]:
        if m < 0 or ids[m] != link_words[r]:
            m += 1
            ids[m] = link_words[r]
        best_lift[m] = max(best_lift[m], lift[r])
        best_prob[m] = max(best_prob[m], prob[r])
    return ids[: m + 1].copy(), best_lift[: m + 1].copy(), best_prob[: m + 1].copy()


class WordLinks(BaseEstimator):
    """Word-to-word statistics of consecutive queries, and the words of every label.

    Parameters
    ----------
    min_pairs : int
        Pairs of consecutive queries a link needs.
    min_users : int
        Distinct people a link needs (pairs without a user count as one person each).
    per_word : int
        Links kept per previous word, strongest lift first.
    """

    ARRAYS = (
        "idf",
        "label_indptr",
        "label_words",
        "post_indptr",
        "postings",
        "link_indptr",
        "link_words",
        "lift",
        "prob",
    )

    def __init__(self, min_pairs: int = 2, min_users: int = 1, per_word: int = 50) -> None:
        self.min_pairs = min_pairs
        self.min_users = min_users
        self.per_word = per_word

    def fit(
        self,
        previous: Sequence[str],
        following: Sequence[str],
        labels: LabelSet,
        users: Sequence[str] | None = None,
    ) -> WordLinks:
        texts = labels.texts()
        self.vocab_ = marisa_trie.Trie({w for t in texts for w in t.split()})
        n_words = len(self.vocab_)
        index = dict(self.vocab_.items())  # a dict lookup is several times a trie lookup
        rows = [sorted({index[w] for w in t.split()}) for t in texts]
        self.label_indptr_ = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum([len(r) for r in rows], out=self.label_indptr_[1:])
        self.label_words_ = np.fromiter(
            (w for r in rows for w in r), dtype=np.int32, count=int(self.label_indptr_[-1])
        )
        owner = np.repeat(np.arange(len(rows), dtype=np.int32), np.diff(self.label_indptr_))
        order = np.argsort(self.label_words_, kind="stable")  # labels ascending within each word
        self.postings_ = owner[order]
        df = np.bincount(self.label_words_, minlength=n_words)
        self.post_indptr_ = np.zeros(n_words + 1, dtype=np.int64)
        np.cumsum(df, out=self.post_indptr_[1:])
        self.idf_ = np.log((1.0 + len(rows)) / (1.0 + df)).astype(np.float32) + 1.0
        self._fit_links(previous, following, users, index)
        freeze(*(getattr(self, f"{name}_") for name in self.ARRAYS))
        return self

    def _fit_links(
        self,
        previous: Sequence[str],
        following: Sequence[str],
        users: Sequence[str] | None,
        index: dict[str, int],
    ) -> None:
        n_words = len(index)
        a_pair: list[int] = []  # each pair's distinct known words
        a_word: list[int] = []
        b_pair: list[int] = []
        b_word: list[int] = []
        person: list[int] = []
        people: dict[str, int] = {}
        n_pairs = 0
        for i, (prev, nxt) in enumerate(zip(previous, following)):
            if not prev:
                continue
            a = {index[w] for w in prev.split() if w in index}
            b = {index[w] for w in nxt.split() if w in index}
            a_word.extend(a)
            a_pair.extend([n_pairs] * len(a))
            b_word.extend(b)
            b_pair.extend([n_pairs] * len(b))
            person.append(people.setdefault(users[i], len(people)) if users is not None else n_pairs)
            n_pairs += 1
        a_at, a_ids = np.array(a_pair, dtype=np.int64), np.array(a_word, dtype=np.int64)
        b_at, b_ids = np.array(b_pair, dtype=np.int64), np.array(b_word, dtype=np.int64)
        before = np.bincount(a_ids, minlength=n_words)  # pairs whose previous query holds word a
        after = np.bincount(b_ids, minlength=n_words)  # pairs whose next query holds word b
        # every (a, b) of a pair: each a-word repeated once per b-word of its pair
        b_count = np.bincount(b_at, minlength=n_pairs)
        b_start = np.concatenate([[0], np.cumsum(b_count)[:-1]]) if n_pairs else np.zeros(0, np.int64)
        reps = b_count[a_at]
        first = np.repeat(np.cumsum(reps) - reps, reps)
        b_rows = np.repeat(b_start[a_at], reps) + np.arange(int(reps.sum())) - first
        keys = np.repeat(a_ids, reps) * n_words + b_ids[b_rows]
        pairs, counts = np.unique(keys, return_counts=True)
        keep = counts >= self.min_pairs
        if self.min_users > 1:
            owners = np.array(person, dtype=np.int64)[np.repeat(a_at, reps)]
            distinct = np.unique(np.stack([keys, owners]), axis=1)[0]
            keep &= np.bincount(np.searchsorted(pairs, distinct), minlength=len(pairs)) >= self.min_users
        a, b, count = pairs[keep] // n_words, pairs[keep] % n_words, counts[keep]
        prob = count / before[a]
        lift = np.log(prob * n_pairs / after[b])
        a, b, prob, lift = a[lift > 0.0], b[lift > 0.0], prob[lift > 0.0], lift[lift > 0.0]
        order = np.lexsort((b, -lift, a))  # by word, strongest first, ties by the linked word's id
        a, b, prob, lift = a[order], b[order], prob[order], lift[order]
        row_start = np.searchsorted(a, a)
        strongest = np.arange(len(a)) - row_start < self.per_word
        a, b, prob, lift = a[strongest], b[strongest], prob[strongest], lift[strongest]
        order = np.lexsort((b, a))  # word ids ascending per row
        self.link_indptr_ = np.zeros(n_words + 1, dtype=np.int64)
        np.cumsum(np.bincount(a, minlength=n_words), out=self.link_indptr_[1:])
        self.link_words_ = b[order].astype(np.int32)
        self.lift_ = lift[order].astype(np.float32)
        self.prob_ = prob[order].astype(np.float32)
        self.n_pairs_ = n_pairs

    def word_ids(self, text: str) -> np.ndarray:
        """The distinct vocabulary ids of ``text``'s words (words outside the vocabulary left out)."""
        get = self.vocab_.get  # per keystroke: no sklearn fitted-check here, it costs more than the lookup
        found = {get(w, -1) for w in text.split()}
        found.discard(-1)
        return np.array(sorted(found), dtype=np.int32)

    def linked(self, words: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The words linked from any of ``words`` (ascending ids), each with its best lift and
        best conditional probability."""
        if not len(words):
            return _NO_IDS, _NO_SCORES, _NO_SCORES
        starts, ends = self.link_indptr_[words], self.link_indptr_[words + 1]
        if not (ends > starts).any():
            return _NO_IDS, _NO_SCORES, _NO_SCORES
        return merged_links(starts, ends, self.link_words_, self.lift_, self.prob_)

    def labels_with(self, word: int, lo: int, hi: int) -> np.ndarray:
        """The label ids in ``[lo, hi)`` whose text holds word ``word`` (ascending)."""
        a, b = int(self.post_indptr_[word]), int(self.post_indptr_[word + 1])
        row = self.postings_[a:b]
        return row[np.searchsorted(row, lo) : np.searchsorted(row, hi)]

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.vocab_.save(str(folder / "vocab.marisa"))
        for name in self.ARRAYS:
            np.save(folder / f"{name}.npy", getattr(self, f"{name}_"))

    @classmethod
    def load(cls, folder: str | Path, n_labels: int) -> WordLinks:
        folder = Path(folder)
        self = cls()
        self.vocab_ = load_marisa(folder / "vocab.marisa")
        for name in cls.ARRAYS:
            setattr(self, f"{name}_", load_array(folder / f"{name}.npy"))
        n_words = len(self.vocab_)
        if (
            len(self.idf_) != n_words
            or len(self.label_indptr_) != n_labels + 1
            or len(self.post_indptr_) != n_words + 1
            or len(self.link_indptr_) != n_words + 1
            or self.label_indptr_[-1] != len(self.label_words_)
            or self.post_indptr_[-1] != len(self.postings_)
            or self.link_indptr_[-1] != len(self.link_words_)
            or len(self.lift_) != len(self.link_words_)
            or len(self.prob_) != len(self.link_words_)
        ):
            raise ModelFileError(
                f"{folder}: word link arrays disagree with each other or the labels: rebuild"
            )
        return self
