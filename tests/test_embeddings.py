from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError

from indexer.embeddings import label_embeddings, pifa_embeddings
from indexer.tfidf import PrefixNgramVectorizer

LABELS = ["bank of america", "banking", "cheap flights", "cheap hotels", "chase bank", "zzz"]


@pytest.fixture(scope="module")
def vectorizer() -> PrefixNgramVectorizer:
    return PrefixNgramVectorizer().fit(["ban", "bank o", "chea", "cheap f", "chase", "ho"])


@pytest.fixture(scope="module")
def examples() -> tuple[sp.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(0)
    x = sp.random(40, 12, density=0.3, random_state=1, format="csr", dtype=np.float32)
    y = rng.integers(0, 4, size=40)  # labels 4 and 5 have no example
    return x, y


def reference_pifa(x: sp.csr_matrix, y: np.ndarray, n_labels: int) -> np.ndarray:
    dense = x.toarray().astype(np.float64)
    out = np.zeros((n_labels, dense.shape[1]))
    for j in range(n_labels):
        if np.any(y == j):
            mean = dense[y == j].mean(axis=0)
            out[j] = mean / np.linalg.norm(mean)
    return out


def test_text_embeddings_are_the_normalized_vectorizer_rows(vectorizer) -> None:
    emb = label_embeddings(LABELS, vectorizer)
    assert emb.dtype == np.float32 and emb.has_sorted_indices and emb.shape == (6, vectorizer.n_features_)
    expected = vectorizer.transform(LABELS).toarray()
    norms = np.linalg.norm(expected, axis=1, keepdims=True)
    expected = np.divide(expected, norms, out=np.zeros_like(expected), where=norms > 0)
    np.testing.assert_allclose(emb.toarray(), expected, atol=1e-6)
    # labels that begin alike are closer than labels that merely share letters later on
    sims = (emb @ emb.T).toarray()
    assert sims[2, 3] > sims[2, 4]  # "cheap flights" ~ "cheap hotels" more than ~ "chase bank"
    assert sims[5, 5] == 0.0  # no known n-gram: an all-zero row


def test_pifa_is_the_normalized_mean_input_of_each_label(examples) -> None:
    x, y = examples
    np.testing.assert_allclose(pifa_embeddings(x, y, 6).toarray(), reference_pifa(x, y, 6), atol=1e-6)


def test_full_pifa_weight_gives_pifa_rows_and_text_for_labels_without_examples(vectorizer, examples) -> None:
    x, y = examples
    emb = label_embeddings(LABELS, vectorizer, pifa=(x, y), pifa_weight=1.0).toarray()
    n_text = vectorizer.n_features_
    np.testing.assert_allclose(emb[:4, n_text:], reference_pifa(x, y, 6)[:4], atol=1e-6)
    assert not emb[:4, :n_text].any()
    text = label_embeddings(LABELS, vectorizer).toarray()
    np.testing.assert_allclose(emb[4:, :n_text], text[4:], atol=1e-6)


@pytest.mark.parametrize("weight", [0.25, 0.5, 0.9])
def test_similarity_mixes_text_and_pifa_similarity(vectorizer, examples, weight: float) -> None:
    x, y = examples
    emb = label_embeddings(LABELS, vectorizer, pifa=(x, y), pifa_weight=weight)
    np.testing.assert_allclose(np.asarray(emb.multiply(emb).sum(axis=1)).ravel()[:5], 1.0, atol=1e-5)
    text = label_embeddings(LABELS, vectorizer)
    pifa = reference_pifa(x, y, 6)
    got = (emb @ emb.T).toarray()[:4, :4]
    expected = (1 - weight) * (text @ text.T).toarray()[:4, :4] + weight * pifa[:4] @ pifa[:4].T
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_zero_weight_ignores_pifa(vectorizer, examples) -> None:
    a = label_embeddings(LABELS, vectorizer, pifa=examples, pifa_weight=0.0)
    b = label_embeddings(LABELS, vectorizer)
    assert a.shape == b.shape and (a != b).nnz == 0


def test_bad_arguments_are_refused(vectorizer, examples) -> None:
    x, y = examples
    with pytest.raises(ValueError, match="pifa_weight"):
        label_embeddings(LABELS, vectorizer, pifa=(x, y), pifa_weight=1.5)
    with pytest.raises(ValueError, match="needs pifa"):
        label_embeddings(LABELS, vectorizer, pifa_weight=0.5)
    with pytest.raises(ValueError, match="one label id per row"):
        label_embeddings(LABELS, vectorizer, pifa=(x, y[:-1]), pifa_weight=0.5)
    with pytest.raises(ValueError, match=r"\[0, 6\)"):
        label_embeddings(LABELS, vectorizer, pifa=(x, np.full(40, 6)), pifa_weight=0.5)
    with pytest.raises(NotFittedError):
        label_embeddings(LABELS, PrefixNgramVectorizer())
