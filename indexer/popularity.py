"""Popularity over the sorted label set: the k most frequent labels of any id range in microseconds.

Labels are sorted, so the labels that start with a prefix are one id range; a sparse table over
that order answers "most popular id in a range" in O(1), and the top k come from repeatedly
splitting the range around the best id (ties: the lower id, i.e. the label text in ascending
order). :class:`PopularityIndex` is the labels plus their table, saved into a model folder;
the most-popular completer and the model's fallback read it.
"""

from __future__ import annotations

from pathlib import Path

import numba
import numpy as np

from indexer.errors import ModelFileError
from indexer.labels import LabelSet, encode, prefix_range
from indexer.modelio import freeze, load_array


@numba.njit(cache=True)
def better(counts: np.ndarray, a: int, b: int) -> bool:
    return counts[a] > counts[b] or (counts[a] == counts[b] and a < b)


@numba.njit(cache=True)
def build_sparse_table(counts: np.ndarray) -> np.ndarray:
    """``table[l, i]`` = the most popular id in ``[i, i + 2**l)`` (higher count, then lower id)."""
    n = counts.shape[0]
    levels = 1
    while (1 << levels) <= n:
        levels += 1
    table = np.full((levels, max(n, 1)), -1, dtype=np.int32)  # the unused tail: the same bytes every build
    for i in range(n):
        table[0, i] = i
    for lvl in range(1, levels):
        half = 1 << (lvl - 1)
        for i in range(n - (1 << lvl) + 1):
            a = table[lvl - 1, i]
            b = table[lvl - 1, i + half]
            table[lvl, i] = a if better(counts, a, b) else b
    return table


@numba.njit(cache=True)
def range_best(table: np.ndarray, counts: np.ndarray, lo: int, hi: int) -> int:
    lvl = 0
    while (1 << (lvl + 1)) <= hi - lo:
        lvl += 1
    a = table[lvl, lo]
    b = table[lvl, hi - (1 << lvl)]
    return a if better(counts, a, b) else b


@numba.njit(cache=True)
def top_k_in_range(table: np.ndarray, counts: np.ndarray, lo: int, hi: int, k: int) -> np.ndarray:
    """The ``k`` most popular ids in ``[lo, hi)``, best first."""
    out = np.empty(min(k, max(hi - lo, 0)), dtype=np.int32)
    # candidate intervals, each with its best id; at most one new interval per step survives in pairs
    starts = np.empty(2 * k + 1, dtype=np.int64)
    ends = np.empty(2 * k + 1, dtype=np.int64)
    bests = np.empty(2 * k + 1, dtype=np.int64)
    m = 0
    if hi > lo:
        starts[0], ends[0], bests[0] = lo, hi, range_best(table, counts, lo, hi)
        m = 1
    for r in range(out.shape[0]):
        pick = 0
        for j in range(1, m):
            if better(counts, bests[j], bests[pick]):
                pick = j
        best, s, e = bests[pick], starts[pick], ends[pick]
        out[r] = best
        m -= 1
        starts[pick], ends[pick], bests[pick] = starts[m], ends[m], bests[m]
        if s < best:
            starts[m], ends[m], bests[m] = s, best, range_best(table, counts, s, best)
            m += 1
        if best + 1 < e:
            starts[m], ends[m], bests[m] = best + 1, e, range_best(table, counts, best + 1, e)
            m += 1
    return out


class PopularityIndex:
    """A label set and its sparse table of most popular ids.

    Parameters
    ----------
    labels : LabelSet
        Labels with their training counts.
    table : ndarray of int32, shape (levels, n_labels), optional
        Built from the counts when not given (see :func:`build_sparse_table`).
    """

    def __init__(self, labels: LabelSet, table: np.ndarray | None = None) -> None:
        self.labels = labels
        if table is None:
            table = build_sparse_table(np.asarray(labels.counts))
            freeze(table)
        self.table = table

    def top_ids(self, normalized_prefix: str, k: int) -> np.ndarray:
        """Label ids of the ``k`` most popular labels starting with an already normalized prefix."""
        lo, hi = prefix_range(self.labels.indptr, self.labels.chars, encode(normalized_prefix))
        return top_k_in_range(self.table, self.labels.counts, lo, hi, k)

    def save(self, folder: str | Path) -> None:
        """The labels and the table, without ``params.json`` (the model that holds them writes it)."""
        self.labels.save(folder)
        np.save(Path(folder) / "popular_table.npy", self.table)

    @classmethod
    def load(cls, folder: str | Path) -> PopularityIndex:
        labels = LabelSet.load(folder)
        table = load_array(Path(folder) / "popular_table.npy")
        if table.ndim != 2 or (len(labels) and table.shape[1] != len(labels)):
            raise ModelFileError(
                f"{Path(folder) / 'popular_table.npy'} does not match the labels: rebuild the model."
            )
        return cls(labels, table)
