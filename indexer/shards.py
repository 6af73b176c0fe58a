"""Sharded XR-Linear training: every subtree under a deepest trie node is its own problem.

The typed prefix walks the trie layers without scoring, so the subtree under a trie node of
layer ``d = trie_depth`` is an independent XR-Linear problem: its labels, the examples whose
next query is one of them, its k-means layers and its scorers. A **shard** is a run of
consecutive layer-``d`` trie nodes (consecutive in key order), cut so that shards carry about the
same number of labels + examples. Training is then:

1. on the caller: labels, training examples, the input vectorizer's vocabulary (one feature space
   for all shards), and the **plan** (:func:`plan_shards`): the trie layers, the shards, and the
   exact shape of every shard's k-means layers, which depends only on subtree sizes (balanced
   k-means: children sizes are fixed by the parent's), so every node's global id is known before
   any shard is built;
2. one task per shard (:func:`fit_shard`): features of its examples, label embeddings, k-means
   layers seeded by the nodes' *global* ids (so the tree equals the single-process tree), and the
   scorers of its k-means and label layers;
3. one task for the scorers of the trie layers (:func:`fit_top`), over all examples (they are
   only used for an empty prefix, but they are part of the model);
4. on the caller: :func:`assemble` puts the shards' subtrees and weight columns back in global
   breadth-first order: the same model folder layout as single-process training.

The tree is identical to the single-process tree. Scorers agree up to the solver's randomized
row order (seeded per layer by node ids and the layer's row count, which a shard sees only in
part), so answers agree closely, not bit for bit; the trie layers' scorers are identical.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import scipy.sparse as sp

from indexer.embeddings import label_embeddings
from indexer.features import InputVectorizer
from indexer.labels import LabelSet
from indexer.params import TrainParams, TreeParams
from indexer.training import TrainingReport, train_scorers
from indexer.tree import CLUSTER, LABEL, TRIE, HybridTree, _Layer, first_scored_layer


@dataclasses.dataclass
class ShardPlan:
    """Where every shard's nodes and labels sit in the global tree.

    Attributes
    ----------
    depth : int
        Trie layers (``d``); shards hang below layer ``d``.
    top : HybridTree
        The trie layers (and a label layer below them, unused): layers ``0 .. d`` are the global
        tree's.
    shard_labels : list of int64 arrays
        Global label ids of each shard, ascending (labels shorter than ``d`` belong to no shard).
    shard_nodes : list of int64 arrays
        Global ids of each shard's layer-``d`` trie nodes.
    layer_ptr : int64 array
        First global node id of every layer of the global tree.
    offsets : int64 array, shape (n_shards, n_layers)
        Global id of each shard's first node on every layer below ``d``.
    counts : int64 array, shape (n_shards, n_layers)
        Nodes of each shard on every layer (0 for layers ``<= d``).
    sizes : int64 array
        Labels + examples of each shard (its cost).
    """

    depth: int
    top: HybridTree
    shard_labels: list[np.ndarray]
    shard_nodes: list[np.ndarray]
    layer_ptr: np.ndarray
    offsets: np.ndarray
    counts: np.ndarray
    sizes: np.ndarray

    @property
    def n_shards(self) -> int:
        return len(self.shard_labels)


def plan_shards(labels: LabelSet, y: np.ndarray, tree: TreeParams, n_shards: int) -> ShardPlan:
    """Cut the trie's layer-``d`` subtrees into ``n_shards`` runs balanced by labels + examples.

    ``y`` are the training examples' label ids. Fewer shards come back when there are fewer
    subtrees. Raises ``ValueError`` for a tree without trie layers (nothing to shard by).
    """
    if tree.trie_depth < 1:
        raise ValueError(
            "sharded training needs [tree] trie_depth >= 1 (shards are trie subtrees); "
            "train in one process (no --scheduler) for a pure k-means tree"
        )
    if n_shards < 1:
        raise ValueError(f"plan_shards: n_shards must be >= 1, got {n_shards}")
    texts = labels.texts()
    n = len(texts)
    params = {f.name: getattr(tree, f.name) for f in dataclasses.fields(tree)}
    params.pop("pifa_weight", None)
    params["max_leaf_size"] = max(n, 1)  # the trie layers only, then every label as a leaf child
    top = HybridTree(**params).fit(texts, sp.csr_matrix((n, 1), dtype=np.float32))
    depth = top.n_trie_layers_
    lo_d, hi_d = int(top.layer_ptr_[depth]), int(top.layer_ptr_[depth + 1])
    layer_d = np.arange(lo_d, hi_d)
    is_trie = top.node_key_len_[layer_d] == depth
    trie_nodes = layer_d[is_trie]
    node_lo = top.node_lo_[trie_nodes].astype(np.int64)
    node_hi = top.node_hi_[trie_nodes].astype(np.int64)
    examples = np.bincount(np.asarray(y, dtype=np.int64), minlength=n)
    cum_examples = np.concatenate([[0], np.cumsum(examples)])
    cost = (node_hi - node_lo) + (cum_examples[node_hi] - cum_examples[node_lo])

    bounds = balanced_cuts(cost, n_shards)
    shard_nodes = [trie_nodes[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    shard_labels = [
        np.concatenate([np.arange(top.node_lo_[v], top.node_hi_[v], dtype=np.int64) for v in nodes])
        for nodes in shard_nodes
    ]
    sizes = np.array([len(lab) + int(examples[lab].sum()) for lab in shard_labels], dtype=np.int64)

    # the shape of the k-means layers: node sizes only (see indexer.kmeans.child_sizes)
    shard_of = np.full(hi_d - lo_d, -1, dtype=np.int64)
    for s, nodes in enumerate(shard_nodes):
        shard_of[nodes - lo_d] = s
    size = (top.node_hi_[layer_d] - top.node_lo_[layer_d]).astype(np.int64)
    label = ~is_trie
    layer_sizes = list(np.diff(top.layer_ptr_[: depth + 2]).astype(np.int64))
    counts = [np.zeros(len(shard_nodes), dtype=np.int64) for _ in range(depth + 1)]
    b, leaf_max = int(tree.branching), int(tree.max_leaf_size)
    while True:
        grow = ~label
        leaf = grow & (size <= leaf_max)
        split = grow & (size > leaf_max)
        if not grow.any():
            break
        k = np.minimum(b, size)
        n_children = np.where(leaf, size, np.where(split, k, 0))
        first = np.cumsum(n_children) - n_children
        total = int(n_children.sum())
        index = np.arange(total) - np.repeat(first, n_children)
        parent_size = np.repeat(size, n_children)
        parent_k = np.repeat(k, n_children)
        from_leaf = np.repeat(leaf, n_children)
        size = np.where(from_leaf, 1, parent_size // parent_k + (index < parent_size % parent_k))
        label = from_leaf
        shard_of = np.repeat(shard_of, n_children)
        layer_sizes.append(total)
        counts.append(np.bincount(shard_of, minlength=len(shard_nodes)))
    layer_sizes = layer_sizes[: len(counts)]
    layer_ptr = np.concatenate([[0], np.cumsum(layer_sizes)]).astype(np.int64)
    count_matrix = np.stack(counts, axis=1)  # (n_shards, n_layers)
    offsets = layer_ptr[None, :-1] + np.cumsum(count_matrix, axis=0) - count_matrix
    return ShardPlan(depth, top, shard_labels, shard_nodes, layer_ptr, offsets, count_matrix, sizes)


def balanced_cuts(cost: np.ndarray, parts: int) -> list[int]:
    """Cut ``cost`` (in order) into at most ``parts`` runs with the smallest largest run sum;
    returns the run bounds ``[0, ..., len(cost)]`` (binary search over the capacity)."""
    cost = np.asarray(cost, dtype=np.int64)
    if cost.size == 0:
        return [0, 0]

    def greedy(capacity: int) -> list[int]:
        bounds, running = [0], 0
        for i, c in enumerate(cost.tolist()):
            if running and running + c > capacity:
                bounds.append(i)
                running = 0
            running += c
        return bounds + [len(cost)]

    lo, hi = int(cost.max()), int(cost.sum())
    while lo < hi:
        mid = (lo + hi) // 2
        if len(greedy(mid)) - 1 <= parts:
            hi = mid
        else:
            lo = mid + 1
    return greedy(lo)


class _SubtreeForest(HybridTree):
    """A shard's tree: its trie path, then k-means seeded by the nodes' global ids."""

    shard_seed_ids: tuple[np.ndarray, np.ndarray, int]  # (layer-d node ids, offsets per layer, d)

    def _seed_ids(self, layer: int, offset: int, index: np.ndarray) -> np.ndarray:
        trie_ids, offsets, depth = self.shard_seed_ids
        if layer == depth:
            return trie_ids[index]
        return offsets[layer] + index


@dataclasses.dataclass
class ShardInput:
    """What one shard task needs (pickled to a worker)."""

    shard: int
    texts: list[str]  # the shard's labels, in label id order
    previous: list[str]  # its examples: (previous query, prefix, local label id)
    prefixes: list[str]
    y: np.ndarray
    trie_ids: np.ndarray
    offsets: np.ndarray
    depth: int


@dataclasses.dataclass
class ShardResult:
    shard: int
    tree: dict[str, np.ndarray]  # the local tree's arrays (HybridTree attribute names)
    weights: sp.csc_matrix  # local node columns
    report: TrainingReport
    seconds: dict[str, float]
    n_examples: int


def shard_inputs(
    plan: ShardPlan, labels: LabelSet, previous: Sequence[str], prefixes: Sequence[str], y: np.ndarray
) -> list[ShardInput]:
    """Split the examples (label ids ``y``) by shard, each keeping the examples' order."""
    texts = labels.texts()
    shard_of_label = np.full(len(texts), -1, dtype=np.int64)
    local_id = np.full(len(texts), -1, dtype=np.int64)
    for s, lab in enumerate(plan.shard_labels):
        shard_of_label[lab] = s
        local_id[lab] = np.arange(len(lab))
    example_shard = shard_of_label[y]
    order = np.argsort(example_shard, kind="stable")
    starts = np.searchsorted(example_shard[order], np.arange(plan.n_shards + 1))
    out = []
    for s, lab in enumerate(plan.shard_labels):
        rows = order[starts[s] : starts[s + 1]]
        out.append(
            ShardInput(
                shard=s,
                texts=[texts[j] for j in lab],
                previous=[previous[i] for i in rows],
                prefixes=[prefixes[i] for i in rows],
                y=local_id[y[rows]].astype(np.int32),
                trie_ids=plan.shard_nodes[s],
                offsets=plan.offsets[s],
                depth=plan.depth,
            )
        )
    return out


def fit_shard(
    task: ShardInput, vectorizer: InputVectorizer, tree: TreeParams, training: TrainParams
) -> ShardResult:
    """Features, k-means layers and scorers of one shard (runs on a worker)."""
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    X = vectorizer.transform(task.prefixes, task.previous)
    seconds["features"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    embeddings = label_embeddings(
        task.texts,
        vectorizer.prefix_,
        pifa=(X, task.y) if tree.pifa_weight > 0 else None,
        pifa_weight=tree.pifa_weight,
    )
    forest = _SubtreeForest.from_params(tree)
    forest.shard_seed_ids = (task.trie_ids, task.offsets, task.depth)
    forest.fit(task.texts, embeddings)
    if forest.n_trie_layers_ != task.depth:
        raise ValueError(f"shard {task.shard}: its labels are shorter than the trie depth {task.depth}")
    seconds["tree"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = TrainingReport()
    weights = train_scorers(
        X, task.y, forest, training, progress=False, report=report, first_layer=task.depth + 1
    )
    seconds["scorers"] = time.perf_counter() - t0
    arrays = {
        name: getattr(forest, name)
        for name in ("layer_ptr_", "node_lo_", "node_hi_", "node_label_", "label_order_")
    }
    return ShardResult(task.shard, arrays, weights, report, seconds, int(X.shape[0]))


def fit_top(
    plan: ShardPlan, X: sp.csr_matrix, y: np.ndarray, training: TrainParams
) -> tuple[sp.csc_matrix, TrainingReport]:
    """The scorers of trie layers ``2 .. d`` over every example (the same as single-process
    training; the first trie layer has none, :func:`indexer.tree.first_scored_layer`)."""
    top = plan.top
    n_top = int(top.layer_ptr_[plan.depth + 1])
    label_node = top.label_node_.astype(np.int64)
    below = label_node >= n_top
    label_node[below] = top.parent_[label_node[below]]
    view = SimpleNamespace(
        parent_=top.parent_[:n_top],
        node_layer_=top.node_layer_[:n_top],
        layer_ptr_=top.layer_ptr_[: plan.depth + 2],
        label_node_=label_node,
    )
    report = TrainingReport()
    weights = train_scorers(
        X, y, view, training, progress=False, report=report, first_layer=first_scored_layer(plan.depth)
    )
    return weights, report


def assemble(
    plan: ShardPlan,
    tree_params: TreeParams,
    results: list[ShardResult],
    top_weights: sp.csc_matrix,
    n_features: int,
) -> tuple[HybridTree, sp.csc_matrix]:
    """The global tree and weight matrix from the trie layers and every shard's subtrees."""
    results = sorted(results, key=lambda r: r.shard)
    top, depth = plan.top, plan.depth
    n_labels = len(top.label_node_)
    layers: list[_Layer] = []
    for layer in range(depth + 1):
        nodes = np.arange(top.layer_ptr_[layer], top.layer_ptr_[layer + 1])
        key = top.node_key_len_[nodes]
        kind = np.where(key >= 0, TRIE, LABEL).astype(np.int8)
        layers.append(
            _Layer(top.node_lo_[nodes].astype(np.int64), top.node_hi_[nodes].astype(np.int64), kind, key)
        )
    perm = np.arange(n_labels, dtype=np.int32)
    n_layers = len(plan.layer_ptr) - 1
    pieces: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {
        i: [] for i in range(depth + 1, n_layers)
    }
    for r in results:
        glob = plan.shard_labels[r.shard]
        local_ptr = r.tree["layer_ptr_"]
        perm[glob] = glob[r.tree["label_order_"]]
        for layer in range(depth + 1, n_layers):
            a, b = (
                (int(local_ptr[layer]), int(local_ptr[layer + 1])) if layer + 1 < len(local_ptr) else (0, 0)
            )
            if b - a != plan.counts[r.shard, layer]:
                raise ValueError(
                    f"shard {r.shard}: {b - a} nodes on layer {layer}, "
                    f"the plan says {plan.counts[r.shard, layer]}"
                )
            if b == a:
                continue
            lo = glob[r.tree["node_lo_"][a:b]]
            hi = glob[r.tree["node_hi_"][a:b] - 1] + 1
            kind = np.where(r.tree["node_label_"][a:b] >= 0, LABEL, CLUSTER).astype(np.int8)
            pieces[layer].append((lo, hi, kind))
    for layer in range(depth + 1, n_layers):
        parts = pieces[layer]
        lo = np.concatenate([p[0] for p in parts])
        hi = np.concatenate([p[1] for p in parts])
        kind = np.concatenate([p[2] for p in parts])
        layers.append(_Layer(lo, hi, kind, np.full(len(lo), -1, dtype=np.int32)))
    tree = HybridTree.from_params(tree_params)
    tree._assemble(layers, perm)
    tree.n_trie_layers_ = depth

    # weight columns in global order: trie layers, then each layer's shards in order
    blocks = [top_weights[:, : int(plan.layer_ptr[depth + 1])]]
    for layer in range(depth + 1, n_layers):
        for r in results:
            a = int(r.tree["layer_ptr_"][layer]) if layer < len(r.tree["layer_ptr_"]) - 1 else 0
            b = a + int(plan.counts[r.shard, layer])
            if b > a:
                blocks.append(r.weights[:, a:b])
    weights = sp.hstack(blocks, format="csc", dtype=np.float32)
    weights.sort_indices()
    if weights.shape != (n_features + 1, tree.n_nodes):
        raise ValueError(
            f"assembled weights have shape {weights.shape}, expected {(n_features + 1, tree.n_nodes)}"
        )
    return tree, weights


def merge_reports(top: TrainingReport, shards: list[TrainingReport]) -> dict[str, Any]:
    """One summary of every layer's training (seconds summed over shards: worker time)."""
    layers: dict[int, dict[str, Any]] = {}
    for report in [top, *shards]:
        for layer in report.layers:
            row = layers.setdefault(
                layer.layer, {"layer": layer.layer, "n_scorers": 0, "n_examples": 0, "seconds": 0.0, "nnz": 0}
            )
            row["n_scorers"] += layer.n_scorers
            row["n_examples"] += layer.n_examples
            row["seconds"] += layer.seconds
            row["nnz"] += layer.nnz
    rows = [layers[k] for k in sorted(layers)]
    return {
        "seconds": round(sum(r["seconds"] for r in rows), 3),
        "nnz": sum(r["nnz"] for r in rows),
        "layers": rows,
    }
