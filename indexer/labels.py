"""The label set: every query that may be suggested, sorted, counted, and searchable by prefix.

A label's id is its rank in lexicographic (code point) order, so the labels that start with a
prefix form one contiguous id range, found by :func:`prefix_range` in O(len(prefix) log n).
The label texts are kept twice on purpose: as a marisa-trie (compact, memory-mapped, exact
lookups and id -> text) and as a code point CSR that numba kernels read.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import marisa_trie
import numba
import numpy as np

from indexer.caches import through_cache
from indexer.modelio import freeze


@numba.njit(cache=True)
def _compare_prefix(indptr: np.ndarray, chars: np.ndarray, label: int, prefix: np.ndarray) -> int:
    """-1: the label sorts before every string starting with ``prefix``; +1: after; 0: starts with it."""
    start = indptr[label]
    length = indptr[label + 1] - start
    for i in range(prefix.shape[0]):
        if i >= length:
            return -1
        c = chars[start + i]
        if c < prefix[i]:
            return -1
        if c > prefix[i]:
            return 1
    return 0


@numba.njit(cache=True)
def prefix_range(indptr: np.ndarray, chars: np.ndarray, prefix: np.ndarray) -> tuple[int, int]:
    """The id range ``[lo, hi)`` of the sorted labels that start with ``prefix`` (code points)."""
    n = indptr.shape[0] - 1
    lo, hi = 0, n
    while lo < hi:  # first label not sorting before the prefix
        mid = (lo + hi) // 2
        if _compare_prefix(indptr, chars, mid, prefix) < 0:
            lo = mid + 1
        else:
            hi = mid
    first = lo
    hi = n
    while lo < hi:  # first label sorting after every extension of the prefix
        mid = (lo + hi) // 2
        if _compare_prefix(indptr, chars, mid, prefix) <= 0:
            lo = mid + 1
        else:
            hi = mid
    return first, lo


@numba.njit(cache=True, nogil=True)
def gather_codepoints(
    indptr: np.ndarray, chars: np.ndarray, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The code points of labels ``ids`` one after another, and where each label ends in them."""
    ends = np.empty(ids.shape[0], dtype=np.int64)
    total = 0
    for i in range(ids.shape[0]):
        total += indptr[ids[i] + 1] - indptr[ids[i]]
        ends[i] = total
    flat = np.empty(total, dtype=np.int32)
    at = 0
    for i in range(ids.shape[0]):
        for p in range(indptr[ids[i]], indptr[ids[i] + 1]):
            flat[at] = chars[p]
            at += 1
    return flat, ends


def decode_runs(flat: np.ndarray, ends: np.ndarray) -> list[str]:
    """Texts laid end to end as int32 code points (``ends``: where each one ends), as strings."""
    joined, stops = flat.tobytes().decode("utf-32-le"), ends.tolist()
    return [joined[a:b] for a, b in zip([0, *stops[:-1]], stops)]


def encode(text: str) -> np.ndarray:
    """A string as int32 code points, the form kernels take."""
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.int32)


class LabelSet:
    """Labels sorted in code point order with their training counts.

    Parameters
    ----------
    labels : sequence of str
        Distinct normalized queries; sorted here.
    counts : sequence of int, optional
        How often each label occurred as a next query in training (same order as ``labels``).

    Attributes
    ----------
    trie : marisa_trie.Trie
    trie_ids : ndarray of int32, shape (n_labels,)
        The marisa key id of each label id.
    label_ids : ndarray of int32, shape (n_labels,)
        The label id of each marisa key id.
    indptr : ndarray of int64, shape (n_labels + 1,)
    chars : ndarray of int32, shape (total code points,)
    counts : ndarray of int64, shape (n_labels,)
    """

    ARRAYS = ("trie_ids", "label_ids", "indptr", "chars", "counts")
    text_cache_size = 1 << 16

    def __init__(self, labels: Sequence[str], counts: Sequence[int] | np.ndarray | None = None) -> None:
        self._texts: dict[int, str] = {}
        order = sorted(range(len(labels)), key=labels.__getitem__)
        sorted_labels = [labels[i] for i in order]
        if any(a == b for a, b in zip(sorted_labels, sorted_labels[1:])):
            raise ValueError("LabelSet: labels must be distinct")
        self.trie = marisa_trie.Trie(sorted_labels)
        self.trie_ids = np.array([self.trie[s] for s in sorted_labels], dtype=np.int32)
        self.label_ids = np.empty_like(self.trie_ids)
        self.label_ids[self.trie_ids] = np.arange(len(sorted_labels), dtype=np.int32)
        lengths = np.fromiter((len(s) for s in sorted_labels), dtype=np.int64, count=len(sorted_labels))
        self.indptr = np.zeros(len(sorted_labels) + 1, dtype=np.int64)
        np.cumsum(lengths, out=self.indptr[1:])
        self.chars = encode("".join(sorted_labels)).copy()
        if counts is None:
            self.counts = np.ones(len(sorted_labels), dtype=np.int64)
        else:
            self.counts = np.asarray(counts, dtype=np.int64)[order]
        freeze(*(getattr(self, name) for name in self.ARRAYS))

    def __len__(self) -> int:
        return int(self.indptr.shape[0] - 1)

    @functools.cached_property
    def log_counts(self) -> np.ndarray:
        """``log(1 + count)`` of every label (float64), the form the serving path reads."""
        out = np.log1p(np.asarray(self.counts, dtype=np.float64))
        freeze(out)
        return out

    def text(self, label_id: int) -> str:
        return self.trie.restore_key(int(self.trie_ids[label_id]))

    def texts_of(self, ids: np.ndarray) -> list[str]:
        """The labels ``ids``. Each keystroke asks for a few dozen, mostly the same popular ones
        again: those decoded lately are kept in a dict of at most ``text_cache_size`` (emptied
        when full), the others decoded from the code point CSR in one go."""
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return []
        return through_cache(
            self._texts,
            ids.tolist(),
            lambda m: self._decode(np.array(m, dtype=np.int64)),
            self.text_cache_size,
        )

    def _decode(self, ids: np.ndarray) -> list[str]:
        return decode_runs(*gather_codepoints(self.indptr, self.chars, ids))

    def texts(self) -> list[str]:
        """All labels in id order."""
        return [self.text(i) for i in range(len(self))]

    def id_of(self, text: str) -> int:
        """The label id of ``text``, or -1 when it is not a label."""
        key = self.trie.get(text)
        return -1 if key is None else int(self.label_ids[key])

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.trie.save(str(folder / "labels.marisa"))
        for name in self.ARRAYS:
            np.save(folder / f"{name}.npy", getattr(self, name))

    @classmethod
    def load(cls, folder: str | Path, mmap: bool = True) -> LabelSet:
        from indexer.modelio import load_array, load_marisa

        folder = Path(folder)
        self = cls.__new__(cls)
        self._texts = {}
        self.trie = load_marisa(folder / "labels.marisa", mmap=mmap)
        for name in cls.ARRAYS:
            setattr(self, name, load_array(folder / f"{name}.npy", mmap=mmap))
        n = len(self.trie_ids)
        if (
            len(self.trie) != n
            or len(self.counts) != n
            or len(self.indptr) != n + 1
            or self.indptr[-1] != len(self.chars)
        ):
            from indexer.modelio import ModelFileError

            raise ModelFileError(
                f"{folder}: label arrays disagree in length; the model folder is corrupt, rebuild it."
            )
        return self
