import math
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from indexer.language import WordLanguageModel
from indexer.modelio import ModelFileError
from indexer.normalize import normalize_aol
from indexer.synthetic import generate_sessions

# a corpus small enough to compute Kneser-Ney by hand (order 2, discount 0.5):
# bigrams <s> a:3, a b:2, b </s>:2, a c:1, c </s>:2, <s> b:1, b c:1
TINY = (["a b", "a b", "a c", "b c"], ["u1", "u2", "u1", "u3"])


def tiny(**params) -> WordLanguageModel:
    return WordLanguageModel(**{"order": 2, "min_users": 1, "discount": 0.5, **params}).fit(*TINY)


def test_counts_of_the_tiny_corpus():
    model = tiny()
    assert model.vocabulary_.texts() == ["a", "b", "c"]
    assert model.vocabulary_.counts.tolist() == [3, 3, 2]
    assert model.ngram_count(["a", "b"]) == 2
    assert model.ngram_count(["<s>", "a"]) == 3
    assert model.ngram_count(["c", "</s>"]) == 2
    assert model.ngram_count(["c", "a"]) == 0
    assert model.successors(["a"]) == ["b", "c"]


def test_probabilities_of_the_tiny_corpus_match_kneser_ney_by_hand():
    model = tiny()
    # continuation counts: a 1 (<s>), b 2 (a, <s>), c 2 (a, b), </s> 2 (b, c); total 7;
    # the discounts leave 4 * 0.5 / 7 = 2/7 for the uniform over 3 words + </s>
    assert model.probability("a") == pytest.approx(1 / 7)
    assert model.probability("b") == pytest.approx(2 / 7)
    assert model.probability("</s>") == pytest.approx(2 / 7)
    # P(b | a) = (2 - 0.5) / 3 + gamma(a) P(b), gamma(a) = 1 - (1.5 + 0.5) / 3
    assert model.probability("b", ["a"]) == pytest.approx(1.5 / 3 + (1 / 3) * (2 / 7))
    assert model.probability("</s>", ["b"]) == pytest.approx(25 / 42)
    # P(a | <s>) = (3 - 0.5) / 4 + gamma(<s>) P(a), gamma(<s>) = 1 - (2.5 + 0.5) / 4
    assert model.probability("a", ["<s>"]) == pytest.approx(2.5 / 4 + 0.25 / 7)
    # an unknown context word backs off to the unigram
    assert model.probability("b", ["zz"]) == pytest.approx(2 / 7)
    assert model.log_probability("a b") == pytest.approx(
        math.log(model.probability("a", ["<s>"]))
        + math.log(model.probability("b", ["a"]))
        + math.log(model.probability("</s>", ["b"]))
    )


def test_end_fraction_is_how_often_a_word_ended_a_query():
    model = tiny()
    ids = model.token_ids(["a", "b", "c"])
    assert model.end_fraction_[ids].tolist() == pytest.approx([0.0, 2 / 3, 1.0])


@pytest.fixture(scope="module")
def synthetic_queries():
    rows = generate_sessions(n_users=120, seed=3)
    queries = [normalize_aol(q) for _, q, _ in rows]
    users = [u for u, q, _ in rows]
    kept = [(q, u) for q, u in zip(queries, users) if q]
    return [q for q, _ in kept], [u for _, u in kept]


@pytest.mark.parametrize("order", [2, 3, 4])
@pytest.mark.parametrize(
    "context",
    [
        [],
        ["<s>"],
        ["<s>", "rose"],
        ["running", "shoes"],
        ["cheap"],
        ["zzz", "for"],
        ["<s>", "zzz"],
        ["hotels", "in"],
    ],
)
def test_probabilities_sum_to_one_over_the_vocabulary_and_the_end(synthetic_queries, order, context):
    model = WordLanguageModel(order=order, min_users=2).fit(*synthetic_queries)
    total = sum(model.probability(w, context) for w in model.vocabulary_.texts()) + model.probability(
        "</s>", context
    )
    assert total == pytest.approx(1.0, abs=1e-6)


def reference_users(queries, users, order):
    """Distinct users of every n-gram (1..order tokens, <s>/</s> included)."""
    who = defaultdict(set)
    for query, user in zip(queries, users if users is not None else range(len(queries))):
        tokens = ["<s>"] + query.split(" ") + ["</s>"]
        for n in range(1, order + 1):
            for start in range(len(tokens) - n + 1):
                gram = tuple(tokens[start : start + n])
                if gram != ("<s>",):
                    who[gram].add(user)
    return who


WORDS = st.sampled_from(["a", "b", "c", "of", "ab"])
CORPUS = st.lists(
    st.tuples(
        st.lists(WORDS, min_size=1, max_size=4).map(" ".join), st.sampled_from(["u1", "u2", "u3", "u4"])
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=80, deadline=None)
@given(corpus=CORPUS, min_users=st.integers(1, 3), order=st.integers(2, 3), anonymous=st.booleans())
def test_an_ngram_is_kept_exactly_when_enough_distinct_users_used_it(corpus, min_users, order, anonymous):
    queries = [q for q, _ in corpus]
    users = None if anonymous else [u for _, u in corpus]
    model = WordLanguageModel(order=order, min_users=min_users).fit(queries, users)
    who = reference_users(queries, users, order)
    raw = defaultdict(int)
    for query in queries:
        tokens = ["<s>"] + query.split(" ") + ["</s>"]
        for n in range(1, order + 1):
            for start in range(len(tokens) - n + 1):
                raw[tuple(tokens[start : start + n])] += 1
    for gram, people in who.items():
        if gram in (("</s>",),):
            continue
        expected = raw[gram] if len(people) >= min_users else 0
        assert model.ngram_count(list(gram)) == expected, gram
    assert sorted(model.vocabulary_.texts()) == sorted(
        g[0] for g, people in who.items() if len(g) == 1 and g != ("</s>",) and len(people) >= min_users
    )


def test_without_user_ids_every_query_occurrence_is_its_own_user():
    model = WordLanguageModel(order=2, min_users=2).fit(["x y", "x y", "x z"])
    assert model.ngram_count(["x", "y"]) == 2
    assert model.ngram_count(["x", "z"]) == 0
    same_user = WordLanguageModel(order=2, min_users=2).fit(["x y", "x y", "x z"], ["u", "u", "v"])
    assert same_user.ngram_count(["x", "y"]) == 0


def test_blocklisted_words_and_patterns_never_count(tmp_path):
    blocklist = tmp_path / "block.txt"
    blocklist.write_text("secret\nre:^cheap flights\n")
    queries = ["my secret diagnosis", "my secret diagnosis", "cheap flights", "cheap flights", "cheap hotels"]
    model = WordLanguageModel(order=2, min_users=1, blocklist=str(blocklist)).fit(queries)
    assert "secret" not in model.vocabulary_.texts()
    assert model.ngram_count(["cheap", "flights"]) == 0
    assert model.ngram_count(["cheap", "hotels"]) == 1
    assert model.blocklist_words_ == ["secret"] and model.blocklist_patterns_ == ["^cheap flights"]
    assert model.summary_["blocked_queries"] == 2


def test_bad_parameters_and_queries_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="order must be"):
        WordLanguageModel(order=1).fit(["a"])
    with pytest.raises(ValueError, match="min_users"):
        WordLanguageModel(min_users=0).fit(["a"])
    with pytest.raises(ValueError, match="discount"):
        WordLanguageModel(discount=1.5).fit(["a"])
    with pytest.raises(ValueError, match="not normalized"):
        WordLanguageModel().fit(["a  b"])
    with pytest.raises(ValueError, match="one user per query"):
        WordLanguageModel().fit(["a", "b"], ["u"])
    with pytest.raises(ValueError, match="no non-empty query"):
        WordLanguageModel().fit(["", ""])


def test_estimator_contract():
    model = WordLanguageModel(order=4, min_users=3, discount=0.6)
    assert model.get_params() == {"order": 4, "min_users": 3, "discount": 0.6, "blocklist": ""}
    assert clone(model).get_params() == model.get_params()
    assert not hasattr(model, "vocabulary_")
    assert model.fit(["a b"], ["u"]) is model


def test_save_and_load_round_trip(tmp_path, synthetic_queries):
    model = WordLanguageModel(order=3, min_users=2).fit(*synthetic_queries)
    model.save(tmp_path / "lm")
    loaded = WordLanguageModel.load(tmp_path / "lm")
    assert isinstance(loaded.prob_.base, np.memmap)
    assert loaded.get_params() == model.get_params()
    assert loaded.vocabulary_.texts() == model.vocabulary_.texts()
    for name in WordLanguageModel.ARRAYS:
        assert np.array_equal(getattr(loaded, f"{name}_"), getattr(model, f"{name}_")), name
    for context in ([], ["<s>", "rose"], ["running", "shoes"]):
        assert loaded.probability("</s>", context) == model.probability("</s>", context)


def test_a_truncated_array_names_its_file(tmp_path, synthetic_queries):
    WordLanguageModel(order=3, min_users=2).fit(*synthetic_queries).save(tmp_path / "lm")
    path = tmp_path / "lm" / "prob.npy"
    path.write_bytes(path.read_bytes()[:-64])
    with pytest.raises(ModelFileError, match="prob.npy"):
        WordLanguageModel.load(tmp_path / "lm")


def test_an_array_of_the_wrong_shape_names_its_file(tmp_path, synthetic_queries):
    WordLanguageModel(order=3, min_users=2).fit(*synthetic_queries).save(tmp_path / "lm")
    backoff = np.load(tmp_path / "lm" / "backoff.npy")
    np.save(tmp_path / "lm" / "backoff.npy", backoff[:-1])
    with pytest.raises(ModelFileError, match="backoff.npy"):
        WordLanguageModel.load(tmp_path / "lm")
    (tmp_path / "lm" / "counts.npy").unlink()
    with pytest.raises(ModelFileError, match="counts.npy"):
        WordLanguageModel.load(tmp_path / "lm")
