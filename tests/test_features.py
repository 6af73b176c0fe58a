from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction import DictVectorizer
from sklearn.feature_extraction.text import TfidfTransformer, TfidfVectorizer

from indexer import tfidf
from indexer.features import InputVectorizer
from indexer.modelio import ModelFileError
from indexer.params import FeatureParams
from indexer.tfidf import PrefixNgramVectorizer, WordNgramVectorizer

CORPUS = [
    "rock music",
    "rock",
    "ro",
    "robots for kids",
    "new york city",
    "new york",
    "nyc hotels",
    "hotel in rome",
    "a",
    "",
    "rome rome rome",
    "café münchen",
    "日本 東京",
    "bank of america",
    "bank",
    "banana bread recipe",
]
PREVIOUS = [
    "",
    "rock",
    "new york",
    "",
    "weather",
    "hotels in new york",
    "",
    "bank of america",
    "",
    "bank",
    "rome",
    "",
    "東京",
    "bank",
    "",
    "bread",
]


def reference_prefix_counts(text: str, ngram_min: int, ngram_max: int, decay: float) -> dict[str, float]:
    """The documented n-gram rule, written plainly: ' ' + word, i = letter position of the n-gram."""
    counts: dict[str, float] = {}
    for word in text.split():
        padded = " " + word
        for n in range(ngram_min, ngram_max + 1):
            for start in range(len(padded) - n + 1):
                gram = padded[start : start + n]
                if gram == " ":
                    continue
                position = max(start - 1, 0)
                counts[gram] = counts.get(gram, 0.0) + 1.0 / (1.0 + position) ** decay
    return counts


def reference_prefix_tfidf(
    train: list[str], test: list[str], ngram_min: int, ngram_max: int, decay: float, min_df: int
) -> tuple[list[str], np.ndarray]:
    dv = DictVectorizer(sort=True)
    counts = dv.fit_transform([reference_prefix_counts(t, ngram_min, ngram_max, decay) for t in train])
    df = np.asarray((counts > 0).sum(axis=0)).ravel()
    keep = np.flatnonzero(df >= min_df)
    names = list(dv.get_feature_names_out()[keep])
    tfidf = TfidfTransformer(smooth_idf=True, norm="l2").fit(counts[:, keep])
    test_counts = dv.transform([reference_prefix_counts(t, ngram_min, ngram_max, decay) for t in test])[
        :, keep
    ]
    return names, tfidf.transform(test_counts).toarray()


@pytest.mark.parametrize(
    ("ngram_min", "ngram_max", "decay", "min_df"),
    [(1, 3, 1.0, 1), (1, 1, 0.0, 1), (2, 4, 0.5, 1), (1, 3, 2.0, 2), (3, 3, 1.0, 1)],
)
def test_prefix_vectorizer_matches_scikit_learn_pipeline(ngram_min, ngram_max, decay, min_df):
    vec = PrefixNgramVectorizer(ngram_min=ngram_min, ngram_max=ngram_max, position_decay=decay, min_df=min_df)
    vec.fit(CORPUS)
    test = ["ro", "rock mu", "new yo", "zzz", "", "ban", "日本"]
    names, expected = reference_prefix_tfidf(CORPUS, test, ngram_min, ngram_max, decay, min_df)
    assert vec.get_feature_names_out().tolist() == names
    got = vec.transform(test)
    assert isinstance(got, sp.csr_matrix) and got.dtype == np.float32 and got.has_sorted_indices
    np.testing.assert_allclose(got.toarray(), expected, rtol=1e-6, atol=1e-7)


@settings(max_examples=100, deadline=None)
@given(
    shape=st.sampled_from([(1, 3, 1.0), (1, 1, 0.0), (2, 3, 0.5), (3, 3, 2.0), (2, 4, 0.5)]),
    text=st.text(st.sampled_from("ro ckbné日\t\x00"), max_size=300),
)
@example(shape=(1, 3, 1.0), text="b" * 300)
def test_the_keystroke_row_is_the_batch_row(shape, text):
    """The per-keystroke kernel (n-grams up to 3 long; longer ones take the pure-Python terms)
    gives the batch row exactly, words longer than the position weight table included."""
    ngram_min, ngram_max, decay = shape
    vec = PrefixNgramVectorizer(ngram_min=ngram_min, ngram_max=ngram_max, position_decay=decay)
    vec.fit([*CORPUS, "rocknéé rr", "b" * 300])
    idx, val = vec.row(text)
    expected = vec.transform([text])
    assert idx.dtype == np.int32 and val.dtype == np.float32
    np.testing.assert_array_equal(idx, expected.indices)
    np.testing.assert_allclose(val, expected.data, rtol=0 if ngram_max <= 3 else 1e-6)


def test_earlier_ngrams_weigh_more_and_word_starts_are_marked():
    vec = PrefixNgramVectorizer(ngram_min=1, ngram_max=2, position_decay=1.0).fit(["abc"])
    row = vec.transform(["abc"]).toarray()[0]
    vocabulary = {term: j for j, term in enumerate(vec.get_feature_names_out())}
    value = {term: row[j] for term, j in vocabulary.items()}
    # every term has the same idf here, so values are proportional to 1 / (1 + position)
    assert value["a"] == pytest.approx(2 * value["b"]) == pytest.approx(3 * value["c"])
    assert value[" a"] == pytest.approx(value["a"])
    assert " b" not in vocabulary and " " not in vocabulary
    inside = vec.transform(["xab"]).toarray()[0]  # "ab" inside a word, not at its start
    assert inside[vocabulary[" a"]] == 0 and inside[vocabulary["ab"]] > 0


def test_max_features_keeps_the_most_frequent_ngrams():
    texts = ["aaaa", "aab", "ab", "c"]
    full = PrefixNgramVectorizer(ngram_min=1, ngram_max=1, position_decay=0.0).fit(texts)
    capped = PrefixNgramVectorizer(ngram_min=1, ngram_max=1, position_decay=0.0, max_features=2).fit(texts)
    assert full.get_feature_names_out().tolist() == ["a", "b", "c"]
    assert capped.get_feature_names_out().tolist() == ["a", "b"]  # totals: a 7, b 2, c 1


@pytest.mark.parametrize(("ngram_max", "min_df"), [(1, 1), (2, 1), (2, 2), (3, 1)])
def test_word_vectorizer_matches_tfidf_vectorizer(ngram_max, min_df):
    ref = TfidfVectorizer(
        tokenizer=str.split, token_pattern=None, lowercase=False, ngram_range=(1, ngram_max), min_df=min_df
    )
    expected_train = ref.fit_transform(PREVIOUS)
    vec = WordNgramVectorizer(ngram_max=ngram_max, min_df=min_df).fit(PREVIOUS)
    assert vec.get_feature_names_out().tolist() == list(ref.get_feature_names_out())
    np.testing.assert_allclose(vec.idf_, ref.idf_, rtol=1e-12)
    np.testing.assert_allclose(
        vec.transform(PREVIOUS).toarray(), expected_train.toarray(), rtol=1e-6, atol=1e-7
    )
    test = ["new york hotels", "unknown words", "", "bank bank"]
    np.testing.assert_allclose(
        vec.transform(test).toarray(), ref.transform(test).toarray(), rtol=1e-6, atol=1e-7
    )


def fitted_input(**kwargs) -> InputVectorizer:
    return InputVectorizer(**kwargs).fit(CORPUS, PREVIOUS)


def test_input_vectorizer_joins_normalized_weighted_blocks():
    vec = fitted_input(prefix_weight=2.0, previous_weight=0.5)
    prefixes = ["ro", "new y", "zzz", "ban"]
    previous = ["new york", "", "bank of america", "qqq"]
    x = vec.transform(prefixes, previous)
    assert x.shape == (4, vec.n_features_) and x.dtype == np.float32 and x.has_sorted_indices
    left = x[:, : vec.n_prefix_features_].toarray()
    right = x[:, vec.n_prefix_features_ :].toarray()
    np.testing.assert_allclose(np.linalg.norm(left, axis=1), [2.0, 2.0, 0.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(right, axis=1), [0.5, 0.0, 0.5, 0.0], rtol=1e-6)
    np.testing.assert_allclose(left, 2.0 * vec.prefix_.transform(prefixes).toarray(), rtol=1e-6)
    np.testing.assert_allclose(right, 0.5 * vec.previous_.transform(previous).toarray(), rtol=1e-6)


def test_from_params_takes_every_feature_parameter():
    params = FeatureParams(
        ngram_min=2,
        ngram_max=4,
        position_decay=0.5,
        prefix_weight=3.0,
        previous_weight=0.25,
        previous_ngram_max=1,
        min_df=2,
        max_features=100,
    )
    vec = InputVectorizer.from_params(params)
    assert vec.get_params() == {
        "ngram_min": 2,
        "ngram_max": 4,
        "position_decay": 0.5,
        "prefix_weight": 3.0,
        "previous_weight": 0.25,
        "previous_ngram_max": 1,
        "min_df": 2,
        "max_features": 100,
    }


FITTED = fitted_input(prefix_weight=1.5, previous_weight=0.7)
texts = st.text(
    alphabet=st.one_of(st.sampled_from("abnroky ceéü日本東京"), st.characters(exclude_categories=("Cs",))),
    max_size=30,
)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> tuple[InputVectorizer, InputVectorizer]:
    """Loaded twice: small vocabularies as plain dicts (the default), and looked up in the trie."""
    folder = tmp_path_factory.mktemp("model") / "features"
    FITTED.save(folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tfidf, "DICT_TERMS", 0)
        in_trie = InputVectorizer.load(folder)
    assert in_trie.prefix_._lookup is None
    return InputVectorizer.load(folder), in_trie


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=st.one_of(texts, st.sampled_from(CORPUS)), previous=st.one_of(texts, st.sampled_from(PREVIOUS)))
def test_transform_one_equals_batch_row(loaded, prefix, previous):
    row = FITTED.transform([prefix], [previous])
    for vec in (FITTED, *loaded):
        idx, val = vec.transform_one(prefix, previous)
        assert idx.dtype == np.int32 and val.dtype == np.float32
        assert np.all(np.diff(idx) > 0)
        np.testing.assert_array_equal(idx, row.indices)
        np.testing.assert_array_equal(val, row.data)  # the rows the model was trained on, to the bit
        again = vec.transform([prefix], [previous])
        np.testing.assert_array_equal(again.indices, row.indices)
        np.testing.assert_array_equal(again.data, row.data)


@pytest.mark.parametrize("source", ["fitted", "loaded", "loaded-trie"])
def test_ngrams_with_a_nul_character_are_never_features(tmp_path, monkeypatch, source):
    """The vocabulary trie cannot hold NUL; normalized text has none, and raw "a\\x00" must not match "a"."""
    vec = PrefixNgramVectorizer(ngram_min=1, ngram_max=2).fit(["ab", "a\x00b"])
    if source != "fitted":
        vec.save(tmp_path / "block")
        if source == "loaded-trie":
            monkeypatch.setattr(tfidf, "DICT_TERMS", 0)
        vec = PrefixNgramVectorizer.load(tmp_path / "block")
    assert all("\x00" not in term for term in vec.get_feature_names_out())
    assert vec._vector("\x00") == ([], [])
    assert vec.transform(["\x00"]).nnz == 0
    np.testing.assert_array_equal(vec.transform(["a\x00"]).indices, vec.transform(["a"]).indices)
    assert vec._vector("a\x00")[0] == vec._vector("a")[0]


def test_empty_previous_gives_zero_previous_block():
    idx, _ = FITTED.transform_one("rock", "")
    assert idx.size and idx.max() < FITTED.n_prefix_features_
    idx, val = FITTED.transform_one("", "")
    assert idx.size == 0 and val.size == 0


def test_save_load_round_trip(tmp_path):
    FITTED.save(tmp_path / "features")
    loaded = InputVectorizer.load(tmp_path / "features")
    assert isinstance(loaded.previous_.term_columns_.base, np.memmap)
    assert isinstance(loaded.previous_.idf_.base, np.memmap)
    assert loaded.get_params() == FITTED.get_params()
    for block in ("prefix_", "previous_"):
        names = getattr(FITTED, block).get_feature_names_out().tolist()
        assert getattr(loaded, block).get_feature_names_out().tolist() == names
    prefixes, previous = ["ro", "new y", "日"], ["new york", "", "bank"]
    a, b = FITTED.transform(prefixes, previous), loaded.transform(prefixes, previous)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(
        loaded.transform_one("rock m", "rock")[1], FITTED.transform_one("rock m", "rock")[1]
    )


def test_empty_vocabulary_round_trip(tmp_path):
    vec = WordNgramVectorizer().fit(["", ""])
    vec.save(tmp_path / "block")
    loaded = WordNgramVectorizer.load(tmp_path / "block")
    assert loaded.n_features_ == 0 and loaded.get_feature_names_out().size == 0
    assert loaded.transform(["a b"]).shape == (1, 0)


@pytest.mark.parametrize(
    "broken",
    [
        "missing-terms",
        "corrupt-terms",
        "duplicate-columns",
        "short-columns",
        "truncated-idf",
        "short-idf",
        "old-layout",
        "wrong-kind",
        "bad-param",
    ],
)
def test_load_names_the_bad_file(tmp_path, broken):
    folder = tmp_path / "features"
    FITTED.save(folder)
    block = folder / "prefix"
    if broken == "missing-terms":
        (block / "terms.marisa").unlink()
        culprit = "terms.marisa"
    elif broken == "corrupt-terms":
        (block / "terms.marisa").write_bytes(b"not a trie at all")
        culprit = "terms.marisa"
    elif broken == "duplicate-columns":
        np.save(block / "columns.npy", np.zeros(FITTED.prefix_.n_features_, dtype=np.int32))
        culprit = "columns.npy"
    elif broken == "short-columns":
        np.save(block / "columns.npy", FITTED.prefix_.term_columns_[:-1])
        culprit = "columns.npy"
    elif broken == "old-layout":
        text = (block / "params.json").read_text().replace('"layout": 2', '"layout": 1')
        (block / "params.json").write_text(text)
        culprit = "params.json.*older layout"
    elif broken == "truncated-idf":
        data = (block / "idf.npy").read_bytes()
        (block / "idf.npy").write_bytes(data[: len(data) // 2])
        culprit = "idf.npy"
    elif broken == "short-idf":
        np.save(block / "idf.npy", FITTED.prefix_.idf_[:-1])
        culprit = "idf.npy"
    elif broken == "wrong-kind":
        WordNgramVectorizer().fit(["a"]).save(block)
        culprit = "params.json"
    else:
        text = (folder / "params.json").read_text().replace('"min_df"', '"min_documents"')
        (folder / "params.json").write_text(text)
        culprit = "params.json"
    with pytest.raises(ModelFileError, match=culprit):
        InputVectorizer.load(folder)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ngram_min": 0}, "ngram_min"),
        ({"ngram_min": 3, "ngram_max": 2}, "ngram_max"),
        ({"position_decay": -1.0}, "position_decay"),
        ({"min_df": 0}, "min_df"),
        ({"max_features": -1}, "max_features"),
        ({"prefix_weight": -1.0}, "prefix_weight"),
    ],
)
def test_bad_parameters_are_refused_in_fit(kwargs, message):
    vec = InputVectorizer(**kwargs)  # construction only assigns
    with pytest.raises(ValueError, match=message):
        vec.fit(CORPUS, PREVIOUS)


def test_unfitted_and_mismatched_inputs_are_refused():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        InputVectorizer().transform(["a"], [""])
    with pytest.raises(ValueError, match="one previous query"):
        InputVectorizer().fit(["a", "b"], [""])


def test_fit_transform_equals_fit_then_transform():
    prefixes, previous = CORPUS + ["ro", "ro", "new y"], PREVIOUS + ["", "rock", ""]
    for kwargs in ({}, {"min_df": 2, "max_features": 20, "prefix_weight": 0.5}):
        one_pass = InputVectorizer(**kwargs)
        x = one_pass.fit_transform(prefixes, previous)
        two_pass = InputVectorizer(**kwargs).fit(prefixes, previous)
        expected = two_pass.transform(prefixes, previous)
        for block in ("prefix_", "previous_"):
            names = getattr(two_pass, block).get_feature_names_out().tolist()
            assert getattr(one_pass, block).get_feature_names_out().tolist() == names
        assert x.dtype == np.float32 and x.has_sorted_indices
        np.testing.assert_array_equal(x.indptr, expected.indptr)
        np.testing.assert_array_equal(x.indices, expected.indices)
        np.testing.assert_array_equal(x.data, expected.data)
