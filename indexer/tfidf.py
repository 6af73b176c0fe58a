"""TF-IDF blocks: the typed prefix as position-weighted character n-grams, a query as word n-grams.

Prefix n-grams are taken inside each word (words are split on whitespace). Every word gets one
leading space as a start-of-word marker, so ``" ro"`` (a word starting with "ro") differs from
``"ro"`` inside a word; the lone marker is not a feature. There is no end-of-word marker: the last
word of a typed prefix is usually unfinished, so where a word ends is not known. The i-th position
of a word (0-based; n-grams that start with the marker count as position 0) weighs its n-grams by
``1 / (1 + i) ** position_decay``: the first letters a person types count most.

Both blocks use scikit-learn's TF-IDF conventions (smooth idf ``ln((1 + n) / (1 + df)) + 1``,
L2 row norm), columns in sorted term order, so they can be checked against scikit-learn. Batch
transforms take the n-grams of all distinct texts in one numba pass (:mod:`indexer.ngrams`) and
build a CSR float32 matrix with sorted indices. One keystroke's prefix row comes from one kernel
call, :meth:`PrefixNgramVectorizer.row` (a few microseconds; n-grams looked up by an integer key,
so up to three code points long), bit for bit the batch row; longer n-grams and the previous
query's words take the pure-Python ``_terms``, which the kernels follow term for term.

A vocabulary is saved as a memory-mapped marisa-trie of its terms plus the column of each trie
key id, so a large previous-query vocabulary costs megabytes on disk and loads in milliseconds.
The trie cannot look up strings holding a NUL character, so n-grams with one are never features
(normalized text has none).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import marisa_trie
import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from indexer.modelio import ModelFileError, freeze, load_array, load_marisa, read_params, save_params
from indexer.ngrams import (
    KEYED_GRAM_LENGTH,
    SPACE,
    Grams,
    char_grams,
    gram_key,
    prefix_row,
    tfidf_rows,
    word_grams,
)

_WEIGHT_TABLE = 256
# the saved layout of a block: 2 = terms.marisa + columns.npy (1 was a fixed-width terms.npy)
_LAYOUT = 2
# a loaded vocabulary of at most this many terms is also held as a plain dict (faster per lookup
# than the trie; a prefix block has tens of thousands of terms, a previous-query block can have millions)
DICT_TERMS = 200_000


def _distinct(texts: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The distinct texts in first-occurrence order, each text's position among them (int64),
    and how often each occurs (int64)."""
    position: dict[str, int] = dict.fromkeys(texts, 0)
    distinct = list(position)
    position.update(zip(distinct, range(len(distinct))))
    inverse = np.fromiter(map(position.__getitem__, texts), dtype=np.int64, count=len(texts))
    return distinct, inverse, np.bincount(inverse, minlength=len(distinct))


class _TfidfBlock(BaseEstimator):
    """TF-IDF over a fitted, sorted vocabulary of string terms; subclasses say what the terms are."""

    min_df: int
    max_features: int

    def _terms(self, text: str) -> dict[str, float]:
        raise NotImplementedError

    def _check_params(self) -> None:
        if not isinstance(self.min_df, int) or self.min_df < 1:
            raise ValueError(
                f"{type(self).__name__}: min_df must be a whole number >= 1, got {self.min_df!r}"
            )
        if not isinstance(self.max_features, int) or self.max_features < 0:
            raise ValueError(
                f"{type(self).__name__}: max_features must be a whole number >= 0 (0 = no cap), "
                f"got {self.max_features!r}"
            )

    def _grams(self, texts: list[str]) -> tuple[Grams, list[str | None]]:
        """The n-grams of distinct ``texts`` as ids (:mod:`indexer.ngrams`), and each id's string."""
        raise NotImplementedError

    def fit(self, texts: Iterable[str]) -> _TfidfBlock:
        """Learn the vocabulary and idf from ``texts`` (normalized strings)."""
        self._check_params()
        self._prepare()
        distinct, _, times = _distinct(list(texts))
        self._fit_grams(*self._grams(distinct), times)
        return self

    def _fit_grams(self, grams: Grams, strings: list[str | None], times: np.ndarray) -> np.ndarray:
        """Fit on the n-grams of distinct texts seen ``times`` times each; return the column of
        each n-gram id (-1: not kept). Document frequencies and totals are summed in the order
        of the texts' first occurrences, like one ``Counter`` pass over the texts would."""
        n_docs = int(times.sum())
        n_ids = len(strings)
        row_times = np.repeat(times.astype(np.float64), np.diff(grams.row_ptr))
        df = np.bincount(grams.ids, weights=row_times, minlength=n_ids).astype(np.int64)
        candidates = np.flatnonzero(grams.emitted & (df >= self.min_df)).tolist()
        kept = [g for g in candidates if "\x00" not in strings[g]]  # type: ignore[operator]
        if self.max_features and len(kept) > self.max_features:
            # like scikit-learn: the terms with the largest total count; ties by term order
            total = np.bincount(grams.ids, weights=grams.weights * row_times, minlength=n_ids).tolist()
            kept = sorted(kept, key=lambda g: (-total[g], strings[g]))[: self.max_features]
        kept.sort(key=strings.__getitem__)  # type: ignore[arg-type]
        terms_sorted: list[str] = [strings[g] for g in kept]  # type: ignore[misc]
        df_kept = df[kept].tolist()
        self.idf_ = np.array([math.log((1 + n_docs) / (1 + d)) + 1.0 for d in df_kept], dtype=np.float64)
        lookup = {term: j for j, term in enumerate(terms_sorted)}
        self.term_trie_ = marisa_trie.Trie(terms_sorted)
        key_ids = np.fromiter(map(self.term_trie_.__getitem__, terms_sorted), np.int64, len(terms_sorted))
        self.term_columns_ = np.empty(len(terms_sorted), dtype=np.int32)
        self.term_columns_[key_ids] = np.arange(len(terms_sorted), dtype=np.int32)
        self._lookup: dict[str, int] | None = lookup
        self._index_vocabulary()
        columns = np.full(n_ids, -1, dtype=np.int64)
        columns[np.asarray(kept, dtype=np.int64)] = np.arange(len(kept), dtype=np.int64)
        return columns

    def _prepare(self) -> None:
        """Derived lookup tables of the parameters (called by ``fit`` and ``load``)."""

    def _index_vocabulary(self) -> None:
        """Plain-list copies of the column and idf arrays for the per-keystroke path."""
        self.n_features_ = len(self.term_trie_)
        self._column = self.term_columns_.tolist()
        self._idf = self.idf_.tolist()

    def get_feature_names_out(self) -> np.ndarray:
        """The terms in column order (sorted), as an object array like scikit-learn's."""
        check_is_fitted(self)
        names = np.empty(self.n_features_, dtype=object)
        for key, key_id in self.term_trie_.iteritems():
            names[self._column[key_id]] = key
        return names

    def _columns_of(self, terms: list[str]) -> np.ndarray:
        """The column of each term, -1 for terms outside the vocabulary (int64)."""
        if self._lookup is not None:  # the plain dictionary is faster
            return np.fromiter(map(self._lookup.get, terms, itertools.repeat(-1)), np.int64, len(terms))
        get = self.term_trie_.get
        key_ids = np.fromiter(
            (-1 if "\x00" in term else get(term, -1) for term in terms), np.int64, len(terms)
        )
        known = key_ids >= 0
        key_ids[known] = self.term_columns_[key_ids[known]]
        return key_ids

    def _vector(self, text: str) -> tuple[list[int], list[float]]:
        """Sorted column ids and L2-normalized TF-IDF values of one text (pure Python, no SciPy)."""
        terms = self._terms(text)
        if "\x00" in text:
            terms = {term: count for term, count in terms.items() if "\x00" not in term}
        return self._weigh(terms)

    def _weigh(self, terms: dict[str, float]) -> tuple[list[int], list[float]]:
        idf = self._idf
        pairs = []
        if self._lookup is not None:
            column_of = self._lookup.get
            for term, count in terms.items():
                j = column_of(term)
                if j is not None:
                    pairs.append((j, count * idf[j]))
        else:
            key_of = self.term_trie_.get
            column = self._column
            for term, count in terms.items():
                key_id = key_of(term)
                if key_id is not None:
                    j = column[key_id]
                    pairs.append((j, count * idf[j]))
        if not pairs:
            return [], []
        pairs.sort()
        norm = math.hypot(*[v for _, v in pairs])
        return [j for j, _ in pairs], [v / norm for _, v in pairs]

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """TF-IDF rows of ``texts``: CSR float32, shape (len(texts), n_features_), sorted indices."""
        check_is_fitted(self)
        distinct, inverse, _ = _distinct(list(texts))
        grams, strings = self._grams(distinct)
        wanted = np.flatnonzero(grams.emitted)
        columns = np.full(len(strings), -1, dtype=np.int64)
        columns[wanted] = self._columns_of([strings[g] for g in wanted.tolist()])  # type: ignore[misc]
        return self._rows(grams, columns, inverse)

    def fit_transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """``fit(texts).transform(texts)``, taking each distinct text's n-grams once."""
        self._check_params()
        self._prepare()
        distinct, inverse, times = _distinct(list(texts))
        grams, strings = self._grams(distinct)
        columns = self._fit_grams(grams, strings, times)
        return self._rows(grams, columns, inverse)

    def _rows(self, grams: Grams, columns: np.ndarray, inverse: np.ndarray) -> sp.csr_matrix:
        """The TF-IDF rows of the distinct texts' n-grams (``columns``: of each n-gram id, -1
        outside the vocabulary), repeated as ``inverse`` says (:func:`indexer.ngrams.tfidf_rows`)."""
        indptr, indices, data = tfidf_rows(
            grams.row_ptr, grams.ids, grams.weights, columns, self.idf_, inverse
        )
        out = sp.csr_matrix((data, indices, indptr), shape=(len(inverse), self.n_features_))
        out.has_sorted_indices = True
        return out

    def save(self, folder: str | Path) -> None:
        """Write ``params.json``, ``terms.marisa``, ``columns.npy`` and ``idf.npy`` into ``folder``."""
        check_is_fitted(self)
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.term_trie_.save(str(folder / "terms.marisa"))
        np.save(folder / "columns.npy", np.asarray(self.term_columns_, dtype=np.int32))
        np.save(folder / "idf.npy", self.idf_)
        summary = {"n_features": self.n_features_, "layout": _LAYOUT}
        save_params(folder, type(self).__name__, self.get_params(), summary)

    @classmethod
    def load(cls, folder: str | Path, mmap: bool = True) -> Any:
        """A fitted vectorizer saved by :meth:`save`; a bad file raises ``ModelFileError`` naming it."""
        folder = Path(folder)
        body = read_params(folder, kind=cls.__name__)
        if body.get("summary", {}).get("layout") != _LAYOUT:
            raise ModelFileError(
                f"{folder / 'params.json'} describes a vocabulary saved in an older layout (terms.npy); "
                "this code reads terms.marisa + columns.npy: rebuild the model."
            )
        try:
            self = cls(**body["params"])
        except (KeyError, TypeError) as exc:
            raise ModelFileError(
                f"{folder / 'params.json'} does not hold {cls.__name__} parameters ({exc}): "
                "rebuild the model."
            ) from exc
        self._check_params()
        self._prepare()
        self.term_trie_ = load_marisa(folder / "terms.marisa", mmap=mmap)
        self.term_columns_ = load_array(folder / "columns.npy", mmap=mmap)
        self.idf_ = load_array(folder / "idf.npy", mmap=mmap)
        n = len(self.term_trie_)
        columns = self.term_columns_
        fits = columns.shape == (n,) and columns.dtype == np.int32
        if fits and n:
            fits = columns.min() >= 0 and columns.max() < n and np.bincount(columns, minlength=n).max() == 1
        if not fits:
            raise ModelFileError(
                f"{folder / 'columns.npy'} is not a permutation of the {n} columns of terms.marisa "
                f"(shape {columns.shape}, {columns.dtype}): rebuild the model."
            )
        if self.idf_.shape != (n,) or self.idf_.dtype != np.float64:
            raise ModelFileError(
                f"{folder / 'idf.npy'} has shape {self.idf_.shape} ({self.idf_.dtype}), expected "
                f"({n},) float64, one per term of terms.marisa: rebuild the model."
            )
        self._lookup = None
        self._index_vocabulary()
        if n <= DICT_TERMS:
            self._lookup = {term: self._column[key_id] for term, key_id in self.term_trie_.iteritems()}
        return self


class PrefixNgramVectorizer(_TfidfBlock):
    """Character n-gram TF-IDF of a typed prefix, n-grams weighted by their position in the word.

    Parameters
    ----------
    ngram_min, ngram_max : int
        Lengths of the character n-grams (the start-of-word marker counts as a character).
    position_decay : float
        An n-gram at position i of its word counts ``1 / (1 + i) ** position_decay``; 0 = plain counts.
    min_df : int
        Keep n-grams that occur in at least this many training texts.
    max_features : int
        Keep at most this many n-grams, those with the largest total weighted count; 0 = no cap.

    Attributes
    ----------
    term_trie_ : marisa_trie.Trie
        The n-grams; the column of a term is its rank in sorted order (see
        :meth:`get_feature_names_out`).
    term_columns_ : ndarray of int32, shape (n_features_,)
        The column of each key id of ``term_trie_``.
    idf_ : ndarray of float64, shape (n_features_,)
    n_features_ : int
    """

    def __init__(
        self,
        *,
        ngram_min: int = 1,
        ngram_max: int = 3,
        position_decay: float = 1.0,
        min_df: int = 1,
        max_features: int = 0,
    ) -> None:
        self.ngram_min = ngram_min
        self.ngram_max = ngram_max
        self.position_decay = position_decay
        self.min_df = min_df
        self.max_features = max_features

    def _check_params(self) -> None:
        super()._check_params()
        if (
            not isinstance(self.ngram_min, int)
            or not isinstance(self.ngram_max, int)
            or not (1 <= self.ngram_min <= self.ngram_max)
        ):
            raise ValueError(
                "PrefixNgramVectorizer: need whole numbers 1 <= ngram_min <= ngram_max, "
                f"got ngram_min={self.ngram_min!r}, ngram_max={self.ngram_max!r}"
            )
        if not isinstance(self.position_decay, (int, float)) or not self.position_decay >= 0:
            raise ValueError(
                f"PrefixNgramVectorizer: position_decay must be >= 0, got {self.position_decay!r}"
            )

    def _prepare(self) -> None:
        weights = self._position_weights(_WEIGHT_TABLE)
        self._padded_weights = [weights[0]] + weights
        self._weight_array = np.array(self._padded_weights, dtype=np.float64)
        freeze(self._weight_array)

    def _index_vocabulary(self) -> None:
        """Also the vocabulary as sorted n-gram keys for :func:`indexer.ngrams.prefix_row` (when
        every n-gram is short enough to have one)."""
        super()._index_vocabulary()
        self._keys: np.ndarray | None = None
        if self.ngram_max <= KEYED_GRAM_LENGTH:
            column = self._column
            pairs = sorted((gram_key(term), column[key_id]) for term, key_id in self.term_trie_.iteritems())
            self._keys = np.array([k for k, _ in pairs], dtype=np.int64)
            self._key_columns = np.array([c for _, c in pairs], dtype=np.int64)
            self._key_idf = np.asarray(self.idf_, dtype=np.float64).view()
            freeze(self._keys, self._key_columns, self._key_idf)  # one kernel type, fitted or loaded

    def row(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """One text's row, the per-keystroke path: sorted int32 columns and float32 values, equal
        to :meth:`transform`'s row (to the last bit with n-grams of at most three code points)."""
        if self._keys is None:  # n-grams longer than a key holds: the pure-Python terms
            idx, val = self._vector(text)
            return np.array(idx, dtype=np.int32), np.array(val, dtype=np.float32)
        chars = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.int32)
        weights = self._weight_array
        if chars.shape[0] + 2 > weights.shape[0]:  # a word longer than the table
            weights = np.asarray(self._padded_position_weights(chars.shape[0] + 2), dtype=np.float64)
            freeze(weights)
        vocabulary = (self._keys, self._key_columns, self._key_idf)
        return prefix_row(chars, SPACE, self.ngram_min, self.ngram_max, weights, *vocabulary)

    def _position_weights(self, length: int) -> list[float]:
        return [(1.0 + i) ** -float(self.position_decay) for i in range(length)]

    def _padded_position_weights(self, length: int) -> list[float]:
        """The weight of the n-grams starting at each padded position of words up to ``length - 1`` long."""
        weights = self._position_weights(length)
        return [weights[0]] + weights

    def _grams(self, texts: list[str]) -> tuple[Grams, list[str | None]]:
        return char_grams(texts, self.ngram_min, self.ngram_max, self._padded_position_weights)

    def _terms(self, text: str) -> dict[str, float]:
        """Weighted n-gram counts of ``text``: marker-led n-grams and the first letter's share position 0."""
        weights = self._padded_weights  # weight of the n-grams starting at padded[s]
        terms: dict[str, float] = {}
        get = terms.get
        for word in text.split():
            padded = " " + word
            length = len(padded)
            if length > len(weights):
                weights = [weights[0]] + self._position_weights(length)
            for n in range(self.ngram_min, self.ngram_max + 1):
                for s in range(1 if n == 1 else 0, length - n + 1):  # the lone marker is no feature
                    gram = padded[s : s + n]
                    terms[gram] = get(gram, 0.0) + weights[s]
        return terms


class WordNgramVectorizer(_TfidfBlock):
    """Word n-gram TF-IDF (n = 1..ngram_max) of a whitespace-tokenized, normalized query.

    Matches ``sklearn.feature_extraction.text.TfidfVectorizer(tokenizer=str.split,
    lowercase=False, ngram_range=(1, ngram_max))``.

    Parameters
    ----------
    ngram_max : int
    min_df : int
    max_features : int
        0 = no cap.

    Attributes
    ----------
    term_trie_ : marisa_trie.Trie
        Word n-grams (words joined by one space); the column of a term is its rank in sorted order.
    term_columns_ : ndarray of int32, shape (n_features_,)
        The column of each key id of ``term_trie_``.
    idf_ : ndarray of float64, shape (n_features_,)
    n_features_ : int
    """

    def __init__(self, *, ngram_max: int = 2, min_df: int = 1, max_features: int = 0) -> None:
        self.ngram_max = ngram_max
        self.min_df = min_df
        self.max_features = max_features

    def _check_params(self) -> None:
        super()._check_params()
        if not isinstance(self.ngram_max, int) or self.ngram_max < 1:
            raise ValueError(
                f"WordNgramVectorizer: ngram_max must be a whole number >= 1, got {self.ngram_max!r}"
            )

    def _grams(self, texts: list[str]) -> tuple[Grams, list[str | None]]:
        return word_grams(texts, self.ngram_max)

    def _terms(self, text: str) -> dict[str, float]:
        words = text.split()
        terms: dict[str, float] = {}
        for n in range(1, self.ngram_max + 1):
            for s in range(len(words) - n + 1):
                gram = " ".join(words[s : s + n])
                terms[gram] = terms.get(gram, 0.0) + 1.0
        return terms
