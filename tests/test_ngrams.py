"""The numba n-gram kernels behind the batch TF-IDF transforms, against the per-text ``_terms``.

The reference below is the pure-Python batch path the kernels replaced: each distinct text's
``_terms`` dict (the same one the per-keystroke ``transform_one`` uses), document frequencies
from a ``Counter`` over the texts, then the same idf, CSR assembly and L2 norm. Batch rows must
equal it bit for bit, so a model trained by the kernels is the model the old code trained.
"""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from indexer.ngrams import char_grams, space_table, word_grams
from indexer.normalize import get_normalizer
from indexer.synthetic import generate_sessions
from indexer.tfidf import PrefixNgramVectorizer, WordNgramVectorizer


def _texts(seed: int, n: int = 1500) -> list[str]:
    """Made-up texts with repeats, runs of spaces, tabs, a non-ASCII space, accents, empties."""
    rng = random.Random(seed)
    alphabet = "abcdeé  fgz\t\u3000"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))) for _ in range(n)]
    return texts + texts[: n // 3] + ["", " ", "rock music", "rock  music", "a\x00b", "x" * 300]


def _reference_fit(vec, texts: list[str]) -> tuple[list[str], np.ndarray]:  # type: ignore[no-untyped-def]
    """Vocabulary (sorted) and idf of the old ``_fit_counted``."""
    df: Counter[str] = Counter()
    total: dict[str, float] = {}
    counts = Counter(texts)
    for text, times in counts.items():
        for term, weight in vec._terms(text).items():
            df[term] += times
            total[term] = total.get(term, 0.0) + weight * times
    kept = [t for t, c in df.items() if c >= vec.min_df and "\x00" not in t]
    if vec.max_features and len(kept) > vec.max_features:
        kept = sorted(kept, key=lambda t: (-total[t], t))[: vec.max_features]
    terms = sorted(kept)
    n_docs = len(texts)
    idf = np.array([math.log((1 + n_docs) / (1 + df[t])) + 1.0 for t in terms])
    return terms, idf


def _reference_rows(vec, terms: list[str], idf: np.ndarray, texts: list[str]) -> sp.csr_matrix:  # type: ignore[no-untyped-def]
    column = {t: j for j, t in enumerate(terms)}
    rows, cols, vals = [], [], []
    for i, text in enumerate(texts):
        for term, count in vec._terms(text).items():
            if term in column:
                rows.append(i)
                cols.append(column[term])
                vals.append(count * idf[column[term]])
    m = sp.csr_matrix((np.array(vals, dtype=np.float64), (rows, cols)), shape=(len(texts), len(terms)))
    m.sort_indices()
    if len(terms):
        m = normalize(m, norm="l2", copy=False)
    return m.astype(np.float32)


def _assert_same(got: sp.csr_matrix, expected: sp.csr_matrix) -> None:
    assert got.shape == expected.shape and got.dtype == np.float32 and got.has_sorted_indices
    np.testing.assert_array_equal(got.indptr, expected.indptr)
    np.testing.assert_array_equal(got.indices, expected.indices)
    np.testing.assert_array_equal(got.data, expected.data)  # bit for bit


PREFIX_PARAMS = [
    {},
    {"ngram_min": 2, "ngram_max": 5, "position_decay": 0.5, "min_df": 2},
    {"ngram_min": 1, "ngram_max": 1, "position_decay": 0.0},
    {"max_features": 60},
]


@pytest.mark.parametrize("params", PREFIX_PARAMS)
@pytest.mark.parametrize("seed", [0, 1])
def test_prefix_batch_equals_per_text_terms(params, seed):
    texts = _texts(seed)
    vec = PrefixNgramVectorizer(**params)
    got = vec.fit_transform(texts)
    terms, idf = _reference_fit(vec, texts)
    assert vec.get_feature_names_out().tolist() == terms
    np.testing.assert_array_equal(vec.idf_, idf)
    _assert_same(got, _reference_rows(vec, terms, idf, texts))
    # a fitted vocabulary on texts it has not seen (n-grams outside it are dropped)
    fitted = PrefixNgramVectorizer(**params).fit(texts[:500])
    terms, idf = _reference_fit(fitted, texts[:500])
    _assert_same(fitted.transform(texts), _reference_rows(fitted, terms, idf, texts))


@pytest.mark.parametrize(
    "params", [{"ngram_max": 1}, {"ngram_max": 2}, {"ngram_max": 3, "min_df": 2}, {"max_features": 30}]
)
def test_word_batch_equals_per_text_terms(params):
    texts = _texts(2)
    vec = WordNgramVectorizer(**params)
    got = vec.fit_transform(texts)
    terms, idf = _reference_fit(vec, texts)
    assert vec.get_feature_names_out().tolist() == terms
    _assert_same(got, _reference_rows(vec, terms, idf, texts))
    fitted = WordNgramVectorizer(**params).fit(texts[:400])
    terms, idf = _reference_fit(fitted, texts[:400])
    _assert_same(fitted.transform(texts), _reference_rows(fitted, terms, idf, texts))


def test_batch_rows_equal_transform_one_on_synthetic_sessions():
    normalize_query = get_normalizer("aol")
    queries = [q for q in (normalize_query(raw) for _, raw, _ in generate_sessions(60, seed=3)) if q]
    prefixes = [q[: 1 + i % len(q)] for i, q in enumerate(queries)]
    vec = PrefixNgramVectorizer()
    rows = vec.fit_transform(prefixes)
    for i in range(0, len(prefixes), 7):
        idx, val = vec._vector(prefixes[i])
        row = rows[i]
        np.testing.assert_array_equal(row.indices, idx)
        np.testing.assert_allclose(row.data, val, rtol=1e-6)


def test_kernel_strings_name_each_distinct_ngram_once():
    texts = ["ab ab", "b", "ab\tc"]
    grams, strings = char_grams(texts, 1, 2, lambda n: [1.0] * (n + 1))
    emitted = [strings[g] for g in np.flatnonzero(grams.emitted)]
    assert sorted(emitted) == sorted({" a", " b", " c", "a", "ab", "b", "c"})
    first = grams.ids[grams.row_ptr[0] : grams.row_ptr[1]]
    assert [strings[g] for g in first] == ["a", "b", " a", "ab"]  # _terms order: n, then position
    np.testing.assert_array_equal(grams.weights[: len(first)], [2.0, 2.0, 2.0, 2.0])
    wgrams, wstrings = word_grams(["a  b a b", "a b"], 2)
    assert sorted(wstrings) == ["a", "a b", "b", "b a"]  # "a  b" is the word bigram "a b"
    first = wgrams.ids[wgrams.row_ptr[0] : wgrams.row_ptr[1]]
    assert [wstrings[g] for g in first] == ["a", "b", "a b", "b a"]
    np.testing.assert_array_equal(wgrams.weights[wgrams.row_ptr[0] : wgrams.row_ptr[1]], [2.0, 2.0, 2.0, 1.0])


def test_space_table_is_what_str_split_splits_on():
    table = space_table()
    assert all(chr(c).isspace() == bool(table[c]) for c in range(table.size))
    assert not any(chr(c).isspace() for c in range(table.size, 0x110000, 97))
