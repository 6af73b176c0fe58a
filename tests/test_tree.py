from __future__ import annotations

import bisect
import itertools
import json
from pathlib import Path

import numba
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import TfidfVectorizer

from indexer.modelio import ModelFileError
from indexer.params import TreeParams
from indexer.tree import HybridTree


def make_labels(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    words = ["".join(rng.choice(list("abcdeéz"), size=rng.integers(1, 6))) for _ in range(60)]
    labels = {" ".join(rng.choice(words, size=rng.integers(1, 4))) for _ in range(n)}
    labels.update({"a", "ab", "b"})  # labels shorter than the trie depth
    return sorted(labels)


def embed(labels: list[str]) -> sp.csr_matrix:
    return TfidfVectorizer(analyzer="char", ngram_range=(1, 3), lowercase=False).fit_transform(labels).tocsr()


@pytest.fixture(scope="module")
def data() -> tuple[list[str], sp.csr_matrix]:
    labels = make_labels(400, 0)
    return labels, embed(labels)


def labels_under(tree: HybridTree, v: int) -> np.ndarray:
    return np.asarray(tree.label_order_[tree.node_lo_[v] : tree.node_hi_[v]])


def children(tree: HybridTree, v: int) -> range:
    return range(int(tree.child_ptr_[v]), int(tree.child_ptr_[v + 1]))


def check_invariants(
    tree: HybridTree, labels: list[str], trie_depth: int, branching: int, max_leaf: int
) -> None:
    n_nodes, n_labels = tree.n_nodes, len(labels)
    depth = min(trie_depth, max(len(s) for s in labels))
    assert tree.n_trie_layers_ == depth
    # breadth-first numbering, contiguous children, layers
    assert tree.parent_[0] == -1 and tree.child_ptr_[0] == 1 and tree.child_ptr_[-1] == n_nodes
    assert np.all(np.diff(tree.child_ptr_) >= 0)
    for v in range(n_nodes):
        for c in children(tree, v):
            assert tree.parent_[c] == v and tree.node_layer_[c] == tree.node_layer_[v] + 1
    assert np.all(np.diff(tree.node_layer_) >= 0)
    np.testing.assert_array_equal(
        tree.layer_ptr_, np.searchsorted(tree.node_layer_, np.arange(tree.n_layers + 1))
    )
    # every label in exactly one leaf
    is_label = tree.node_label_ >= 0
    assert sorted(tree.node_label_[is_label]) == list(range(n_labels))
    np.testing.assert_array_equal(tree.node_label_[tree.label_node_], np.arange(n_labels))
    assert sorted(tree.label_order_) == list(range(n_labels))
    for v in range(n_nodes):
        kids = children(tree, v)
        if is_label[v]:
            assert len(kids) == 0
            np.testing.assert_array_equal(labels_under(tree, v), [tree.node_label_[v]])
            continue
        assert len(kids) > 0
        # the children's slices tile the parent's slice, in order
        assert tree.node_lo_[kids[0]] == tree.node_lo_[v] and tree.node_hi_[kids[-1]] == tree.node_hi_[v]
        assert all(tree.node_hi_[a] == tree.node_lo_[a + 1] for a in kids[:-1])
        key_len = int(tree.node_key_len_[v])
        label_kids = [c for c in kids if is_label[c]]
        under = labels_under(tree, v)
        if key_len >= 0:  # trie node: exactly the labels starting with its key
            assert key_len == tree.node_layer_[v] <= depth
            key = labels[under[0]][:key_len]
            assert len(key) == key_len
            # all labels starting with the key, and no other: the id range [lo, hi)
            lo, hi = bisect.bisect_left(labels, key), bisect.bisect_left(labels, key + "\U0010ffff")
            assert all(s.startswith(key) for s in labels[lo:hi])
            np.testing.assert_array_equal(np.sort(under), np.arange(lo, hi))
            if key_len < depth:  # children: the label equal to the key (if any), then longer keys
                kid_keys = [
                    labels[tree.node_label_[c]]
                    if is_label[c]
                    else labels[labels_under(tree, c)[0]][: key_len + 1]
                    for c in kids
                ]
                assert kid_keys == sorted(set(kid_keys))
                assert all(labels[tree.node_label_[c]] == key for c in label_kids)
                assert all(tree.node_key_len_[c] == key_len + 1 for c in kids if not is_label[c])
                continue
        else:
            assert tree.node_layer_[v] > depth
        # a deepest trie node or a k-means node: leaf cluster, or split in balanced children
        if label_kids:
            assert len(label_kids) == len(kids) == len(under) <= max_leaf
            assert list(under) == sorted(under)
        else:
            assert len(under) > max_leaf
            assert 2 <= len(kids) <= branching
            sizes = [tree.node_hi_[c] - tree.node_lo_[c] for c in kids]
            assert max(sizes) - min(sizes) <= 1
            assert all(tree.node_key_len_[c] == -1 for c in kids)


@pytest.mark.parametrize("trie_depth", [0, 1, 3, 1000])
@pytest.mark.parametrize("branching, max_leaf", [(2, 20), (3, 7), (2, 1)])
def test_structure_invariants(data, trie_depth: int, branching: int, max_leaf: int) -> None:
    labels, x = data
    tree = HybridTree(trie_depth=trie_depth, branching=branching, max_leaf_size=max_leaf).fit(labels, x)
    check_invariants(tree, labels, trie_depth, branching, max_leaf)


def test_trie_layers_hold_one_node_per_distinct_prefix(data) -> None:
    labels, x = data
    tree = HybridTree(trie_depth=3, max_leaf_size=10).fit(labels, x)
    for d in range(1, 4):
        layer = np.arange(tree.layer_ptr_[d], tree.layer_ptr_[d + 1])
        trie_nodes = layer[tree.node_key_len_[layer] == d]
        keys = [labels[tree.node_lo_[v]][:d] for v in trie_nodes]
        assert keys == sorted({s[:d] for s in labels if len(s) >= d})


def test_fit_leaves_the_embeddings_alone(data) -> None:
    labels, x = data
    scaled = (x * 2.0).tocsr()  # a power of two: normalizing gives back x exactly
    before = scaled.copy()
    tree = HybridTree(trie_depth=0, max_leaf_size=20).fit(labels, scaled)
    assert (scaled != before).nnz == 0
    # rows are normalized inside fit: scaling every row changes nothing
    same = HybridTree(trie_depth=0, max_leaf_size=20).fit(labels, x)
    np.testing.assert_array_equal(tree.label_order_, same.label_order_)


def test_pure_kmeans_and_pure_trie(data) -> None:
    labels, x = data
    kmeans_tree = HybridTree(trie_depth=0, max_leaf_size=50).fit(labels, x)
    assert kmeans_tree.node_key_len_[0] == 0 and np.all(kmeans_tree.node_key_len_[1:] == -1)
    trie = HybridTree(trie_depth=10_000, max_leaf_size=50).fit(labels, x)
    assert trie.n_trie_layers_ == max(len(s) for s in labels)
    inner = trie.node_label_ < 0
    assert np.all(trie.node_key_len_[inner] >= 0)  # no k-means node at all
    # a label's node hangs right under the trie node whose key is the label
    for j, s in enumerate(labels):
        v = trie.parent_[trie.label_node_[j]]
        assert trie.node_key_len_[v] == len(s) and labels[trie.node_lo_[v]][: len(s)] == s


def test_small_label_sets() -> None:
    labels = ["x"]
    tree = HybridTree(trie_depth=2).fit(labels, sp.csr_matrix(np.ones((1, 3))))
    check_invariants(tree, labels, 2, 2, 100)
    labels = ["", "a", "b"]
    tree = HybridTree(trie_depth=0, max_leaf_size=1).fit(labels, sp.csr_matrix(np.eye(3)))
    check_invariants(tree, labels, 0, 2, 1)
    tree = HybridTree(trie_depth=1, max_leaf_size=1).fit(labels, sp.csr_matrix(np.eye(3)))
    check_invariants(tree, labels, 1, 2, 1)
    assert tree.parent_[tree.label_node_[0]] == 0  # the empty label ends at the root


def test_same_seed_same_tree_whatever_the_thread_count(data) -> None:
    labels, x = data
    params = dict(trie_depth=0, branching=3, max_leaf_size=15, random_state=7)
    first = HybridTree(**params).fit(labels, x)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        second = HybridTree(**params).fit(labels, x)
    finally:
        numba.set_num_threads(threads)
    for name in ("child_ptr_", "parent_", "node_label_", "label_order_", "node_lo_"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    other = HybridTree(**{**params, "random_state": 8}).fit(labels, x)
    assert not np.array_equal(first.label_order_, other.label_order_)


def test_kmeans_groups_similar_labels() -> None:
    # two families of labels with no character in common end up on the two sides of the root
    labels = sorted(
        {f"{a}{b}{c}" for a, b, c in itertools.product("ab", repeat=3)}
        | {f"{x}{y}{z}" for x, y, z in itertools.product("xy", repeat=3)}
    )
    tree = HybridTree(trie_depth=0, max_leaf_size=1).fit(labels, embed(labels))
    sides = [{labels[j] for j in labels_under(tree, c)} for c in children(tree, 0)]
    assert {frozenset(s) for s in sides} == {
        frozenset(s for s in labels if s[0] in "ab"),
        frozenset(s for s in labels if s[0] in "xy"),
    }


def test_from_params() -> None:
    tree = HybridTree.from_params(
        TreeParams(trie_depth=2, branching=4, max_leaf_size=9, kmeans_iterations=3, random_state=5)
    )
    assert tree.get_params() == dict(
        trie_depth=2, branching=4, max_leaf_size=9, kmeans_iterations=3, random_state=5
    )


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(branching=1), "branching"),
        (dict(trie_depth=-1), "trie_depth"),
        (dict(max_leaf_size=0), "max_leaf_size"),
        (dict(kmeans_iterations=1.5), "kmeans_iterations"),
    ],
)
def test_bad_params_are_refused_in_fit(data, params, match) -> None:
    labels, x = data
    tree = HybridTree(**params)  # no validation before fit
    with pytest.raises(ValueError, match=match):
        tree.fit(labels, x)


def test_bad_inputs_are_refused(data) -> None:
    labels, x = data
    with pytest.raises(ValueError, match="sorted"):
        HybridTree().fit(labels[::-1], x)
    with pytest.raises(ValueError, match="one row per label"):
        HybridTree().fit(labels, x[:-1])
    with pytest.raises(ValueError, match="no labels"):
        HybridTree().fit([], sp.csr_matrix((0, 3)))
    with pytest.raises(NotFittedError):
        HybridTree().save("unused")


@pytest.fixture
def saved(data, tmp_path: Path) -> tuple[HybridTree, Path]:
    labels, x = data
    tree = HybridTree(trie_depth=1, branching=3, max_leaf_size=12, random_state=3).fit(labels, x)
    tree.save(tmp_path / "tree")
    return tree, tmp_path / "tree"


def test_save_load_round_trip(saved) -> None:
    tree, folder = saved
    for mmap in (True, False):
        loaded = HybridTree.load(folder, mmap=mmap)
        assert loaded.get_params() == tree.get_params()
        assert loaded.n_trie_layers_ == tree.n_trie_layers_
        for name in (
            "child_ptr_",
            "parent_",
            "node_layer_",
            "layer_ptr_",
            "node_label_",
            "label_node_",
            "node_key_len_",
            "node_lo_",
            "node_hi_",
            "label_order_",
        ):
            np.testing.assert_array_equal(getattr(loaded, name), getattr(tree, name))
            assert isinstance(getattr(loaded, name).base, np.memmap) == mmap


def test_missing_file_is_named(saved) -> None:
    _, folder = saved
    (folder / "parent.npy").unlink()
    with pytest.raises(ModelFileError, match="parent.npy"):
        HybridTree.load(folder)


def test_truncated_file_is_named(saved) -> None:
    _, folder = saved
    path = folder / "child_ptr.npy"
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(ModelFileError, match="child_ptr.npy"):
        HybridTree.load(folder)


def test_mismatched_array_is_named(saved) -> None:
    tree, folder = saved
    np.save(folder / "label_node.npy", np.asarray(tree.label_node_[:-1]))
    with pytest.raises(ModelFileError, match="label_node.npy"):
        HybridTree.load(folder)
    np.save(folder / "label_node.npy", np.asarray(tree.label_node_, dtype=np.int64))
    with pytest.raises(ModelFileError, match="label_node.npy"):
        HybridTree.load(folder)


def test_other_format_version_or_kind_is_refused(saved) -> None:
    _, folder = saved
    body = json.loads((folder / "params.json").read_text())
    (folder / "params.json").write_text(json.dumps({**body, "kind": "Other"}))
    with pytest.raises(ModelFileError, match="params.json"):
        HybridTree.load(folder)
    (folder / "params.json").write_text(json.dumps({**body, "format_version": 999}))
    with pytest.raises(ModelFileError, match="params.json"):
        HybridTree.load(folder)
    del body["summary"]["n_nodes"]
    (folder / "params.json").write_text(json.dumps(body))
    with pytest.raises(ModelFileError, match="params.json"):
        HybridTree.load(folder)
