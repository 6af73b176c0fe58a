"""Word links: which words of a next query go with which words of the previous one, over people."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.errors import ModelFileError
from indexer.labels import LabelSet
from indexer.wordlinks import WordLinks, merged_links

LABELS = LabelSet(
    ["garden seeds", "garden tools", "grass seed", "pizza near me", "plants care", "pizza dough"],
    [5, 4, 3, 9, 2, 6],
)
# many people go from a plants query to a garden query; one person once from plants to pizza
PAIRS = [
    ("house plants", "garden seeds", "u1"),
    ("plants indoor", "garden tools", "u2"),
    ("plants", "garden seeds", "u3"),
    ("house plants", "pizza near me", "u4"),
    ("pizza hut", "pizza dough", "u5"),
    ("pizza", "pizza near me", "u6"),
    ("weather", "grass seed", "u7"),
]


def fitted(**kwargs) -> WordLinks:
    prev, nxt, users = zip(*PAIRS)
    return WordLinks(**kwargs).fit(prev, nxt, LABELS, users)


def test_a_word_links_to_the_words_that_followed_it_for_many_people():
    links = fitted(min_pairs=2)
    ids, lift, prob = links.linked(links.word_ids("house plants"))
    words = {links.vocab_.restore_key(int(i)): (float(li), float(p)) for i, li, p in zip(ids, lift, prob)}
    assert "garden" in words and words["garden"][0] > 0
    assert words["garden"][1] == pytest.approx(3 / 4)  # 3 of the 4 pairs after "plants" hold "garden"
    assert "pizza" not in words  # once only: under min_pairs


def test_a_link_needs_the_privacy_floor_of_distinct_people():
    prev, nxt, _ = zip(*PAIRS)
    one_person = ["u1"] * len(PAIRS)
    links = WordLinks(min_pairs=2, min_users=2).fit(prev, nxt, LABELS, one_person)
    assert len(links.linked(links.word_ids("plants"))[0]) == 0
    assert len(fitted(min_pairs=2, min_users=2).linked(links.word_ids("plants"))[0]) > 0


def test_labels_of_a_prefix_range_holding_a_word():
    links = fitted()
    lo, hi = 0, len(LABELS)
    seeds = links.labels_with(int(links.vocab_["garden"]), lo, hi)
    assert LABELS.texts_of(seeds) == ["garden seeds", "garden tools"]
    p_lo = LABELS.id_of("pizza dough")
    assert LABELS.texts_of(links.labels_with(int(links.vocab_["pizza"]), p_lo, p_lo + 1)) == ["pizza dough"]


def test_rare_words_weigh_more():
    links = fitted()
    assert links.idf_[links.vocab_["care"]] > links.idf_[links.vocab_["garden"]]


def test_saved_links_load_the_same_and_damage_is_refused(tmp_path):
    links = fitted()
    links.save(tmp_path / "links")
    loaded = WordLinks.load(tmp_path / "links", len(LABELS))
    for name in WordLinks.ARRAYS:
        np.testing.assert_array_equal(getattr(loaded, f"{name}_"), getattr(links, f"{name}_"))
    np.save(tmp_path / "links" / "lift.npy", np.zeros(1, dtype=np.float32))
    with pytest.raises(ModelFileError, match="links"):
        WordLinks.load(tmp_path / "links", len(LABELS))


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 6), st.floats(0, 5), st.floats(0, 1)), min_size=1, max_size=30),
    st.data(),
)
def test_the_links_of_several_words_merge_to_each_words_best_lift_and_probability(links, data):
    words = np.array([w for w, _, _ in links], dtype=np.int32)
    lift = np.array([x for _, x, _ in links], dtype=np.float32)
    prob = np.array([p for _, _, p in links], dtype=np.float32)
    cut = sorted(data.draw(st.lists(st.integers(0, len(links)), min_size=2, max_size=5)))
    starts, ends = np.array(cut[:-1], dtype=np.int64), np.array(cut[1:], dtype=np.int64)
    ids, best_lift, best_prob = merged_links(starts, ends, words, lift, prob)
    rows = [r for a, b in zip(cut[:-1], cut[1:]) for r in range(a, b)]
    expected = sorted({int(words[r]) for r in rows})
    assert ids.tolist() == expected
    for i, w in enumerate(expected):
        assert best_lift[i] == max(lift[r] for r in rows if words[r] == w)
        assert best_prob[i] == max(prob[r] for r in rows if words[r] == w)
