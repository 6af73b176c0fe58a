"""Time scorer training on synthetic data shaped like the aol1k benchmark (run by hand).

    .venv/bin/python -m bench.training --labels 60000 --examples 300000

Builds a hybrid-shaped tree (one trie layer of ~37 first characters with Zipf-like sizes, then
balanced binary splits down to ``--max-leaf-size`` labels, then one node per label) and inputs
whose features reveal a random-length prefix of the label's path (like a typed prefix) plus
previous-query noise, ~30-60 nonzeros per row. Prints the per-layer report.
"""

from __future__ import annotations

import argparse
import time
from collections import deque
from types import SimpleNamespace

import numba
import numpy as np
import scipy.sparse as sp

from indexer.params import TrainParams
from indexer.training import TrainingReport, train_scorers


def synthetic_tree(n_labels: int, max_leaf_size: int, rng: np.random.Generator) -> SimpleNamespace:
    """Flat tree arrays: root, trie layer, binary splits, label nodes (breadth-first ids)."""
    sizes = rng.zipf(1.6, size=37).astype(float)
    cuts = np.unique(np.r_[0, np.floor(np.cumsum(sizes) / sizes.sum() * n_labels).astype(int)])
    parent, layer, node_label = [-1], [0], [-1]
    queue: deque = deque([(0, 0, n_labels, 0)])
    while queue:
        node, lo, hi, kind = queue.popleft()
        if kind == 0:  # root: trie children
            specs = [(a, b, 1) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]
        elif kind == 1 and hi - lo > max_leaf_size:
            mid = (lo + hi) // 2
            specs = [(lo, mid, 1), (mid, hi, 1)]
        elif kind == 1:
            specs = [(j, j + 1, 2) for j in range(lo, hi)]
        else:
            continue
        for a, b, k in specs:
            parent.append(node)
            layer.append(layer[node] + 1)
            node_label.append(a if k == 2 else -1)
            queue.append((len(parent) - 1, a, b, k))
    node_layer = np.array(layer)
    node_label_ = np.array(node_label)
    label_node = np.empty(n_labels, dtype=np.int64)
    label_node[node_label_[node_label_ >= 0]] = np.flatnonzero(node_label_ >= 0)
    layer_ptr = np.searchsorted(node_layer, np.arange(node_layer.max() + 2))
    return SimpleNamespace(
        parent_=np.array(parent),
        node_layer_=node_layer,
        layer_ptr_=layer_ptr,
        label_node_=label_node,
        node_label_=node_label_,
    )


def synthetic_inputs(
    tree: SimpleNamespace,
    n_examples: int,
    rng: np.random.Generator,
    n_prefix_features: int = 30000,
    n_previous_features: int = 120000,
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Examples: Zipf-popular labels; features of a random-length prefix of the label's path plus noise."""
    n_labels = tree.label_node_.shape[0]
    node_features = rng.integers(0, n_prefix_features, size=(tree.parent_.shape[0], 6))
    popularity = 1.0 / np.arange(1, n_labels + 1) ** 0.8
    y = rng.choice(n_labels, size=n_examples, p=popularity / popularity.sum())
    paths = {}
    rows, cols = [], []
    for i, label in enumerate(y):
        path = paths.get(label)
        if path is None:
            path, v = [], tree.label_node_[label]
            while v > 0:
                path.append(v)
                v = tree.parent_[v]
            path = paths[label] = path[::-1]
        depth = rng.integers(1, len(path) + 1)
        features = np.r_[
            node_features[path[:depth]].ravel(),
            n_prefix_features + rng.zipf(1.3, size=16) % n_previous_features,
        ]
        rows.append(np.full(features.size, i))
        cols.append(features)
    X = sp.csr_matrix(
        (rng.random(sum(map(len, cols))).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_examples, n_prefix_features + n_previous_features),
    )
    X.sum_duplicates()
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    return sp.csr_matrix(sp.diags(1.0 / np.maximum(norms, 1e-12)) @ X, dtype=np.float32), y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=60000)
    parser.add_argument("--examples", type=int, default=300000)
    parser.add_argument("--max-leaf-size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    tree = synthetic_tree(args.labels, args.max_leaf_size, rng)
    X, y = synthetic_inputs(tree, args.examples, rng)
    print(
        f"{X.shape[0]} examples, {X.shape[1]} features, {X.nnz / X.shape[0]:.1f} nnz/row, "
        f"{tree.parent_.shape[0]} nodes in {tree.layer_ptr_.shape[0] - 1} layers"
    )
    report = TrainingReport()
    start, cpu_start = time.perf_counter(), time.process_time()
    weights = train_scorers(X, y, tree, TrainParams(), progress=False, report=report)
    total, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    for layer in report.layers:
        print(
            f"layer {layer.layer:2d}: {layer.n_scorers:6d} scorers {layer.n_examples:7d} examples "
            f"{layer.seconds:6.2f} s (cpu {layer.cpu_seconds:6.2f} s)  nnz {layer.nnz:9d}  "
            f"passes {layer.mean_passes:.1f}"
        )
    size = (weights.data.nbytes + weights.indices.nbytes) >> 20
    print(
        f"train_scorers: {total:.2f} s (cpu {cpu:.2f} s on {numba.get_num_threads()} threads), "
        f"{weights.nnz} weights ({size} MiB)"
    )


if __name__ == "__main__":
    main()
