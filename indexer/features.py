"""The model input of a keystroke: the typed prefix's TF-IDF block joined with the previous query's.

The blocks themselves live in :mod:`indexer.tfidf`.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from indexer.modelio import ModelFileError, read_params, save_params
from indexer.params import FeatureParams
from indexer.tfidf import PrefixNgramVectorizer, WordNgramVectorizer


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
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(self._previous_block().fit, previous)
            self.prefix_ = self._prefix_block().fit(prefixes)
            self.previous_ = pending.result()
        self._sizes()
        return self

    def _sizes(self) -> None:
        self.n_prefix_features_ = self.prefix_.n_features_
        self.n_features_ = self.prefix_.n_features_ + self.previous_.n_features_

    def transform(self, prefixes: Sequence[str], previous: Sequence[str]) -> sp.csr_matrix:
        """Rows for (prefix, previous) pairs: CSR float32, shape (n, n_features_), sorted indices."""
        check_is_fitted(self)
        self._check_pairs(prefixes, previous, "transform")
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(self.previous_.transform, previous)
            left = self.prefix_.transform(prefixes)
            return self._join(left, pending.result())

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
        self.previous_ = self._previous_block()
        with ThreadPoolExecutor(1) as pool:  # the n-gram kernels release the GIL: blocks overlap
            pending = pool.submit(self.previous_.fit_transform, previous)
            left = self.prefix_.fit_transform(prefixes)
            right = pending.result()
        self._sizes()
        return self._join(left, right)

    def transform_one(self, prefix: str, previous: str = "") -> tuple[np.ndarray, np.ndarray]:
        """One keystroke's vector: (indices int32, data float32), sorted by index, equal to its
        :meth:`transform` row. Strings must already be normalized. (Per keystroke: no sklearn
        fitted-check, which would cost more than the vector.)"""
        indices, data = self.prefix_.row(prefix)
        data *= np.float32(self.prefix_weight)  # as the batch rows are scaled: in float32
        if not previous:
            return indices, data
        idx_prev, data_prev = self.previous_vector(previous)
        return np.concatenate((indices, idx_prev)), np.concatenate((data, data_prev))

    def previous_vector(self, previous: str) -> tuple[np.ndarray, np.ndarray]:
        """The previous query's part of :meth:`transform_one` (its columns come after every prefix
        column), for a caller that keeps it while the person types."""
        idx, val = self.previous_._vector(previous)
        offset, weight = self.n_prefix_features_, self.previous_weight
        return (
            np.array([j + offset for j in idx], dtype=np.int32),
            np.array([v * weight for v in val], dtype=np.float32),
        )

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
