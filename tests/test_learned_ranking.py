import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autocomplete.candidates import CandidateBatch, Feature, Request, Source, empty_features
from autocomplete.ranking import LearnedRanker
from indexer.cooccurrence import PairCounts
from indexer.labels import LabelSet

LABELS = LabelSet(["rose bush", "rose garden", "roses"], [3, 2, 1])
PAIRS = PairCounts().fit(["garden", "garden"], ["rose garden", "rose garden"], LABELS)


def batch(texts, source, ids, **columns):
    features = empty_features(len(texts), source)
    for name, values in columns.items():
        features[:, Feature[name]] = values
    return CandidateBatch(
        list(texts), [source] * len(texts), np.arange(len(texts), 0, -1.0), features, np.array(ids)
    )


def test_the_same_text_from_two_links_is_one_candidate_with_both_features():
    ranker = LearnedRanker(LABELS, PAIRS, None)
    exact = batch(["rose garden", "rose bush"], Source.EXACT, [1, 0], MODEL_LOG_SCORE=[-1.0, -2.0])
    made = batch(["rose garden", "rose gardens"], Source.GENERATED, [-1, -1], LM_LOGPROB=[-0.5, -3.0])
    texts, sources, X, _, _ = ranker.features(Request("rose g", "garden", 10, 0, 2), [exact, made])
    assert texts == ["rose garden", "rose bush", "rose gardens"]
    assert sources == [Source.EXACT, Source.EXACT, Source.GENERATED]
    garden = X[0]
    assert garden[Feature.FROM_EXACT] == garden[Feature.FROM_GENERATED] == 1.0
    assert garden[Feature.MODEL_LOG_SCORE] == -1.0 and garden[Feature.LM_LOGPROB] == -0.5
    assert garden[Feature.IS_LABEL] == 1.0 and garden[Feature.LOG_COUNT] == np.float32(np.log1p(2))
    assert garden[Feature.PAIR_LOG_COUNT] == np.float32(np.log1p(2)) and X[1, Feature.PAIR_LOG_COUNT] == 0
    assert X[2, Feature.IS_LABEL] == 0.0 and list(X[:, Feature.CHARS_ADDED]) == [5, 3, 6]


def test_a_generated_text_that_is_a_logged_query_gets_its_count():
    ranker = LearnedRanker(LABELS, None, None)
    texts, _, X, _, _ = ranker.features(
        Request("ro", "", 10, 0, 3), [batch(["roses"], Source.GENERATED, [-1])]
    )
    assert X[0, Feature.IS_LABEL] == 1.0 and X[0, Feature.LOG_COUNT] == np.float32(np.log1p(1))


def test_past_the_last_logged_query_only_a_text_after_a_head_can_be_one():
    """With no label starting with the typed text, a made text that starts with it is no label;
    one made after a head of the typed text (a corrected tail) still may be."""
    ranker = LearnedRanker(LABELS, None, None)
    made = batch(["roses xyz", "roses"], Source.GENERATED, [-1, -1])
    texts, _, X, _, _ = ranker.features(Request("roses x", "", 10, 3, 3), [made])
    assert texts == ["roses xyz", "roses"]
    assert X[0, Feature.IS_LABEL] == 0.0 and X[1, Feature.IS_LABEL] == 1.0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from(["rose bush", "rose garden", "roses", "rose hips"]), min_size=1, max_size=12))
def test_every_text_is_kept_once_in_first_seen_order(texts):
    ranker = LearnedRanker(LABELS, None, None)
    texts_out, _, X, _, _ = ranker.features(
        Request("rose", "", 10, 0, 3), [batch(texts, Source.GENERATED, [-1] * len(texts))]
    )
    assert texts_out == list(dict.fromkeys(texts)) and X.shape == (len(texts_out), len(Feature))


def test_spelling_variants_are_one_candidate_in_their_most_popular_spelling():
    labels = LabelSet(["House plants", "house plants?", "house plants"], [1, 2, 9])
    ranker = LearnedRanker(labels, None, None, fold_variants=True)
    found = batch(
        ["house plants?", "House plants", "house plants", "house music"], Source.EXACT, [1, 0, 2, -1]
    )
    found.features[:, Feature.LOG_COUNT] = np.log1p([2, 1, 9, 0])
    texts, _, _, _, _ = ranker.features(Request("house", "", 10, 0, 3), [found])
    assert texts == ["house plants", "house music"]


def test_a_candidate_the_person_submitted_gets_their_count_and_recency_exact_or_corrected():
    ranker = LearnedRanker(LABELS, None, None)
    history = {"rose garden": (3, 1.0), "roses": (1, 0.0), "tulips": (5, 0.0)}
    found = batch(["rose garden", "rose bush"], Source.EXACT, [1, 0])
    corrected = batch(["roses"], Source.FUZZY, [2])
    for typed in ("rose", "rise"):  # what the person typed starts every candidate, or none
        texts, _, X, _, _ = ranker.features(Request(typed, "", 10, 0, 3, history), [found, corrected])
        assert texts == ["rose garden", "rose bush", "roses"]
        assert X[:, Feature.HISTORY_LOG_COUNT].tolist() == pytest.approx([np.log1p(3), 0.0, np.log1p(1)])
        assert X[:, Feature.HISTORY_RECENCY].tolist() == pytest.approx([0.5, 0.0, 1.0])
