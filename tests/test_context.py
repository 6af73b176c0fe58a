"""The previous query as evidence that generalizes: word overlap, word links, the related link."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from autocomplete.candidates import NOT_A_LABEL, Feature, Request, Source, empty_features
from autocomplete.context import ContextWords, SharedWords, most_counted
from autocomplete.generators import FromHistory
from autocomplete.ranking import LearnedRanker
from indexer.labels import LabelSet, encode, prefix_range
from indexer.wordlinks import WordLinks

LABELS = LabelSet(
    ["garden seeds", "garden tools", "gas prices", "grass seed", "green tea", "plants care"],
    [5, 4, 50, 3, 20, 2],
)
PAIRS = [
    ("house plants", "garden seeds", "u1"),
    ("plants indoor", "garden tools", "u2"),
    ("plants", "garden seeds", "u3"),
    ("cars", "gas prices", "u4"),
    ("tea", "green tea", "u5"),
]


def links() -> WordLinks:
    prev, nxt, users = zip(*PAIRS)
    return WordLinks(min_pairs=2).fit(prev, nxt, LABELS, users)


def request(typed: str, context: str, history=None) -> Request:
    lo, hi = prefix_range(LABELS.indptr, LABELS.chars, encode(typed))
    return Request(typed, context, 10, int(lo), int(hi), history or {})


def test_candidates_that_repeat_or_follow_the_previous_querys_words_score_higher():
    context = ContextWords(links())
    texts = ["plants care", "garden seeds", "gas prices", "plants care now"]  # the last is no label
    ids = np.array([LABELS.id_of(t) for t in texts], dtype=np.int64)
    X = empty_features(len(texts))
    context.fill(X, texts, ids, "house plants")
    share, lift = X[:, Feature.PREV_SHARE], X[:, Feature.LINK_LIFT]
    assert share[0] > 0 and share[3] > 0 and share[1] == 0 == share[2]
    assert lift[1] > 0 and lift[2] == 0  # many went from plants to garden, nobody to gas
    assert 0 < X[0, Feature.PREV_COVER] < 1  # "plants" of "house plants"


def test_a_made_text_scores_as_the_label_with_its_words_whatever_the_word_cache_holds():
    texts = ["plants care", "garden seeds", "garden garden seeds", "house plants care", "tea xyz"]
    as_labels = empty_features(2)
    ContextWords(links()).fill(
        as_labels, texts[:2], np.array([LABELS.id_of(t) for t in texts[:2]]), "house plants"
    )
    for size in (1, 3, 1 << 16):  # a cache emptied at almost every call, or never
        context = ContextWords(links(), word_cache_size=size)
        for _ in range(3):
            X = empty_features(len(texts))
            context.fill(X, texts, np.full(len(texts), -1), "house plants")
            np.testing.assert_array_equal(X[:2], as_labels)
            np.testing.assert_array_equal(X[2], as_labels[1])  # a repeated word counts once
            np.testing.assert_array_equal(X[3], as_labels[0])  # "house" is in no label: not counted
            assert X[4, Feature.PREV_SHARE] == 0
        mixed = empty_features(4)  # labels and made texts interleaved in one keystroke's pool
        ids = np.array([-1, LABELS.id_of(texts[0]), -1, LABELS.id_of(texts[1])])
        context.fill(mixed, [texts[3], texts[0], texts[2], texts[1]], ids, "house plants")
        np.testing.assert_array_equal(mixed, as_labels[[0, 0, 1, 1]])


def test_without_a_previous_query_the_columns_stay_empty():
    X = empty_features(1)
    ContextWords(links()).fill(X, ["garden seeds"], np.array([0]), "")
    assert X[0, Feature.PREV_SHARE] == 0 and X[0, Feature.LINK_LIFT] == 0


def test_the_related_link_finds_linked_labels_of_a_wide_prefix():
    related = SharedWords(ContextWords(links()), LABELS, n=3, min_idf=0.0)
    batch = related.generate(request("g", "house plants"), [])
    assert batch is not None and "garden seeds" in batch.texts
    assert set(batch.sources) == {Source.RELATED}
    assert "gas prices" not in batch.texts  # popular, but nothing links it to plants
    assert related.generate(request("g", ""), []) is None


@settings(max_examples=200, deadline=None)
@given(
    holders=st.lists(st.lists(st.integers(0, 29), max_size=12), min_size=1, max_size=5),
    counts=st.lists(st.integers(0, 4), min_size=30, max_size=30),
    bounds=st.tuples(st.integers(0, 30), st.integers(0, 30)),
    n=st.integers(1, 6),
)
def test_the_related_labels_are_the_most_counted_holders_of_any_word_in_the_range(holders, counts, bounds, n):
    rows = [sorted(set(r)) for r in holders]
    postings = np.array([i for r in rows for i in r], dtype=np.int64)
    indptr = np.cumsum([0] + [len(r) for r in rows]).astype(np.int64)
    counts = np.array(counts, dtype=np.int64)
    lo, hi = min(bounds), max(bounds)
    held = np.unique([i for r in rows for i in r if lo <= i < hi]).astype(np.int64)
    expected = held[np.argsort(-counts[held], kind="stable")][:n]
    words = np.arange(len(rows), dtype=np.int64)
    np.testing.assert_array_equal(most_counted(postings, indptr, words, counts, lo, hi, n), expected)


def test_history_proposes_the_persons_queries_of_the_prefix_most_used_and_recent_first():
    history = {"green tea": (1, 30.0), "garden tools": (4, 1.0), "pizza": (9, 0.0), "gift ideas": (2, 0.0)}
    batch = FromHistory(LABELS, n=10).generate(request("g", "", history), [])
    assert batch.texts == ["garden tools", "gift ideas", "green tea"]
    assert batch.label_ids.tolist() == [LABELS.id_of("garden tools"), NOT_A_LABEL, LABELS.id_of("green tea")]
    assert FromHistory(LABELS, n=10).generate(request("g", ""), []) is None
    ranker = LearnedRanker(LABELS, None, None)
    assert "gift ideas" in [r[0] for r in ranker.rank(request("g", "", history), [batch])]
    assert "gift ideas" not in ranker._made_ids  # a personal query is not kept by the worker's ranker


def test_history_ties_go_to_the_older_query_and_only_the_n_best_are_proposed():
    history = {"gnome": (2, 1.0), "garden tools": (1, 0.0), "goat": (3, 2.0), "gift ideas": (4, 3.0)}
    # weights 1, 1, 1, 1: in the order the person first used them ("gnome" oldest)
    batch = FromHistory(LABELS, n=3).generate(request("g", "", history), [])
    assert batch.texts == ["gnome", "garden tools", "goat"]
    assert batch.scores.tolist() == [1.0, 1.0, 1.0]


def test_after_a_previous_query_its_words_come_back_in_generated_completions():
    from autocomplete.generation import Generator
    from autocomplete.generators import Generated
    from indexer.language import WordLanguageModel

    queries = ["indoor plants", "indoor pools", "indoor pools near me", "indoor pizza oven"] * 3 + [
        "house plants"
    ]
    generated = Generated(Generator(WordLanguageModel(order=3).fit(queries), cache_weight=0.5), 1, 2)
    plain = generated.generate(request("indoor p", ""), [])
    assert plain.texts == ["indoor pools"] and not plain.features[:, Feature.LM_CACHED].any()
    mixed = generated.generate(request("indoor p", "house plants"), [])
    assert mixed.texts[0] == "indoor pools" and "indoor plants" in mixed.texts[1:]
    assert mixed.features[1:, Feature.LM_CACHED].all()


def test_a_typed_text_seen_before_gets_the_same_completions_without_running_the_language_model_again():
    from autocomplete.generation import Generator
    from autocomplete.generators import Generated
    from indexer.language import WordLanguageModel

    generator = Generator(WordLanguageModel(order=3).fit(["indoor plants", "indoor pools"] * 3))
    generated = Generated(generator, 2)
    first = generated.generate(request("indoor p", "house plants"), [])
    runs = []
    generator.generate = lambda *args, **kwargs: runs.append(args)  # type: ignore[method-assign]
    again = generated.generate(request("indoor p", "cheap flights"), [])  # another person, same text
    assert runs == [] and again.texts == first.texts
    np.testing.assert_array_equal(again.features, first.features)


def test_a_generated_text_that_is_a_logged_query_carries_its_label_id():
    from autocomplete.generation import Generator
    from autocomplete.generators import Generated
    from indexer.language import WordLanguageModel

    generator = Generator(WordLanguageModel(order=3).fit(["green tea", "green tea cups", "gas prices"] * 3))
    batch = Generated(generator, 5, labels=LABELS).generate(request("g", ""), [])
    ids = dict(zip(batch.texts, batch.label_ids.tolist()))
    assert ids["green tea"] == LABELS.id_of("green tea") and ids["gas prices"] == LABELS.id_of("gas prices")
    assert ids["green tea cups"] == NOT_A_LABEL  # made, no logged query: the ranker need not look
