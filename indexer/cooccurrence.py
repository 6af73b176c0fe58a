"""Which logged queries followed which: (previous query -> next label) counts of the training pairs.

The chain uses them twice: as candidates (the labels that followed this exact previous query
and start with the typed text) and as a ranker feature of every label candidate. Stored as a
marisa-trie of the distinct previous queries whose key id picks a row of a CSR over label ids,
each row sorted by count (descending, then label id), memory-mapped on load.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import marisa_trie
import numpy as np
from sklearn.base import BaseEstimator

from indexer.errors import ModelFileError
from indexer.labels import LabelSet
from indexer.modelio import freeze, load_array, load_marisa

_EMPTY = np.empty(0, dtype=np.int32)


class PairCounts(BaseEstimator):
    """Counts of (previous query, next label) pairs.

    Attributes
    ----------
    trie_ : marisa_trie.Trie
        The distinct previous queries.
    indptr_ : ndarray of int64, shape (n_previous + 1,)
        Row of trie key id ``r``: ``indptr_[r]:indptr_[r + 1]``.
    labels_, counts_ : ndarray of int32, shape (n_pairs,)
        The next labels of each row, most frequent first, and how often each followed.
    """

    ARRAYS = ("indptr", "labels", "counts")

    def fit(self, previous: Sequence[str], following: Sequence[str], labels: LabelSet) -> PairCounts:
        label = np.fromiter((labels.id_of(n) for n in following), dtype=np.int64, count=len(following))
        kept = [i for i, prev in enumerate(previous) if prev and label[i] >= 0]
        self.trie_ = marisa_trie.Trie(sorted({previous[i] for i in kept}))
        row = np.fromiter((self.trie_[previous[i]] for i in kept), dtype=np.int64, count=len(kept))
        keys, counts = np.unique(row * len(labels) + label[kept], return_counts=True)
        rows, ids = keys // len(labels), keys % len(labels)
        order = np.lexsort((ids, -counts, rows))  # by row, most frequent first, then label id
        self.indptr_ = np.zeros(len(self.trie_) + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=len(self.trie_)), out=self.indptr_[1:])
        self.labels_ = ids[order].astype(np.int32)
        self.counts_ = counts[order].astype(np.int32)
        freeze(*(getattr(self, f"{name}_") for name in self.ARRAYS))
        return self

    def row(self, previous: str) -> tuple[np.ndarray, np.ndarray]:
        """The labels that followed ``previous`` (most frequent first) and their counts."""
        key = self.trie_.get(previous) if previous else None  # per keystroke: no sklearn fitted-check
        if key is None:
            return _EMPTY, _EMPTY
        a, b = self.indptr_[key], self.indptr_[key + 1]
        return self.labels_[a:b], self.counts_[a:b]

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.trie_.save(str(folder / "previous.marisa"))
        for name in self.ARRAYS:
            np.save(folder / f"{name}.npy", getattr(self, f"{name}_"))

    @classmethod
    def load(cls, folder: str | Path, n_labels: int) -> PairCounts:
        folder = Path(folder)
        self = cls()
        self.trie_ = load_marisa(folder / "previous.marisa")
        for name in cls.ARRAYS:
            setattr(self, f"{name}_", load_array(folder / f"{name}.npy"))
        n = len(self.labels_)
        if (
            len(self.indptr_) != len(self.trie_) + 1
            or self.indptr_[-1] != n
            or len(self.counts_) != n
            or (n and (int(self.labels_.min()) < 0 or int(self.labels_.max()) >= n_labels))
        ):
            raise ModelFileError(
                f"{folder}: pair count arrays disagree with each other or the labels: rebuild"
            )
        return self
