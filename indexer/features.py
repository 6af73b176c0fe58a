"""Input features: the typed prefix as position-weighted character n-gram TF-IDF, the previous query
as word n-gram TF-IDF, and the model input that joins them.

Prefix n-grams are taken inside each word (words are split on whitespace). Every word gets one
leading space as a start-of-word marker, so ``" ro"`` (a word starting with "ro") differs from
``"ro"`` inside a word; the lone marker is not a feature. There is no end-of-word marker: the last
word of a typed prefix is usually unfinished, so where a word ends is not known. The i-th position
of a word (0-based; n-grams that start with the marker count as position 0) weighs its n-grams by
``1 / (1 + i) ** position_decay``: the first letters a person types count most.

Both blocks use scikit-learn's TF-IDF conventions (smooth idf ``ln((1 + n) / (1 + df)) + 1``,
L2 row norm), vocabulary sorted, so they can be checked against scikit-learn. Batch transforms
build a CSR float32 matrix with sorted indices; ``transform_one`` serves one keystroke from the
fitted dictionaries in pure Python (a few tens of microseconds) and gives the same vector.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.preprocessing import normalize
from sklearn.utils.validation import check_is_fitted

from indexer.modelio import ModelFileError, load_array, read_params, save_params
from indexer.params import FeatureParams

_WEIGHT_TABLE = 256


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
        kept = [term for term, count in df.items() if count >= self.min_df]
        if self.max_features and len(kept) > self.max_features:
            # like scikit-learn: the terms with the largest total count; ties by term order
            kept = sorted(kept, key=lambda term: (-total[term], term))[: self.max_features]
        terms_sorted = sorted(kept)
        self.terms_ = np.array(terms_sorted, dtype=str) if terms_sorted else np.empty(0, dtype="<U1")
        self.idf_ = np.array(
            [math.log((1 + n_docs) / (1 + df[term])) + 1.0 for term in terms_sorted], dtype=np.float64
        )
        self._index_vocabulary()

    def _prepare(self) -> None:
        """Derived lookup tables of the parameters (called by ``fit`` and ``load``)."""

    def _index_vocabulary(self) -> None:
        self.vocabulary_ = {term: j for j, term in enumerate(self.terms_.tolist())}
        self.n_features_ = len(self.vocabulary_)
        self._idf = self.idf_.tolist()

    def _vector(self, text: str) -> tuple[list[int], list[float]]:
        """Sorted column ids and L2-normalized TF-IDF values of one text (pure Python, no SciPy)."""
        return self._weigh(self._terms(text))

    def _weigh(self, terms: dict[str, float]) -> tuple[list[int], list[float]]:
        vocabulary = self.vocabulary_
        idf = self._idf
        pairs = []
        for term, count in terms.items():
            j = vocabulary.get(term)
            if j is not None:
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
        get = self.vocabulary_.get
        indices: list[int] = []
        counts: list[float] = []
        sizes: list[int] = []
        for text in position:
            terms = terms_of(text)
            indices += map(get, terms, itertools.repeat(-1))
            counts += terms.values()
            sizes.append(len(terms))
        col = np.array(indices, dtype=np.int64)
        row = np.repeat(np.arange(len(position), dtype=np.int64), sizes)
        val = np.array(counts, dtype=np.float64)
        known = col >= 0
        col, row, val = col[known], row[known], val[known]
        val *= self.idf_[col]
        unique = sp.csr_matrix((val, (row, col)), shape=(len(position), self.n_features_))
        unique.sort_indices()
        unique = normalize(unique, norm="l2", copy=False).astype(np.float32)
        out = unique[inverse]
        out.has_sorted_indices = True
        return out

    def save(self, folder: str | Path) -> None:
        """Write ``params.json``, ``terms.npy`` and ``idf.npy`` into ``folder``."""
        check_is_fitted(self)
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "terms.npy", self.terms_)
        np.save(folder / "idf.npy", self.idf_)
        save_params(folder, type(self).__name__, self.get_params(), {"n_features": self.n_features_})

    @classmethod
    def load(cls, folder: str | Path, mmap: bool = True) -> Any:
        """A fitted vectorizer saved by :meth:`save`; a bad file raises ``ModelFileError`` naming it."""
        folder = Path(folder)
        body = read_params(folder, kind=cls.__name__)
        try:
            self = cls(**body["params"])
        except (KeyError, TypeError) as exc:
            raise ModelFileError(
                f"{folder / 'params.json'} does not hold {cls.__name__} parameters ({exc}): "
                "rebuild the model."
            ) from exc
        self._check_params()
        self._prepare()
        self.terms_ = load_array(folder / "terms.npy", mmap=mmap)
        self.idf_ = load_array(folder / "idf.npy", mmap=mmap)
        if self.terms_.ndim != 1 or self.terms_.dtype.kind != "U":
            raise ModelFileError(f"{folder / 'terms.npy'} is not a 1-d array of strings: rebuild the model.")
        if self.idf_.shape != self.terms_.shape or self.idf_.dtype != np.float64:
            raise ModelFileError(
                f"{folder / 'idf.npy'} has shape {self.idf_.shape} ({self.idf_.dtype}), expected "
                f"{self.terms_.shape} float64 like terms.npy: rebuild the model."
            )
        self._index_vocabulary()
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
    terms_ : ndarray of str, shape (n_features_,)
        The n-grams, sorted; the column of a term is its rank.
    vocabulary_ : dict of str to int
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
    terms_ : ndarray of str, shape (n_features_,)
        Word n-grams (words joined by one space), sorted.
    vocabulary_ : dict of str to int
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


class InputVectorizer(BaseEstimator):
    """The model input of a keystroke: [prefix block | previous-query block], each L2-normalized.

    Columns ``0 .. n_prefix_features_`` are the :class:`PrefixNgramVectorizer` block times
    ``prefix_weight``; the rest the :class:`WordNgramVectorizer` block of the previous query times
    ``previous_weight`` (all zero when there is no previous query). No bias column: the model
    appends it.

    Parameters
    ----------
    ngram_min, ngram_max, position_decay :
        Of the prefix block (see :class:`PrefixNgramVectorizer`).
    previous_ngram_max : int
        Word n-gram length of the previous-query block.
    min_df, max_features :
        Applied to each block separately (``max_features`` caps each block; 0 = no cap).
    prefix_weight, previous_weight : float
        Scale of each block after its L2 normalization.

    Attributes
    ----------
    prefix_ : PrefixNgramVectorizer
    previous_ : WordNgramVectorizer
    n_prefix_features_ : int
    n_features_ : int
    """

    def __init__(
        self,
        *,
        ngram_min: int = 1,
        ngram_max: int = 3,
        position_decay: float = 1.0,
        previous_ngram_max: int = 2,
        min_df: int = 1,
        max_features: int = 0,
        prefix_weight: float = 1.0,
        previous_weight: float = 1.0,
    ) -> None:
        self.ngram_min = ngram_min
        self.ngram_max = ngram_max
        self.position_decay = position_decay
        self.previous_ngram_max = previous_ngram_max
        self.min_df = min_df
        self.max_features = max_features
        self.prefix_weight = prefix_weight
        self.previous_weight = previous_weight

    @classmethod
    def from_params(cls, params: FeatureParams) -> InputVectorizer:
        return cls(
            ngram_min=params.ngram_min,
            ngram_max=params.ngram_max,
            position_decay=params.position_decay,
            previous_ngram_max=params.previous_ngram_max,
            min_df=params.min_df,
            max_features=params.max_features,
            prefix_weight=params.prefix_weight,
            previous_weight=params.previous_weight,
        )

    def _check_pairs(self, prefixes: Sequence[str], previous: Sequence[str], call: str) -> None:
        if len(prefixes) != len(previous):
            raise ValueError(
                f"InputVectorizer.{call}: got {len(prefixes)} prefixes and {len(previous)} previous queries; "
                "pass one previous query (or '') per prefix"
            )
        if call == "transform":
            return
        for name in ("prefix_weight", "previous_weight"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"InputVectorizer: {name} must be a number >= 0, got {value!r}")

    def _prefix_block(self) -> PrefixNgramVectorizer:
        return PrefixNgramVectorizer(
            ngram_min=self.ngram_min,
            ngram_max=self.ngram_max,
            position_decay=self.position_decay,
            min_df=self.min_df,
            max_features=self.max_features,
        )

    def _previous_block(self) -> WordNgramVectorizer:
        return WordNgramVectorizer(
            ngram_max=self.previous_ngram_max, min_df=self.min_df, max_features=self.max_features
        )

    def fit(self, prefixes: Sequence[str], previous: Sequence[str]) -> InputVectorizer:
        """Fit both blocks on training pairs (normalized strings; ``""`` = no previous query)."""
        self._check_pairs(prefixes, previous, "fit")
        self.prefix_ = self._prefix_block().fit(prefixes)
        self.previous_ = self._previous_block().fit(previous)
        self._sizes()
        return self

    def _sizes(self) -> None:
        self.n_prefix_features_ = self.prefix_.n_features_
        self.n_features_ = self.prefix_.n_features_ + self.previous_.n_features_

    def transform(self, prefixes: Sequence[str], previous: Sequence[str]) -> sp.csr_matrix:
        """Rows for (prefix, previous) pairs: CSR float32, shape (n, n_features_), sorted indices."""
        check_is_fitted(self)
        self._check_pairs(prefixes, previous, "transform")
        return self._join(self.prefix_.transform(prefixes), self.previous_.transform(previous))

    def _join(self, left: sp.csr_matrix, right: sp.csr_matrix) -> sp.csr_matrix:
        out = sp.hstack(
            [left * np.float32(self.prefix_weight), right * np.float32(self.previous_weight)],
            format="csr",
            dtype=np.float32,
        )
        out.sort_indices()
        return out

    def fit_transform(self, prefixes: Sequence[str], previous: Sequence[str]) -> sp.csr_matrix:
        """``fit(...).transform(...)`` on the same pairs, taking each distinct text's n-grams once."""
        self._check_pairs(prefixes, previous, "fit_transform")
        self.prefix_ = self._prefix_block()
        left = self.prefix_.fit_transform(prefixes)
        self.previous_ = self._previous_block()
        right = self.previous_.fit_transform(previous)
        self._sizes()
        return self._join(left, right)

    def transform_one(self, prefix: str, previous: str = "") -> tuple[np.ndarray, np.ndarray]:
        """One keystroke's vector: (indices int32, data float32), sorted by index, equal to its
        :meth:`transform` row. Strings must already be normalized."""
        check_is_fitted(self)
        idx, val = self.prefix_._vector(prefix)
        weight = self.prefix_weight
        data = [v * weight for v in val]
        if previous:
            idx_prev, val_prev = self.previous_._vector(previous)
            if idx_prev:
                offset = self.n_prefix_features_
                weight = self.previous_weight
                idx = idx + [j + offset for j in idx_prev]
                data += [v * weight for v in val_prev]
        return np.array(idx, dtype=np.int32), np.array(data, dtype=np.float32)

    def save(self, folder: str | Path) -> None:
        """``params.json`` here, the blocks in the subfolders ``prefix/`` and ``previous/``."""
        check_is_fitted(self)
        folder = Path(folder)
        self.prefix_.save(folder / "prefix")
        self.previous_.save(folder / "previous")
        save_params(folder, "InputVectorizer", self.get_params(), {"n_features": self.n_features_})

    @classmethod
    def load(cls, folder: str | Path, mmap: bool = True) -> InputVectorizer:
        """A fitted vectorizer saved by :meth:`save`; a bad file raises ``ModelFileError`` naming it."""
        folder = Path(folder)
        body = read_params(folder, kind="InputVectorizer")
        try:
            self = cls(**body["params"])
        except (KeyError, TypeError) as exc:
            raise ModelFileError(
                f"{folder / 'params.json'} does not hold InputVectorizer parameters ({exc}): "
                "rebuild the model."
            ) from exc
        self.prefix_ = PrefixNgramVectorizer.load(folder / "prefix", mmap=mmap)
        self.previous_ = WordNgramVectorizer.load(folder / "previous", mmap=mmap)
        self._sizes()
        return self
