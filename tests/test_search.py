from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from autocomplete.search import BeamSearcher, warm_up
from indexer.labels import LabelSet, encode, prefix_range


def build_tree(labels: list[str], trie_depth: int, leaf_size: int, seed: int) -> dict[str, np.ndarray]:
    """A hybrid tree in the documented array layout, built plainly: trie layers keyed by label[:d]
    (a label shorter than the trie ends under its own trie node), then random halving until a cluster
    holds at most ``leaf_size`` labels, then one node per label; numbered breadth-first."""
    rng = random.Random(seed)

    def clusters(ids: list[int]) -> dict:
        if len(ids) <= leaf_size:
            return {"label": -1, "children": [{"label": j, "children": []} for j in ids]}
        ids = ids[:]
        rng.shuffle(ids)
        half = len(ids) // 2
        return {"label": -1, "children": [clusters(sorted(ids[:half])), clusters(sorted(ids[half:]))]}

    def trie(ids: list[int], depth: int) -> dict:
        if depth == trie_depth:
            return clusters(ids)
        children = [{"label": j, "children": []} for j in ids if len(labels[j]) == depth]
        groups: dict[str, list[int]] = {}
        for j in ids:
            if len(labels[j]) > depth:
                groups.setdefault(labels[j][depth], []).append(j)
        children += [trie(groups[c], depth + 1) for c in sorted(groups)]
        return {"label": -1, "children": children}

    root = trie(list(range(len(labels))), 0)
    order, layers, parents = [root], [0], [-1]
    child_ptr = [1]
    i = 0
    while i < len(order):
        node = order[i]
        for child in node["children"]:
            order.append(child)
            layers.append(layers[i] + 1)
            parents.append(i)
        child_ptr.append(child_ptr[-1] + len(node["children"]))
        i += 1
    node_label = np.array([n["label"] for n in order], dtype=np.int32)
    label_node = np.empty(len(labels), dtype=np.int32)
    label_node[node_label[node_label >= 0]] = np.flatnonzero(node_label >= 0)
    # the labels under each node as one slice of a depth-first label order
    number = {id(node): v for v, node in enumerate(order)}
    label_order: list[int] = []
    node_lo, node_hi = np.zeros(len(order), dtype=np.int32), np.zeros(len(order), dtype=np.int32)

    def slices(node: dict) -> None:
        node_lo[number[id(node)]] = len(label_order)
        if node["label"] >= 0:
            label_order.append(node["label"])
        for child in node["children"]:
            slices(child)
        node_hi[number[id(node)]] = len(label_order)

    slices(root)
    return {
        "child_ptr": np.array(child_ptr, dtype=np.int64),
        "parent": np.array(parents, dtype=np.int32),
        "node_layer": np.array(layers, dtype=np.int32),
        "node_label": node_label,
        "label_node": label_node,
        "node_lo": node_lo,
        "node_hi": node_hi,
        "label_order": np.array(label_order, dtype=np.int32),
    }


def l3_hinge(x: np.ndarray) -> np.ndarray:
    return np.exp(-(np.maximum(0.0, 1.0 - x) ** 3))


def exhaustive_path_scores(
    tree: dict[str, np.ndarray], weights: sp.csc_matrix, query: np.ndarray
) -> np.ndarray:
    """Every label's product of l3-hinge node scores along its whole root-to-label path."""
    node_scores = l3_hinge(weights.T.astype(np.float64) @ query)
    out = np.empty(len(tree["label_node"]))
    for label, v in enumerate(tree["label_node"]):
        score = 1.0
        while v != 0:
            score *= node_scores[v]
            v = tree["parent"][v]
        out[label] = score
    return out


def random_labels(n: int, seed: int, alphabet: str = "abcd", max_len: int = 6) -> list[str]:
    rng = random.Random(seed)
    found: set[str] = set()
    while len(found) < n:
        found.add("".join(rng.choice(alphabet) for _ in range(rng.randint(1, max_len))))
    return sorted(found)


N_FEATURES = 40


def random_model(
    n_nodes: int, seed: int, unscored: np.ndarray | None = None
) -> tuple[sp.csc_matrix, np.ndarray, np.ndarray]:
    """Random weights; the root and the ``unscored`` nodes have no scorer."""
    rng = np.random.default_rng(seed)
    weights = sp.random(N_FEATURES, n_nodes, density=0.3, format="csc", random_state=rng, dtype=np.float32)
    weights.data = rng.normal(0.0, 0.6, size=weights.nnz).astype(np.float32)
    for v in [0, *([] if unscored is None else unscored)]:
        weights.data[weights.indptr[v] : weights.indptr[v + 1]] = 0
    weights.eliminate_zeros()
    q_idx = np.sort(rng.choice(N_FEATURES, size=12, replace=False)).astype(np.int32)
    q_val = rng.uniform(0.1, 1.0, size=12).astype(np.float32)
    return weights, q_idx, q_val


LABELS = random_labels(150, seed=1)
LABEL_SET = LabelSet(LABELS)


def make_searcher(trie_depth: int, leaf_size: int = 4, seed: int = 0):
    tree = build_tree(LABELS, trie_depth, leaf_size, seed)
    # as trained: below the root, the first trie layer has no scorers either (indexer.tree)
    first_trie_layer = np.flatnonzero(tree["node_layer"] == 1) if trie_depth >= 1 else None
    weights, q_idx, q_val = random_model(len(tree["parent"]), seed, first_trie_layer)
    searcher = BeamSearcher(weights, trie_depth=trie_depth, **tree)
    return searcher, tree, weights, q_idx, q_val


@pytest.mark.parametrize("trie_depth", [0, 1, 2, 7])
@pytest.mark.parametrize("prefix", ["", "a", "ab", "abc", "dcb", "b", "cad"])
def test_full_beam_equals_exhaustive_top_k(trie_depth, prefix):
    searcher, tree, weights, q_idx, q_val = make_searcher(trie_depth, seed=trie_depth)
    query = np.zeros(N_FEATURES)
    query[q_idx] = q_val
    reference = exhaustive_path_scores(tree, weights, query)
    lo, hi = prefix_range(LABEL_SET.indptr, LABEL_SET.chars, encode(prefix))
    assert hi > lo
    k = 8
    labels, scores = searcher.search(q_idx, q_val, lo, hi, len(prefix), beam=searcher.n_nodes, k=k)
    expected = np.sort(reference[lo:hi])[::-1][:k]
    assert len(labels) == min(k, hi - lo)
    np.testing.assert_allclose(reference[labels], expected, rtol=1e-5)
    # scores skip the nodes the prefix decides, which all candidates share: a constant factor
    ratio = reference[labels] / scores
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-5)
    assert np.all(np.diff(scores) <= 0)


@pytest.mark.parametrize("query_size", [1, 5, 30])
@pytest.mark.parametrize(("trie_depth", "prefix"), [(0, ""), (1, "b"), (2, "abc")])
def test_long_columns_score_like_exhaustive_scoring(trie_depth, prefix, query_size):
    """Columns much longer than the query are searched for its features, not scanned: same scores.
    Queries of 2+ features hold the first and the last one, where a search runs off a column's ends."""
    tree = build_tree(LABELS, trie_depth, 4, seed=7)
    rng = np.random.default_rng(query_size)
    n_features = 3000
    weights = sp.random(
        n_features, len(tree["parent"]), density=0.2, format="csc", random_state=rng, dtype=np.float32
    )
    weights.data = rng.normal(0.0, 0.05, size=weights.nnz).astype(np.float32)
    inner = rng.choice(np.arange(1, n_features - 1), size=max(query_size - 2, 0), replace=False)
    q_idx = np.sort(np.concatenate(([0], inner, [n_features - 1])))[:query_size].astype(np.int32)
    q_val = rng.uniform(0.5, 3.0, size=len(q_idx)).astype(np.float32)
    query = np.zeros(n_features)
    query[q_idx] = q_val
    reference = exhaustive_path_scores(tree, weights, query)
    searcher = BeamSearcher(weights, trie_depth=trie_depth, **tree)
    lo, hi = prefix_range(LABEL_SET.indptr, LABEL_SET.chars, encode(prefix))
    labels, scores = searcher.search(q_idx, q_val, lo, hi, len(prefix), beam=searcher.n_nodes, k=hi - lo)
    assert sorted(labels.tolist()) == list(range(lo, hi))
    ratio = reference[labels] / scores
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-5)


@pytest.mark.parametrize(("trie_depth", "prefix"), [(0, ""), (0, "a"), (2, "a"), (2, "abc"), (1, "bd")])
def test_narrow_beam_scores_are_true_path_scores(trie_depth, prefix):
    searcher, tree, weights, q_idx, q_val = make_searcher(trie_depth, seed=5)
    lo, hi = prefix_range(LABEL_SET.indptr, LABEL_SET.chars, encode(prefix))
    every, every_scores = searcher.search(q_idx, q_val, lo, hi, len(prefix), beam=searcher.n_nodes, k=hi - lo)
    score_of = dict(zip(every.tolist(), every_scores.tolist(), strict=True))
    narrow, narrow_scores = searcher.search(q_idx, q_val, lo, hi, len(prefix), beam=1, k=5)
    assert len(narrow) == min(5, hi - lo) and len(set(narrow.tolist())) == len(narrow)
    np.testing.assert_allclose(narrow_scores, [score_of[j] for j in narrow.tolist()], rtol=1e-6)
    assert np.all(np.diff(narrow_scores) <= 0)


def reference_beam(tree, node_scores, lo, hi, prefix_len, trie_depth, beam) -> dict[int, float]:
    """The documented semantics, plainly: start on layer min(len(prefix), trie_depth) above the
    matches (an empty prefix above a trie: at every node of the first layer, which has no scorer),
    only nodes holding a match enter the beam, top ``beam`` per layer; no widening."""
    parent, child_ptr, node_label = tree["parent"], tree["child_ptr"], tree["node_label"]
    start = tree["label_node"][lo]
    while tree["node_layer"][start] > min(prefix_len, trie_depth):
        start = parent[start]
    allowed = set()
    for label in range(lo, hi):
        v = tree["label_node"][label]
        while v != start:
            allowed.add(v)
            v = parent[v]
    found: dict[int, float] = {}
    layer = [(1.0, start)]
    if prefix_len == 0 and trie_depth >= 1:
        layer = [(1.0, c) for c in range(child_ptr[start], child_ptr[start + 1])]
    while layer:
        following = []
        for score, v in layer:
            for c in range(child_ptr[v], child_ptr[v + 1]):
                if c in allowed:
                    if node_label[c] >= 0:
                        found[int(node_label[c])] = score * node_scores[c]
                    else:
                        following.append((score * node_scores[c], c))
        layer = sorted(following, reverse=True)[:beam]
    return found


@pytest.mark.parametrize("beam", [1, 2, 3])
@pytest.mark.parametrize(
    ("trie_depth", "prefix"),
    [(0, ""), (0, "b"), (0, "ab"), (1, "c"), (1, "da"), (2, "ab"), (2, "abc"), (3, "d")],
)
def test_narrow_beam_follows_the_reference_beam_search(beam, trie_depth, prefix):
    searcher, tree, weights, q_idx, q_val = make_searcher(trie_depth, leaf_size=3, seed=11 + beam)
    query = np.zeros(N_FEATURES)
    query[q_idx] = q_val
    node_scores = l3_hinge(weights.T.astype(np.float64) @ query)
    lo, hi = prefix_range(LABEL_SET.indptr, LABEL_SET.chars, encode(prefix))
    found = reference_beam(tree, node_scores, lo, hi, len(prefix), trie_depth, beam)
    k = min(len(found), 6)
    expected = sorted(found, key=lambda j: (-found[j], j))[:k]
    labels, scores = searcher.search(q_idx, q_val, lo, hi, len(prefix), beam=beam, k=k)
    assert labels.tolist() == expected
    np.testing.assert_allclose(scores, [found[j] for j in expected], rtol=1e-5)


@pytest.mark.parametrize("trie_depth", [0, 1, 2])
def test_every_prefix_follows_the_reference_beam_search(trie_depth):
    """All prefixes up to 3 letters: matches under the start node that are all, many (nodes scanned)
    or few (nodes marked) of its labels."""
    searcher, tree, weights, q_idx, q_val = make_searcher(trie_depth, leaf_size=3, seed=21)
    query = np.zeros(N_FEATURES)
    query[q_idx] = q_val
    node_scores = l3_hinge(weights.T.astype(np.float64) @ query)
    for prefix in ["".join(p) for n in range(4) for p in itertools.product("abcd", repeat=n)]:
        lo, hi = prefix_range(LABEL_SET.indptr, LABEL_SET.chars, encode(prefix))
        if lo == hi:
            continue
        found = reference_beam(tree, node_scores, lo, hi, len(prefix), trie_depth, 2)
        expected = sorted(found, key=lambda j: (-found[j], j))[:5]
        labels, _ = searcher.search(q_idx, q_val, lo, hi, len(prefix), beam=2, k=len(expected))
        assert labels.tolist() == expected, prefix


QUERY = random_model(2, seed=9)[1:]
SEARCHERS = {depth: make_searcher(depth, leaf_size=3, seed=depth)[0] for depth in (0, 1, 3)}


@settings(max_examples=200, deadline=None)
@given(
    trie_depth=st.sampled_from(sorted(SEARCHERS)),
    prefix=st.text(alphabet="abcde", max_size=5),
    beam=st.integers(1, 4),
    k=st.integers(1, 40),
)
def test_every_answer_starts_with_the_prefix_and_is_never_short(trie_depth, prefix, beam, k):
    searcher = SEARCHERS[trie_depth]
    q_idx, q_val = QUERY
    lo, hi = prefix_range(LABEL_SET.indptr, LABEL_SET.chars, encode(prefix))
    labels, scores = searcher.search(q_idx, q_val, lo, hi, len(prefix), beam=beam, k=k)
    texts = [LABELS[j] for j in labels]
    assert all(t.startswith(prefix) for t in texts)
    assert len(labels) == min(k, sum(label.startswith(prefix) for label in LABELS))
    assert len(set(labels.tolist())) == len(labels)
    assert np.all(np.diff(scores) <= 0) and np.all(scores >= 0)  # float32 path products may underflow to 0


def test_no_matching_label_gives_an_empty_answer():
    searcher = SEARCHERS[1]
    lo, hi = prefix_range(LABEL_SET.indptr, LABEL_SET.chars, encode("zz"))
    labels, scores = searcher.search(np.array([0]), np.array([1.0]), lo, hi, 2)
    assert lo == hi and labels.size == 0 and scores.size == 0


@pytest.mark.parametrize("first_stamp", [0, np.iinfo(np.int32).max - 3])
def test_scratch_is_left_clean_between_searches(first_stamp):
    searcher, _, _, q_idx, q_val = make_searcher(1, seed=3)
    searcher._scratch()
    searcher._local.stamp = first_stamp  # near the top: the stamps wrap around during the calls
    calls = [
        ("abc", q_idx, q_val),
        ("b", q_idx[:3], q_val[:3]),
        ("", q_idx[5:], q_val[5:]),
        ("dd", q_idx, q_val),
    ]
    for prefix, idx, val in calls + calls:
        lo, hi = prefix_range(LABEL_SET.indptr, LABEL_SET.chars, encode(prefix))
        got = searcher.search(idx, val, lo, hi, len(prefix), beam=2, k=6)
        expected = make_searcher(1, seed=3)[0].search(idx, val, lo, hi, len(prefix), beam=2, k=6)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
    dense, bits, _, _ = searcher._scratch()
    assert not dense.any() and not bits.any()


def test_memory_mapped_model_arrays_are_accepted(tmp_path):
    searcher, tree, weights, q_idx, q_val = make_searcher(2, seed=4)
    mapped = {}
    for name, array in tree.items():
        np.save(tmp_path / f"{name}.npy", array)
        mapped[name] = np.load(tmp_path / f"{name}.npy", mmap_mode="r")
    for name in ("indptr", "indices", "data"):
        np.save(tmp_path / f"w_{name}.npy", getattr(weights, name))
    w = sp.csc_matrix(
        tuple(np.load(tmp_path / f"w_{n}.npy", mmap_mode="r") for n in ("data", "indices", "indptr")),
        shape=weights.shape,
    )
    from_disk = BeamSearcher(w, trie_depth=2, **mapped)
    lo, hi = prefix_range(LABEL_SET.indptr, LABEL_SET.chars, encode("c"))
    np.testing.assert_array_equal(
        from_disk.search(q_idx, q_val, lo, hi, 1)[0], searcher.search(q_idx, q_val, lo, hi, 1)[0]
    )


def test_misuse_is_refused_with_a_reason():
    searcher = SEARCHERS[0]
    with pytest.raises(ValueError, match="outside the weight matrix"):
        searcher.search(np.array([N_FEATURES]), np.array([1.0]), 0, 3, 0)
    with pytest.raises(ValueError, match="strictly increasing"):
        searcher.search(np.array([3, 1]), np.array([1.0, 1.0]), 0, 3, 0)
    with pytest.raises(ValueError, match="label range"):
        searcher.search(np.array([0]), np.array([1.0]), 5, len(LABELS) + 1, 0)
    tree = build_tree(LABELS, 1, 4, 0)
    with pytest.raises(ValueError, match="one column per node"):
        BeamSearcher(sp.csc_matrix((N_FEATURES, 3), dtype=np.float32), trie_depth=1, **tree)
    tree["label_order"] = tree["label_order"][:-1]
    with pytest.raises(ValueError, match="label_order"):
        BeamSearcher(random_model(len(tree["parent"]), 0)[0], trie_depth=1, **tree)


def test_warm_up_runs():
    warm_up()
    SEARCHERS[1].warm_up()
