"""TF-IDF blocks: the typed prefix as position-weighted character n-grams, a query as word n-grams.

Prefix n-grams are taken inside each word (words are split on whitespace). Every word gets one
leading space as a start-of-word marker, so ``" ro"`` (a word starting with "ro") differs from
``"ro"`` inside a word; the lone marker is not a feature. There is no end-of-word marker: the last
word of a typed prefix is usually unfinished, so where a word ends is not known. The i-th position
of a word (0-based; n-grams that start with the marker count as position 0) weighs its n-grams by
``1 / (1 + i) ** position_decay``: the first letters a person types count most.

Both blocks use scikit-learn's TF-IDF conventions (smooth idf ``ln((1 + n) / (1 + df)) + 1``,
L2 row norm), columns in sorted term order, so they can be checked against scikit-learn. Batch
transforms build a CSR float32 matrix with sorted indices; ``transform_one`` serves one keystroke
in pure Python (a few tens of microseconds) and gives the same vector.

A vocabulary is saved as a memory-mapped marisa-trie of its terms plus the column of each trie
key id, so a large previous-query vocabulary costs megabytes on disk and loads in milliseconds.
The trie cannot look up strings holding a NUL character, so n-grams with one are never features
(normalized text has none).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import marisa_trie
import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.preprocessing import normalize
from sklearn.utils.validation import check_is_fitted

from indexer.modelio import ModelFileError, load_array, load_marisa, read_params, save_params

_WEIGHT_TABLE = 256
# the saved layout of a block: 2 = terms.marisa + columns.npy (1 was a fixed-width terms.npy)
_LAYOUT = 2
# a loaded vocabulary of at most this many terms is also held as a plain dict (faster per lookup
# than the trie; a prefix block has tens of thousands of terms, a previous-query block can have millions)
DICT_TERMS = 200_000


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

    def fit(self, texts: Iterable[str]) -> _TfidfBlock:
        """Learn the vocabulary and idf from ``texts`` (normalized strings)."""
        self._fit_counted(Counter(texts), None)
        return self

    def _fit_counted(self, counts: Counter[str], keep_terms: dict[str, dict[str, float]] | None) -> None:
        """Fit on distinct texts with their counts; store each text's terms in ``keep_terms`` if given."""
        self._check_params()
        self._prepare()
        df: Counter[str] = Counter()
        total: dict[str, float] = {}
        n_docs = 0
        for text, times in counts.items():
            terms = self._terms(text)
            if keep_terms is not None:
                keep_terms[text] = terms
            n_docs += times
            if times == 1:
                df.update(terms.keys())
            else:
                for term in terms:
                    df[term] += times
            if self.max_features:
                for term, weight in terms.items():
                    total[term] = total.get(term, 0.0) + weight * times
        kept = [term for term, count in df.items() if count >= self.min_df and "\x00" not in term]
        if self.max_features and len(kept) > self.max_features:
            # like scikit-learn: the terms with the largest total count; ties by term order
            kept = sorted(kept, key=lambda term: (-total[term], term))[: self.max_features]
        terms_sorted = sorted(kept)
        self.idf_ = np.array(
            [math.log((1 + n_docs) / (1 + df[term])) + 1.0 for term in terms_sorted], dtype=np.float64
        )
        lookup = {term: j for j, term in enumerate(terms_sorted)}
        self.term_trie_ = marisa_trie.Trie(terms_sorted)
        pairs = self.term_trie_.items()  # (term, key id)
        self.term_columns_ = np.empty(len(terms_sorted), dtype=np.int32)
        self.term_columns_[np.fromiter((key_id for _, key_id in pairs), np.int64, len(pairs))] = np.fromiter(
            (lookup[term] for term, _ in pairs), np.int32, len(pairs)
        )
        self._lookup: dict[str, int] | None = lookup
        self._index_vocabulary()

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
        return self._rows(list(texts), self._terms)

    def fit_transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """``fit(texts).transform(texts)``, taking each distinct text's n-grams once."""
        texts = list(texts)
        terms: dict[str, dict[str, float]] = {}
        self._fit_counted(Counter(texts), terms)
        return self._rows(texts, terms.__getitem__)

    def _rows(self, texts: list[str], terms_of: Callable[[str], dict[str, float]]) -> sp.csr_matrix:
        """Stack the TF-IDF rows of ``texts``, taking each distinct text's terms once; the
        idf product, index sort and L2 norm run in NumPy/SciPy, not per row in Python."""
        position: dict[str, int] = {}
        inverse = np.fromiter(
            (position.setdefault(text, len(position)) for text in texts), dtype=np.int64, count=len(texts)
        )
        keys: list[str] = []
        counts: list[float] = []
        sizes: list[int] = []
        for text in position:
            terms = terms_of(text)
            keys += terms
            counts += terms.values()
            sizes.append(len(terms))
        col = self._columns_of(keys)
        row = np.repeat(np.arange(len(position), dtype=np.int64), sizes)
        val = np.array(counts, dtype=np.float64)
        known = col >= 0
        col, row, val = col[known], row[known], val[known]
        val *= self.idf_[col]
        unique = sp.csr_matrix((val, (row, col)), shape=(len(position), self.n_features_))
        unique.sort_indices()
        if self.n_features_:  # scikit-learn refuses to normalize a matrix without columns
            unique = normalize(unique, norm="l2", copy=False)
        unique = unique.astype(np.float32)
        out = unique[inverse]
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

    def _position_weights(self, length: int) -> list[float]:
        return [(1.0 + i) ** -float(self.position_decay) for i in range(length)]

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

    def _terms(self, text: str) -> dict[str, float]:
        words = text.split()
        terms: dict[str, float] = {}
        for n in range(1, self.ngram_max + 1):
            for s in range(len(words) - n + 1):
                gram = " ".join(words[s : s + n])
                terms[gram] = terms.get(gram, 0.0) + 1.0
        return terms
