"""One-edit reformulations of the previous query: what a person rephrasing gets offered."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from autocomplete.candidates import NOT_A_LABEL, Feature, Request, Source
from autocomplete.generation import Generator
from autocomplete.reformulations import Reformulations, edits
from indexer.labels import LabelSet
from indexer.language import WordLanguageModel

PREVIOUS = "cheap flights to paris"


def no_words(done, partial, exclude):
    return []


def test_every_edit_starts_with_the_typed_text_and_is_never_the_previous_query():
    for typed in ["c", "cheap", "cheap f", "f", "t", "p", "cheap flights to paris", "cheap flights to p"]:
        for text, *_ in edits(PREVIOUS, typed, no_words):
            assert text.startswith(typed) and text != PREVIOUS


def test_words_left_out_keep_the_order_of_the_previous_query():
    texts = {text: dropped for text, dropped, added, _ in edits(PREVIOUS, "f", no_words)}
    assert texts == {"flights": 3, "flights to": 2, "flights to paris": 1}
    assert ("cheap flights paris", 1, 0, 0.0) in edits(PREVIOUS, "cheap fl", no_words)


def test_a_typed_new_word_replaces_or_goes_before_the_word_it_differs_from():
    made = {text: (dropped, added) for text, dropped, added, _ in edits(PREVIOUS, "cheap hotels ", no_words)}
    assert made == {"cheap hotels to paris": (1, 1), "cheap hotels flights to paris": (0, 1)}


def test_an_unfinished_new_word_is_completed_and_the_rest_carries_over():
    def words(done, partial, exclude):
        assert done == ["cheap", "flights", "to"] and partial == "r" and exclude == "paris"
        return [("rome", -1.0)]

    made = {text: logp for text, _, _, logp in edits(PREVIOUS, "cheap flights to r", words)}
    assert made == {"cheap flights to rome": -1.0, "cheap flights to rome paris": -1.0}
    assert edits(PREVIOUS, "cheap flights to r", None) == []  # no language model: no new word


def test_the_link_ranks_edits_by_the_language_model_and_marks_them():
    queries = ["cheap hotels to paris", "cheap hotels", "hotels to paris", "cheap flights to rome"] * 3
    generator = Generator(WordLanguageModel(order=3).fit(queries))
    link = Reformulations(generator, n=3, words=2)
    batch = link.generate(Request("cheap h", PREVIOUS, 10, 0, 0), [])
    assert batch is not None and len(batch) <= 3
    assert batch.texts[0] == "cheap hotels to paris"  # the replacement the log knows best
    assert set(batch.sources) == {Source.REFORMULATED}
    assert batch.features[0, Feature.REFORM_ADDED] == 1 and batch.features[0, Feature.REFORM_DROPPED] == 1
    assert (batch.features[:, Feature.LM_LOGPROB] < 0).all()
    assert list(batch.scores) == sorted(batch.scores, reverse=True)


def test_a_drop_that_is_a_logged_query_carries_its_label_id_and_the_others_say_they_are_none():
    labels = LabelSet(["flights to paris", "paris"], [4, 9])
    batch = Reformulations(None, n=10, labels=labels).generate(Request("f", PREVIOUS, 10, 0, 1), [])
    ids = dict(zip(batch.texts, batch.label_ids.tolist()))
    assert ids == {
        "flights": NOT_A_LABEL,
        "flights to": NOT_A_LABEL,
        "flights to paris": labels.id_of("flights to paris"),
    }
    without = Reformulations(None, n=10).generate(Request("f", PREVIOUS, 10, 0, 1), [])
    assert without.label_ids.tolist() == [-1, -1, -1]  # left to the ranking step to look up


def test_nothing_without_a_previous_query_or_typed_text():
    link = Reformulations(None, n=10)
    assert link.generate(Request("c", "", 10, 0, 0), []) is None
    assert link.generate(Request("", PREVIOUS, 10, 0, 0), []) is None
    batch = link.generate(Request("p", PREVIOUS, 10, 0, 0), [])  # no language model: drops only
    assert batch.texts == ["paris"]


@settings(max_examples=300, deadline=None)
@given(
    previous=st.lists(st.sampled_from(["a", "ab", "b", "ba", "c"]), min_size=1, max_size=6).map(" ".join),
    typed=st.text(st.sampled_from(list("abc ")), max_size=7).map(lambda t: " ".join(t.split(" ")).lstrip()),
)
def test_every_span_kept_or_left_out_that_starts_with_the_typed_text_is_offered(previous, typed):
    words = previous.split(" ")
    n = len(words)
    expected = {" ".join(words[i:j]) for i in range(n) for j in range(i + 1, n + 1)}
    expected |= {" ".join(words[:i] + words[j:]) for i in range(1, n) for j in range(i + 1, n + 1)}
    expected = {t for t in expected if t.startswith(typed) and t != previous}
    made = {text for text, _, added, _ in edits(previous, typed, no_words) if added == 0}
    assert made == expected
