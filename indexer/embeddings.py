"""Label embeddings for the k-means layers of the tree: what a label looks like, and who asks for it.

The text part is the label's prefix-weighted character n-gram TF-IDF (the fitted
``PrefixNgramVectorizer`` of the input features: n-grams near the start of a word weigh more), so
labels that begin alike cluster together. The optional PIFA part (PECOS's "positive instance
feature aggregation") is the L2-normalized mean input feature of the label's training examples,
so labels asked for in similar contexts cluster together. The two blocks are stacked side by side,
scaled by ``sqrt(1 - pifa_weight)`` and ``sqrt(pifa_weight)``: the dot product of two embeddings
is then ``(1 - w) * text similarity + w * PIFA similarity``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize


class TextVectorizer(Protocol):
    def transform(self, texts: Sequence[str]) -> sp.csr_matrix: ...


def pifa_embeddings(x: sp.spmatrix | sp.sparray, y: np.ndarray, n_labels: int) -> sp.csr_matrix:
    """L2-normalized mean row of ``x`` per label ``y``; all-zero rows for labels without examples.

    Parameters
    ----------
    x : sparse matrix, shape (n_examples, n_features)
        Input features of the training examples.
    y : array of int, shape (n_examples,)
        Label id of each example, in ``[0, n_labels)``.
    n_labels : int

    Returns
    -------
    csr_matrix of float32, shape (n_labels, n_features)
    """
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"pifa: y must hold one label id per row of X ({x.shape[0]}), got shape {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= n_labels):
        raise ValueError(
            f"pifa: label ids must lie in [0, {n_labels}); drop examples whose target is no label"
        )
    members = sp.csr_matrix(
        (np.ones(y.shape[0], dtype=np.float32), (y, np.arange(y.shape[0]))), shape=(n_labels, y.shape[0])
    )
    return _rows(members @ sp.csr_matrix(x, dtype=np.float32))


def label_embeddings(
    labels: Sequence[str],
    vectorizer: TextVectorizer,
    *,
    pifa: tuple[sp.spmatrix | sp.sparray, np.ndarray] | None = None,
    pifa_weight: float = 0.0,
) -> sp.csr_matrix:
    """One L2-normalized row per label: text TF-IDF, optionally mixed with PIFA.

    Parameters
    ----------
    labels : sequence of str
        Label texts in label id order.
    vectorizer : fitted vectorizer
        Its ``transform(texts)`` gives the text part (the input features' ``PrefixNgramVectorizer``).
    pifa : (X, y), optional
        Training inputs (n_examples x n_features, sparse) and the label id of each example;
        needed when ``pifa_weight > 0``.
    pifa_weight : float in [0, 1]
        Share of the PIFA similarity in the embedding similarity. A label without training
        examples keeps its text part alone.

    Returns
    -------
    csr_matrix of float32, shape (n_labels, n_text_features [+ n_features of X])
        Rows L2-normalized (a label with no known n-gram and no example stays all-zero),
        indices sorted.
    """
    if (
        isinstance(pifa_weight, bool)
        or not isinstance(pifa_weight, (int, float))
        or not 0.0 <= pifa_weight <= 1.0
    ):
        raise ValueError(f"label_embeddings: pifa_weight must be a number in [0, 1], got {pifa_weight!r}")
    labels = list(labels)
    text = _rows(vectorizer.transform(labels))
    if text.shape[0] != len(labels):
        raise ValueError(
            f"label_embeddings: the vectorizer gave {text.shape[0]} rows for {len(labels)} labels"
        )
    if pifa_weight == 0.0:
        return text
    if pifa is None:
        raise ValueError(
            "label_embeddings: pifa_weight > 0 needs pifa=(X, y), the training inputs and their label ids"
        )
    x, y = pifa
    aggregated = pifa_embeddings(x, y, len(labels))
    has_examples = np.diff(aggregated.indptr) > 0
    text_scale = np.where(has_examples, math.sqrt(1.0 - pifa_weight), 1.0).astype(np.float32)
    mixed = sp.hstack(
        [sp.diags(text_scale) @ text, aggregated * np.float32(math.sqrt(pifa_weight))], format="csr"
    )
    return _rows(mixed)


def _rows(matrix: sp.spmatrix | sp.sparray) -> sp.csr_matrix:
    """CSR float32, rows L2-normalized, indices sorted, explicit zeros dropped."""
    out = normalize(sp.csr_matrix(matrix, dtype=np.float32)).astype(np.float32)
    out.eliminate_zeros()
    out.sort_indices()
    return out
