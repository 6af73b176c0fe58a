"""One linear scorer per tree node, trained layer by layer as PECOS XR-Linear does.

For a node ``v`` with parent ``u``, the examples are those whose label lies under ``u``
(teacher forcing: the search is assumed to have reached ``u`` correctly); the positives are the
ones whose label lies under ``v``, the negatives are the siblings' examples. The children of one
parent share their examples, so each layer gathers every parent's examples once into a compact
group (:func:`indexer.solver.build_groups`) and then solves all the layer's nodes in parallel
(:func:`indexer.solver.solve_grouped`).

Every example gets one extra constant feature of value ``params.bias``; a scorer's value on an
input ``x`` is ``[x, bias] . w``, where ``w`` is the node's column of the returned matrix.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numba
import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from indexer.params import TrainParams
from indexer.solver import (
    build_groups,
    compact_slots,
    csr_arrays,
    row_sqnorms,
    shuffle_within_groups,
    solve_grouped,
)


def training_examples(
    previous: Sequence[str], following: Sequence[str], prefixes_per_pair: int, seed: int
) -> tuple[list[str], list[str], list[str]]:
    """(previous, prefix, next) examples: ``prefixes_per_pair`` distinct prefix lengths per pair
    drawn uniformly (every length when 0 or when the query is that short)."""
    rng = random.Random(seed)
    prev_out, prefix_out, next_out = [], [], []
    for prev, nxt in zip(previous, following):
        n = len(nxt)
        if prefixes_per_pair <= 0 or n <= prefixes_per_pair:
            lengths: Sequence[int] = range(1, n + 1)
        elif prefixes_per_pair == 1:  # what sample draws for one, without its list of n lengths
            lengths = (rng.randrange(1, n + 1),)
        else:
            lengths = rng.sample(range(1, n + 1), prefixes_per_pair)
        for length in lengths:
            prev_out.append(prev)
            prefix_out.append(nxt[:length])
            next_out.append(nxt)
    return prev_out, prefix_out, next_out


# Most weights one solver call may hold before pruning (int32 + float32 each): bounds memory.
MAX_SLOTS = 1 << 24
# Rows per block of the solver's randomized pass order: streams big groups through the cache.
BLOCK_SIZE = 16
# Most sibling scorers trained together, reading each example once per pass for all of them.
UNIT_SIZE = 64


class LabelTree(Protocol):
    """The flat arrays of a label tree that training reads (see docs/architecture.md)."""

    parent_: np.ndarray
    node_layer_: np.ndarray
    layer_ptr_: np.ndarray
    label_node_: np.ndarray


@dataclasses.dataclass
class LayerReport:
    """What training one layer took."""

    layer: int
    n_scorers: int
    n_examples: int
    seconds: float
    cpu_seconds: float
    nnz: int
    mean_passes: float


@dataclasses.dataclass
class TrainingReport:
    """Per-layer training figures; :func:`train_scorers` appends one :class:`LayerReport` per layer."""

    layers: list[LayerReport] = dataclasses.field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(layer.seconds for layer in self.layers)

    @property
    def cpu_seconds(self) -> float:
        return sum(layer.cpu_seconds for layer in self.layers)

    @property
    def nnz(self) -> int:
        return sum(layer.nnz for layer in self.layers)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (for ``params.json``)."""
        return {
            "seconds": round(self.seconds, 3),
            "cpu_seconds": round(self.cpu_seconds, 3),
            "nnz": self.nnz,
            "layers": [dataclasses.asdict(layer) for layer in self.layers],
        }


def train_scorers(
    X: sp.spmatrix | sp.sparray,
    y: np.ndarray,
    tree: LabelTree,
    params: TrainParams,
    *,
    progress: bool = True,
    report: TrainingReport | None = None,
    first_layer: int = 1,
) -> sp.csc_matrix:
    """Train the linear scorer of every non-root node of ``tree``.

    Parameters
    ----------
    X : sparse matrix, shape (n_examples, n_features)
        Input features of the training examples.
    y : int array, shape (n_examples,)
        Label id of each example.
    tree : LabelTree
        ``parent_``, ``node_layer_``, ``layer_ptr_`` and ``label_node_`` as in docs/architecture.md.
    params : TrainParams
        ``cp``, ``cn``, ``bias``, ``max_iter``, ``tol``, ``threshold``.
    progress : bool
        Show a progress bar per layer.
    report : TrainingReport, optional
        When given, receives one :class:`LayerReport` per layer.
    first_layer : int
        Train the layers from this one down (a shard of a sharded tree trains below its trie
        layers, ``indexer.shards``); the columns of the layers above stay empty.

    Returns
    -------
    scipy.sparse.csc_matrix, float32, shape (n_features + 1, n_nodes)
        Column ``v`` holds node ``v``'s weights (column 0, the root, is empty); the last row is
        the weight of the constant feature ``params.bias``. Weights with ``|w| < threshold``
        are dropped; indices are sorted.
    """
    _check_params(params)
    parent, node_layer, layer_ptr, label_node = _check_tree_inputs(X, y, tree)
    n_nodes = parent.shape[0]
    n_features = X.shape[1]
    y = np.asarray(y)

    indptr, indices, data = csr_arrays(X)
    sqnorm = row_sqnorms(indptr, data)
    col_nnz = np.zeros(n_nodes, dtype=np.int64)
    pieces_indices: list[np.ndarray] = []
    pieces_data: list[np.ndarray] = []
    for layer, child in enumerate(
        _layer_ancestors(label_node[y], parent, node_layer, layer_ptr.shape[0] - 1)
    ):
        if layer < max(first_layer, 1):
            continue
        start, cpu_start = time.perf_counter(), time.process_time()
        nodes = np.arange(layer_ptr[layer], layer_ptr[layer + 1])
        bar = tqdm(total=len(nodes), desc=f"layer {layer}", unit="node", disable=not progress, leave=False)
        layer_nnz, passes = 0, 0
        for problems, p_indptr, p_indices, p_data, p_passes in _solve_layer(
            indptr, indices, data, sqnorm, child, parent, nodes, n_features, params
        ):
            col_nnz[problems] = np.diff(p_indptr)
            pieces_indices.append(p_indices)
            pieces_data.append(p_data)
            layer_nnz += int(p_indptr[-1])
            passes += int(p_passes.sum())
            bar.update(len(problems))
        bar.close()
        if report is not None:
            report.layers.append(
                LayerReport(
                    layer=layer,
                    n_scorers=len(nodes),
                    n_examples=int(np.count_nonzero(child >= 0)),
                    seconds=time.perf_counter() - start,
                    cpu_seconds=time.process_time() - cpu_start,
                    nnz=layer_nnz,
                    mean_passes=passes / max(len(nodes), 1),
                )
            )
    return _weight_matrix(col_nnz, pieces_indices, pieces_data, n_features)


def _check_tree_inputs(
    X: sp.spmatrix | sp.sparray, y: np.ndarray, tree: LabelTree
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The tree's arrays as int64, after checking they agree with each other and with ``X``, ``y``."""
    parent = np.asarray(tree.parent_, dtype=np.int64)
    node_layer = np.asarray(tree.node_layer_, dtype=np.int64)
    layer_ptr = np.asarray(tree.layer_ptr_, dtype=np.int64)
    label_node = np.asarray(tree.label_node_, dtype=np.int64)
    y = np.asarray(y)
    n_examples = X.shape[0]
    if y.shape != (n_examples,):
        raise ValueError(
            f"train_scorers: y has shape {y.shape}, expected ({n_examples},), one label per row of X"
        )
    if y.size and (y.min() < 0 or y.max() >= label_node.shape[0]):
        raise ValueError(
            f"train_scorers: label ids must lie in [0, {label_node.shape[0]}), the tree's labels"
        )
    n_nodes = parent.shape[0]
    if layer_ptr[-1] != n_nodes or node_layer.shape[0] != n_nodes:
        raise ValueError(
            "train_scorers: tree arrays disagree (layer_ptr_[-1] and node_layer_ must match parent_)"
        )
    return parent, node_layer, layer_ptr, label_node


def _weight_matrix(
    col_nnz: np.ndarray, pieces_indices: list[np.ndarray], pieces_data: list[np.ndarray], n_features: int
) -> sp.csc_matrix:
    """The CSC matrix of every node's pruned weights (indices sorted within each column)."""
    n_nodes = col_nnz.shape[0]
    weights_indptr = np.zeros(n_nodes + 1, dtype=np.int64)
    np.cumsum(col_nnz, out=weights_indptr[1:])
    weights = sp.csc_matrix(
        (
            np.concatenate(pieces_data) if pieces_data else np.zeros(0, np.float32),
            np.concatenate(pieces_indices) if pieces_indices else np.zeros(0, np.int32),
            weights_indptr,
        ),
        shape=(n_features + 1, n_nodes),
    )
    weights.has_sorted_indices = True
    return weights


def _check_params(params: TrainParams) -> None:
    if params.cp <= 0 or params.cn <= 0:
        raise ValueError(f"TrainParams: cp and cn must be > 0, got cp={params.cp}, cn={params.cn}")
    if params.max_iter < 1:
        raise ValueError(f"TrainParams: max_iter must be >= 1, got {params.max_iter}")
    if params.tol < 0 or params.threshold < 0:
        raise ValueError(f"TrainParams: tol and threshold must be >= 0, got {params.tol}, {params.threshold}")


def _layer_ancestors(
    example_node: np.ndarray, parent: np.ndarray, node_layer: np.ndarray, n_layers: int
) -> list[np.ndarray]:
    """For each layer, the ancestor of each example's label node on that layer (-1 if it has none).

    A label node may sit above the deepest layer; its examples then take no part below it.
    """
    ancestors: list[np.ndarray] = [np.zeros_like(example_node) for _ in range(n_layers)]
    current = example_node.copy()
    for layer in range(n_layers - 1, 0, -1):
        here = node_layer[current] == layer
        ancestors[layer] = np.where(here, current, -1)
        current = np.where(here, parent[current], current)
    return ancestors


def _solve_layer(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    sqnorm: np.ndarray,
    child: np.ndarray,
    parent: np.ndarray,
    nodes: np.ndarray,
    n_features: int,
    params: TrainParams,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(problem nodes, CSC indptr, indices, data, passes)`` batch by batch.

    ``child[i]`` is example ``i``'s ancestor on this layer (-1 if none). Nodes whose parent has
    no example get no scorer (an empty column).
    """
    selected = np.flatnonzero(child >= 0)
    rows = selected[np.argsort(parent[child[selected]], kind="stable")]
    row_parent = parent[child[rows]]
    starts = (
        np.flatnonzero(np.r_[True, row_parent[1:] != row_parent[:-1]]) if rows.size else np.zeros(0, np.int64)
    )
    group_ptr = np.r_[starts, rows.size].astype(np.int64)
    group_parent = row_parent[starts]
    rows = rows[shuffle_within_groups(group_ptr, seed=int(nodes[0]))]
    row_key = child[rows]
    local = build_groups(indptr, indices, data, rows, group_ptr, n_features, 4 * numba.get_num_threads())
    local_indptr, local_indices, local_data, feature_ptr, features = local
    where = np.minimum(np.searchsorted(group_parent, parent[nodes]), max(group_parent.size - 1, 0))
    trained = group_parent[where] == parent[nodes] if group_parent.size else np.zeros(nodes.size, dtype=bool)
    problems = nodes[trained]
    problem_group = where[trained].astype(np.int64)
    bound = np.diff(feature_ptr)[problem_group] + 1
    row_sqnorm = sqnorm[rows]
    threads = numba.get_num_threads()
    for lo, hi in _batches(bound):
        slot_ptr = np.zeros(hi - lo + 1, dtype=np.int64)
        np.cumsum(bound[lo:hi], out=slot_ptr[1:])
        counts, out_indices, out_data, passes = solve_grouped(
            local_indptr,
            local_indices,
            local_data,
            row_sqnorm,
            row_key,
            group_ptr,
            feature_ptr,
            features,
            problem_group[lo:hi],
            problems[lo:hi],
            slot_ptr,
            n_features,
            float(params.cp),
            float(params.cn),
            float(params.bias),
            int(params.max_iter),
            float(params.tol),
            float(params.threshold),
            BLOCK_SIZE,
            min(UNIT_SIZE, -(-(hi - lo) // threads)),  # at least one unit per thread
        )
        yield (problems[lo:hi], *compact_slots(slot_ptr, counts, out_indices, out_data), passes)


def _batches(bound: np.ndarray) -> list[tuple[int, int]]:
    """Split problems into consecutive batches whose weight slots fit MAX_SLOTS."""
    n = bound.shape[0]
    cumulative = np.cumsum(bound)
    batches = []
    lo = 0
    while lo < n:
        base = cumulative[lo - 1] if lo else 0
        hi = max(int(np.searchsorted(cumulative, base + MAX_SLOTS, side="right")), lo + 1)
        batches.append((lo, hi))
        lo = hi
    return batches
