import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.normalize import normalize_prefix
from indexer.typos import KINDS, QWERTY_NEIGHBOURS, WEIGHTS, apply_typo, typo_examples
from tests.edit_distance import osa_distance

WORDS = st.text(st.sampled_from(list("abcdefghijklmnopqrstuvwxyz0123456789")), min_size=1, max_size=7)
PREFIXES = st.lists(WORDS, min_size=1, max_size=3).map(" ".join).filter(lambda s: len(s) >= 3)


def edit_kind(a: str, b: str) -> str:
    """Which single edit turns ``a`` into ``b``, read off the strings themselves."""
    if len(b) == len(a) - 1:
        return "deletion"
    if len(b) == len(a) + 1:
        return "insertion"
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    return "substitution" if len(diff) == 1 else "transposition"


@settings(max_examples=300, deadline=None)
@given(prefix=PREFIXES, seed=st.integers(0, 2**32), variant=st.sampled_from(["A", "B"]))
def test_every_typo_is_one_edit_of_the_kind_it_names_and_survives_normalization(prefix, seed, variant):
    typo, kind = apply_typo(prefix, random.Random(seed), variant)
    assert osa_distance(prefix, typo) == 1
    assert edit_kind(prefix, typo) == kind
    assert normalize_prefix(typo, "aol") == typo
    if variant == "A":
        assert typo[0] == prefix[0]


@settings(max_examples=200, deadline=None)
@given(prefix=PREFIXES, seed=st.integers(0, 2**32))
def test_substitutions_and_insertions_use_keys_next_to_the_edited_place(prefix, seed):
    typo, kind = apply_typo(prefix, random.Random(seed), "B")
    if kind == "substitution":
        (i,) = [i for i in range(len(prefix)) if prefix[i] != typo[i]]
        assert typo[i] in QWERTY_NEIGHBOURS[prefix[i]]
    elif kind == "insertion":
        places = [(gap, typo[gap]) for gap in range(len(typo)) if typo[:gap] + typo[gap + 1 :] == prefix]
        assert any(
            key in QWERTY_NEIGHBOURS[c] for gap, key in places for c in prefix[max(gap - 1, 0) : gap + 1]
        )


def test_the_keyboard_map_is_symmetric_and_knows_the_benchmark_alphabet():
    assert set(QWERTY_NEIGHBOURS) == set("abcdefghijklmnopqrstuvwxyz0123456789 ")
    for key, neighbours in QWERTY_NEIGHBOURS.items():
        assert key not in neighbours
        assert all(key in QWERTY_NEIGHBOURS[n] for n in neighbours)
    assert QWERTY_NEIGHBOURS["s"] == "adewxz"
    assert QWERTY_NEIGHBOURS["q"] == "12aw"
    assert set(QWERTY_NEIGHBOURS[" "]) == set("cvbnm")


def test_edit_kinds_follow_the_model_proportions():
    rng = random.Random(1)
    words = ["rose bush", "cheap flights", "guitar chords", "hotels in new york", "tomato seedlings"]
    draws = 20000
    kinds = Counter(apply_typo(rng.choice(words), rng, rng.choice("AB"))[1] for _ in range(draws))
    for kind, weight in zip(KINDS, WEIGHTS):
        # binomial standard deviation at 20000 draws is at most 0.0035; allow about 4 of them
        assert abs(kinds[kind] / draws - weight) < 0.015, (kind, kinds)


def test_variant_b_touches_the_first_character_sometimes_and_a_never():
    rng = random.Random(0)
    b = [apply_typo("garden hose", rng, "B")[0] for _ in range(2000)]
    a = [apply_typo("garden hose", rng, "A")[0] for _ in range(2000)]
    assert 0.02 < sum(t[0] != "g" for t in b) / len(b) < 0.3
    assert all(t[0] == "g" for t in a)


def test_short_prefixes_are_left_alone_and_draw_nothing():
    rng = random.Random(0)
    assert apply_typo("ro", rng, "A") == ("ro", "none")
    assert apply_typo("", rng, "B") == ("", "none")
    assert rng.random() == random.Random(0).random()


def test_a_prefix_with_no_possible_edit_of_a_kind_gets_another_kind():
    # variant A cannot transpose "bb" (no change) nor touch the "é"; the other three kinds remain
    for seed in range(200):
        typo, kind = apply_typo("ébb", random.Random(seed), "A")
        assert kind != "transposition"
        assert osa_distance("ébb", typo) == 1 and typo[0] == "é"


def test_typo_examples_are_deterministic_in_example_order():
    examples = [
        ("", "rose bush", "rose bush pruning"),
        ("rock", "ro", "rock band"),
        ("x", "cheap", "cheap flights"),
    ]
    first, kinds = typo_examples(examples, "A")
    again, kinds_again = typo_examples(examples, "A")
    assert first == again and kinds == kinds_again
    assert first[1] == ("rock", "ro", "rock band") and kinds[1] == "none"
    assert [(p, n) for p, _, n in first] == [(p, n) for p, _, n in examples]
    # the draws follow the examples: the third example's typo is the second draw of Random(0)
    rng = random.Random(0)
    expected = [apply_typo(e[1], rng, "A") for e in examples]
    assert [(e[1], k) for e, k in zip(first, kinds)] == expected
    reseeded, _ = typo_examples(examples * 20, "A", seed=1)
    assert reseeded != typo_examples(examples * 20, "A", seed=0)[0]


def test_an_unknown_variant_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"'C'.*\('A', 'B'\)"):
        apply_typo("rose", random.Random(0), "C")
