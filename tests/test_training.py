from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
from solver_reference import solve_problems

from indexer.params import TrainParams
from indexer.training import TrainingReport, train_scorers

# A hand-built tree whose branches end on different layers (breadth-first ids):
#   layer 1: 1, 2, 3 under the root
#   layer 2: 4, 5 (inner, under 1); 6, 7 (labels 4, 5, under 2); 8 (label 6, only child of 3)
#   layer 3: 9, 10 (labels 0, 1, under 4); 11, 12 (labels 2, 3, under 5)
PARENT = np.array([-1, 0, 0, 0, 1, 1, 2, 2, 3, 4, 4, 5, 5])
NODE_LABEL = np.array([-1, -1, -1, -1, -1, -1, 4, 5, 6, 0, 1, 2, 3])
TIGHT = TrainParams(max_iter=2000, tol=1e-7, threshold=0.0)


def _tree() -> SimpleNamespace:
    layer = np.zeros(len(PARENT), dtype=np.int64)
    for v in range(1, len(PARENT)):
        layer[v] = layer[PARENT[v]] + 1
    label_node = np.empty(NODE_LABEL.max() + 1, dtype=np.int64)
    label_node[NODE_LABEL[NODE_LABEL >= 0]] = np.flatnonzero(NODE_LABEL >= 0)
    return SimpleNamespace(
        parent_=PARENT,
        node_layer_=layer,
        layer_ptr_=np.searchsorted(layer, np.arange(layer.max() + 2)),
        node_label_=NODE_LABEL,
        label_node_=label_node,
    )


def _path(tree: SimpleNamespace, label: int) -> list[int]:
    path, v = [], int(tree.label_node_[label])
    while v > 0:
        path.append(v)
        v = int(PARENT[v])
    return path[::-1]


def _data(per_label: int = 6, noise: int = 8, seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray]:
    """Each example shows its label's path (one feature per node) plus weak random noise features."""
    tree = _tree()
    rng = np.random.default_rng(seed)
    n_nodes = len(PARENT)
    y = np.repeat(np.arange(7), per_label)
    rows, cols, vals = [], [], []
    for i, label in enumerate(y):
        for v in _path(tree, label):
            rows.append(i), cols.append(v), vals.append(1.0)
        for f in rng.choice(noise, size=3, replace=False):
            rows.append(i), cols.append(n_nodes + f), vals.append(rng.random() * 0.3)
    X = sp.csr_matrix((vals, (rows, cols)), shape=(len(y), n_nodes + noise), dtype=np.float32)
    return X, y


def _scores(W: sp.csc_matrix, X: sp.csr_matrix, bias: float) -> np.ndarray:
    """Node scores w_v . [x, bias] for every example and node."""
    Xb = sp.hstack([X, np.full((X.shape[0], 1), bias)]).tocsr()
    return (Xb @ W).toarray()


def test_trained_scorers_route_every_training_example_to_its_label() -> None:
    tree = _tree()
    X, y = _data()
    params = TrainParams(max_iter=200, tol=1e-3, threshold=0.0)
    scores = _scores(train_scorers(X, y, tree, params, progress=False), X, params.bias)
    transform = np.exp(-(np.maximum(0.0, 1.0 - scores) ** 3))  # PECOS's l3-hinge: monotone in the score
    paths = [_path(tree, label) for label in range(7)]
    exhaustive = np.array([[np.prod(transform[i, p]) for p in paths] for i in range(len(y))])
    np.testing.assert_array_equal(exhaustive.argmax(axis=1), y)
    for i, label in enumerate(y):  # greedy descent (beam width 1) agrees
        v = 0
        while NODE_LABEL[v] < 0:
            children = np.flatnonzero(PARENT == v)
            v = int(children[np.argmax(scores[i, children])])
        assert NODE_LABEL[v] == label


def test_each_node_is_trained_on_its_parents_examples_only() -> None:
    """Positives: labels under the node; negatives: labels under its siblings (teacher forcing)."""
    tree = _tree()
    X, y = _data()
    W = train_scorers(X, y, tree, TIGHT, progress=False).toarray()
    under = {v: {label for label in range(7) if v in _path(tree, label)} for v in range(len(PARENT))}
    under[0] = set(range(7))
    for v in range(1, len(PARENT)):
        rows = np.flatnonzero(np.isin(y, sorted(under[int(PARENT[v])])))
        signs = np.where(np.isin(y[rows], sorted(under[v])), 1, -1)
        expected = solve_problems(X, np.array([0, len(rows)]), rows, signs, max_iter=2000, tol=1e-7)
        np.testing.assert_allclose(W[:, v], expected.toarray()[:, 0], atol=1e-4, err_msg=f"node {v}")


def test_nodes_without_examples_under_their_parent_get_no_weights() -> None:
    X, y = _data()
    keep = ~np.isin(y, [4, 5])  # node 2's labels
    W = train_scorers(X[keep], y[keep], _tree(), TIGHT, progress=False)
    assert W.shape == (X.shape[1] + 1, len(PARENT))
    nnz = np.diff(W.indptr)
    assert nnz[0] == 0 and nnz[6] == 0 and nnz[7] == 0
    assert nnz[2] > 0  # node 2 itself is trained (as a sibling with no positives)
    assert np.all(W.toarray()[:-1, 2] <= 1e-6)


def test_threshold_prunes_exactly_the_small_weights() -> None:
    X, y = _data(noise=20)
    full = train_scorers(X, y, _tree(), TrainParams(threshold=0.0), progress=False)
    pruned = train_scorers(X, y, _tree(), TrainParams(threshold=0.1), progress=False)
    dense = full.toarray()
    dense[np.abs(dense) < 0.1] = 0.0
    assert 0 < pruned.nnz < full.nnz
    np.testing.assert_array_equal(pruned.toarray(), dense)
    assert pruned.dtype == np.float32 and pruned.has_sorted_indices


def test_bias_row_holds_the_constant_features_weight() -> None:
    X, y = _data()
    with_bias = train_scorers(X, y, _tree(), TrainParams(bias=1.0, threshold=0.0), progress=False)
    without = train_scorers(X, y, _tree(), TrainParams(bias=0.0, threshold=0.0), progress=False)
    assert with_bias.toarray()[-1, 8] > 0.1  # node 8 is an only child: every example is positive
    assert not without.toarray()[-1].any()
    assert not np.allclose(_scores(with_bias, X, 1.0), _scores(with_bias, X, 0.0))


def test_report_has_one_entry_per_layer() -> None:
    X, y = _data()
    report = TrainingReport()
    W = train_scorers(X, y, _tree(), TrainParams(), progress=True, report=report)
    assert [layer.layer for layer in report.layers] == [1, 2, 3]
    assert [layer.n_scorers for layer in report.layers] == [3, 5, 4]
    assert [layer.n_examples for layer in report.layers] == [42, 42, 24]
    assert report.nnz == W.nnz
    assert report.as_dict()["layers"][0]["nnz"] == report.layers[0].nnz


@pytest.mark.parametrize(
    ("y", "message"),
    [(np.zeros(5, dtype=int), "one label per row"), (np.full(42, 7), "label ids must lie in")],
)
def test_bad_labels_are_refused(y: np.ndarray, message: str) -> None:
    X, _ = _data()
    with pytest.raises(ValueError, match=message):
        train_scorers(X, y, _tree(), TrainParams(), progress=False)


def test_bad_params_are_refused() -> None:
    X, y = _data()
    with pytest.raises(ValueError, match="cp and cn"):
        train_scorers(X, y, _tree(), TrainParams(cn=0.0), progress=False)
