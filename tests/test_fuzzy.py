import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autocomplete.fuzzy import (
    TOP_DEPTH,
    FuzzyParams,
    fuzzy_ranges,
    fuzzy_walk,
    top_in_ranges,
    trie_top,
    warm_up,
)
from indexer.labels import LabelSet, encode, prefix_range
from indexer.popularity import build_sparse_table
from tests.edit_distance import osa_distance

# a small alphabet makes near misses common; "é" and an astral code point check non-ASCII
ALPHABET = st.sampled_from(list("abc é") + ["\U0001d11e"])
LABELS = st.lists(st.text(ALPHABET, min_size=1, max_size=7), min_size=0, max_size=40, unique=True)
TYPED = st.text(ALPHABET, min_size=0, max_size=9)


def brute_force(labels, typed, distance, first_char_exact=True, penalty=1, enough=0):
    """label -> (cost, matched length): the cheapest non-empty prefix within ``distance`` of
    ``typed`` (the shortest such prefix), scanning every prefix of every label; two edits away
    only when fewer than ``enough`` labels are within one (if ``enough``)."""
    if not typed:
        return dict.fromkeys(labels, (0, 0))

    def best(label):
        cost, length = min((osa_distance(label[:p], typed), p) for p in range(1, len(label) + 1))
        return (cost, length) if cost <= distance else None

    def scan(group, extra):
        found = {label: v for label, v in ((q, best(q)) for q in group) if v}
        if distance == 2 and enough and sum(c <= 1 for c, _ in found.values()) >= enough:
            found = {label: (c, p) for label, (c, p) in found.items() if c <= 1}
        return {label: (c + extra, p) for label, (c, p) in found.items()}

    if not first_char_exact:
        return scan(labels, 0)
    same = scan([label for label in labels if label[0] == typed[0]], 0)
    return same or scan([label for label in labels if label[0] != typed[0]], penalty)


def per_label(label_set, result):
    """label -> (cost, matched length) read off the ranges: the cheapest range containing it."""
    texts = label_set.texts()
    out = {}
    for lo, hi, cost, length in zip(result.lo, result.hi, result.cost, result.matched_len):
        for i in range(lo, hi):
            if texts[i] not in out or (int(cost), int(length)) < out[texts[i]]:
                out[texts[i]] = (int(cost), int(length))
    return out


def walk(label_set, typed, params, depth=TOP_DEPTH):
    top_runs = trie_top(label_set.indptr, label_set.chars, depth)
    return fuzzy_ranges(label_set.indptr, label_set.chars, top_runs, typed, params)


@st.composite
def labels_and_typed(draw):
    """Random labels, and a typed text that is often a label's prefix with an edit or two."""
    labels = draw(LABELS)
    if not labels or draw(st.booleans()):
        return labels, draw(TYPED)
    typed = draw(st.sampled_from(labels))
    typed = typed[: draw(st.integers(1, len(typed)))]
    for _ in range(draw(st.integers(0, 2))):
        chars = list(typed)
        kind = draw(st.sampled_from(["substitution", "deletion", "insertion", "transposition"]))
        i = draw(st.integers(0, len(chars)))
        if kind == "transposition" and i + 1 < len(chars):
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
        elif kind == "deletion" and i < len(chars) and len(chars) > 1:
            del chars[i]
        elif kind == "insertion":
            chars.insert(i, draw(ALPHABET))
        elif i < len(chars):
            chars[i] = draw(ALPHABET)
        typed = "".join(chars)
    return labels, typed


@settings(max_examples=500, deadline=None)
@given(
    case=labels_and_typed(),
    one_typo=st.integers(2, 4),
    extra=st.integers(0, 3),
    first_char_exact=st.booleans(),
    enough=st.sampled_from([0, 0, 1, 3]),
    depth=st.sampled_from([0, 1, 2, TOP_DEPTH, 8]),
)
def test_the_trie_walk_finds_what_a_brute_force_scan_finds(
    case, one_typo, extra, first_char_exact, enough, depth
):
    """Whatever depth of the trie's top is kept as arrays (0: none, 8: past most labels)."""
    labels, typed = case
    params = FuzzyParams(
        one_typo=one_typo, two_typos=one_typo + extra, first_char_exact=first_char_exact, enough_labels=enough
    )
    label_set = LabelSet(labels)
    result = walk(label_set, typed, params, depth)
    expected = brute_force(labels, typed, params.max_distance(len(typed)), first_char_exact, enough=enough)
    assert per_label(label_set, result) == expected
    assert not result.truncated and result.nodes_visited <= params.max_nodes
    galloped = walk(label_set, typed, params, 0)  # the same ranges, and as many nodes visited
    assert all(np.array_equal(a, b) for a, b in zip(result, galloped))


@settings(max_examples=200, deadline=None)
@given(labels=LABELS, depth=st.integers(0, 6))
def test_the_trie_tops_runs_are_the_blocks_of_labels_sharing_a_prefix(labels, depth):
    label_set = LabelSet(labels)
    texts = label_set.texts()
    top = trie_top(label_set.indptr, label_set.chars, depth)
    for d in range(depth):
        starts = top.starts[top.level_ptr[d] : top.level_ptr[d + 1]].tolist()
        expected = [
            i for i, t in enumerate(texts) if len(t) > d and (i == 0 or texts[i - 1][: d + 1] != t[: d + 1])
        ]
        assert starts == expected
        assert top.points[top.level_ptr[d] : top.level_ptr[d + 1]].tolist() == [
            ord(texts[i][d]) for i in starts
        ]


@settings(max_examples=200, deadline=None)
@given(labels=LABELS, typed=TYPED.filter(bool), distance=st.integers(0, 3))
def test_reported_ranges_are_whole_trie_nodes_sorted_and_never_nested_at_equal_or_higher_cost(
    labels, typed, distance
):
    label_set = LabelSet(labels)
    texts = label_set.texts()
    top_runs = trie_top(label_set.indptr, label_set.chars)
    lo, hi, cost, length, _, _ = fuzzy_walk(
        label_set.indptr, label_set.chars, top_runs, encode(typed), distance, True, 1, 10**6, 10**6
    )
    keys = list(zip(cost.tolist(), lo.tolist()))
    assert keys == sorted(keys)
    for a, b, n in zip(lo, hi, length):
        # the range is exactly the labels starting with the matched characters
        assert (a, b) == prefix_range(label_set.indptr, label_set.chars, encode(texts[a][:n]))
    assert len(set(zip(lo.tolist(), hi.tolist()))) == len(lo)  # each range once, at its best
    for i in range(len(lo)):
        for j in range(len(lo)):
            if i != j and lo[i] <= lo[j] and hi[j] <= hi[i]:  # j inside i
                assert cost[j] < cost[i] and length[j] > length[i]


def test_a_transposition_costs_one_edit():
    label_set = LabelSet(["rose bush", "rosary", "ruse", "garden"])
    result = walk(label_set, "rsoe", FuzzyParams())
    assert per_label(label_set, result) == {"rose bush": (1, 4)}  # "rose" matched; plain Levenshtein: 2
    result = walk(label_set, "rose bsuh", FuzzyParams())
    assert per_label(label_set, result)["rose bush"] == (1, 9)


def test_the_first_character_is_kept_unless_nothing_matches_with_it():
    params = FuzzyParams()
    label_set = LabelSet(["bose speakers", "rose bush", "tiger lily"])
    assert per_label(label_set, walk(label_set, "rosw", params)) == {"rose bush": (1, 3)}
    # nothing under "t" is one edit from "tose": the second pass finds both, a typo dearer
    assert per_label(label_set, walk(label_set, "tose", params)) == {
        "bose speakers": (2, 4),
        "rose bush": (2, 4),
    }
    unrestricted = FuzzyParams(first_char_exact=False)
    assert per_label(label_set, walk(label_set, "tose", unrestricted)) == {
        "bose speakers": (1, 4),
        "rose bush": (1, 4),
    }
    penalty_two = FuzzyParams(first_char_penalty=2)
    assert set(walk(label_set, "tose", penalty_two).cost.tolist()) == {3}


def test_short_typed_texts_get_exact_prefix_matches_only():
    label_set = LabelSet(["rose bush", "ruse", "rock"])
    result = walk(label_set, "rse", FuzzyParams())
    assert len(result.lo) == 0
    result = walk(label_set, "ros", FuzzyParams())
    assert per_label(label_set, result) == {"rose bush": (0, 3)}
    assert FuzzyParams().max_distance(3) == 0
    assert FuzzyParams().max_distance(4) == FuzzyParams().max_distance(7) == 1
    assert FuzzyParams().max_distance(8) == 2


def test_the_node_bound_is_respected_and_a_cut_walk_reports_a_subset():
    rng = np.random.default_rng(0)
    letters = list("abcdefghij")
    words = {"".join(rng.choice(letters, size=rng.integers(3, 11))) for _ in range(3000)}
    for _ in range(300):  # near misses of the typed text, so that there is something to find
        word = letters[:]
        for _ in range(rng.integers(0, 4)):
            i = rng.integers(1, len(word))
            word[i] = rng.choice(letters)
        words.add("".join(word))
    label_set = LabelSet(sorted(words))
    full = walk(label_set, "abcdefghij", FuzzyParams())
    assert not full.truncated and full.nodes_visited > 200 and len(full.lo) > 5
    cut = walk(label_set, "abcdefghij", FuzzyParams(max_nodes=200))
    assert cut.truncated and cut.nodes_visited == 200
    everything = per_label(label_set, full)
    partial = per_label(label_set, cut)
    assert len(partial) < len(everything)
    assert all(everything[q][0] <= cost for q, (cost, _) in partial.items())
    # the walk goes budget by budget: a bound past what one edit needs keeps every match within one
    one_edit = walk(label_set, "abcdefghij", FuzzyParams(two_typos=11))
    assert one_edit.nodes_visited < full.nodes_visited - 100
    cut = walk(label_set, "abcdefghij", FuzzyParams(max_nodes=one_edit.nodes_visited + 50))
    assert cut.truncated
    partial = per_label(label_set, cut)
    assert {q: v for q, v in partial.items() if v[0] <= 1} == {
        q: v for q, v in everything.items() if v[0] <= 1
    }
    assert any(v[0] == 1 for v in partial.values())
    few = walk(label_set, "abcdefghij", FuzzyParams(max_ranges=3))
    assert list(zip(few.cost, few.lo, few.hi)) == list(zip(full.cost, full.lo, full.hi))[:3]


def test_an_empty_label_set_and_an_empty_typed_text():
    empty = LabelSet([])
    result = walk(empty, "rose", FuzzyParams())
    assert len(result.lo) == len(result.hi) == len(result.cost) == len(result.matched_len) == 0
    assert walk(empty, "", FuzzyParams()).lo.shape == (0,)
    label_set = LabelSet(["a", "b"])
    result = walk(label_set, "", FuzzyParams())
    assert (result.lo.tolist(), result.hi.tolist(), result.cost.tolist()) == ([0], [2], [0])


def test_a_typed_text_longer_than_every_label():
    label_set = LabelSet(["ab", "abc", "abcdef"])
    assert len(walk(label_set, "abcdefghij", FuzzyParams()).lo) == 0
    # one character more than the longest label is one deletion away from it
    assert per_label(label_set, walk(label_set, "abcdefg", FuzzyParams())) == {"abcdef": (1, 6)}


def test_non_ascii_code_points():
    params = FuzzyParams(one_typo=3)
    label_set = LabelSet(["café crème", "日本語", "日本酒", "\U0001d11e clef"])
    assert per_label(label_set, walk(label_set, "日本五", params)) == {"日本語": (1, 2), "日本酒": (1, 2)}
    assert per_label(label_set, walk(label_set, "cafè crème", params)) == {"café crème": (1, 10)}
    assert per_label(label_set, walk(label_set, "\U0001d11e lcef", params)) == {"\U0001d11e clef": (1, 6)}


def test_memory_mapped_labels_give_the_same_ranges(tmp_path):
    label_set = LabelSet(["rose bush", "rosary", "roses", "garden"], [3, 1, 2, 5])
    label_set.save(tmp_path)
    loaded = LabelSet.load(tmp_path)
    assert not loaded.chars.flags.writeable
    a, b = walk(label_set, "rodes", FuzzyParams()), walk(loaded, "rodes", FuzzyParams())
    assert all(np.array_equal(x, y) for x, y in zip(a[:4], b[:4]))
    assert len(a.lo) > 0


def test_bad_thresholds_are_refused():
    with pytest.raises(ValueError, match="one_typo"):
        FuzzyParams(one_typo=1)
    with pytest.raises(ValueError, match="two_typos"):
        FuzzyParams(one_typo=5, two_typos=4)
    with pytest.raises(ValueError, match="max_nodes"):
        FuzzyParams(max_nodes=0)


@settings(max_examples=300, deadline=None)
@given(
    counts=st.dictionaries(st.text(ALPHABET, min_size=1, max_size=6), st.integers(1, 5), max_size=40),
    typed=TYPED.filter(lambda s: len(s) >= 2),
    k=st.integers(1, 45),
    by_cost=st.booleans(),
)
def test_top_in_ranges_picks_the_most_popular_labels_of_the_union(counts, typed, k, by_cost):
    labels = list(counts)
    label_set = LabelSet(labels, [counts[q] for q in labels])
    result = walk(label_set, typed, FuzzyParams(one_typo=2, two_typos=3))
    table = build_sparse_table(label_set.counts)
    ids, cost, length = top_in_ranges(
        table, label_set.counts, result.lo, result.hi, result.cost, result.matched_len, k, by_cost
    )
    matches = per_label(label_set, result)

    def key(q):
        popularity = (-counts[q], label_set.id_of(q))
        return (matches[q][0], *popularity) if by_cost else popularity

    expected = sorted(matches, key=key)[:k]
    assert [label_set.text(i) for i in ids] == expected
    assert [(int(c), int(n)) for c, n in zip(cost, length)] == [matches[q] for q in expected]


def test_by_cost_an_exact_match_comes_before_a_more_popular_correction():
    label_set = LabelSet(["rose bush", "rosary", "roses", "ruse"], [1, 50, 2, 40])
    r = walk(label_set, "rose", FuzzyParams())
    table = build_sparse_table(label_set.counts)
    args = (table, label_set.counts, r.lo, r.hi, r.cost, r.matched_len, 3)
    ids, cost, length = top_in_ranges(*args, True)
    assert [label_set.text(i) for i in ids] == ["roses", "rose bush", "rosary"]
    assert cost.tolist() == [0, 0, 1] and length.tolist() == [4, 4, 3]
    ids, cost, _ = top_in_ranges(*args, False)
    assert [label_set.text(i) for i in ids] == ["rosary", "ruse", "roses"]
    assert cost.tolist() == [1, 1, 0]


def test_after_warm_up_a_request_on_memory_mapped_labels_compiles_nothing(tmp_path):
    LabelSet(["rose bush", "roses"], [2, 1]).save(tmp_path)
    loaded = LabelSet.load(tmp_path)
    table = build_sparse_table(np.asarray(loaded.counts))
    top_runs = trie_top(loaded.indptr, loaded.chars)
    warm_up(loaded.indptr, loaded.chars, top_runs, table, loaded.counts)
    kernels = (fuzzy_walk, top_in_ranges)
    compiled = [len(kernel.signatures) for kernel in kernels]
    r = fuzzy_ranges(loaded.indptr, loaded.chars, top_runs, "rosse", FuzzyParams())
    ids, _, _ = top_in_ranges(table, loaded.counts, r.lo, r.hi, r.cost, r.matched_len, 10, True)
    assert sorted(loaded.text(i) for i in ids) == ["rose bush", "roses"]
    assert [len(kernel.signatures) for kernel in kernels] == compiled
