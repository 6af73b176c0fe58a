"""Prefix-constrained beam search over the hybrid label tree: one numba kernel per query.

The typed prefix fixes the path through the trie layers, so the search starts at the ancestor, on
layer ``min(len(prefix), trie_depth)``, of the labels ``[lo, hi)`` that start with the prefix;
nothing above it is scored (the first trie layer has no scorers at all: an empty prefix starts
at every one of its nodes). Below it, when the prefix is longer than the trie, only nodes that
hold at least one of those labels may enter the beam. Each layer keeps the ``beam`` best nodes by
path score, the product of PECOS's l3-hinge transform ``exp(-max(0, 1 - w.x) ** 3)`` of the node
scores along the path; label nodes reached are candidates, scored with their own column (PECOS's
ranker layer). When the beam has reached fewer than ``min(k, hi - lo)`` labels, the search goes on
best-first from the nodes the beam dropped until it has enough, so an answer is never short.
Every returned label lies in ``[lo, hi)``: completions always start with the prefix.
"""

from __future__ import annotations

import threading
from typing import Any, NamedTuple

import numba
import numpy as np
import scipy.sparse as sp

from indexer.language import gallop

_EMPTY_LABELS = np.empty(0, dtype=np.int32)
_EMPTY_SCORES = np.empty(0, dtype=np.float32)
_EMPTY_LABELS.flags.writeable = False
_EMPTY_SCORES.flags.writeable = False


# how a search below the trie tells which inner nodes hold a label that starts with the prefix
_CHECK_NONE = 0  # all of them: every label under the start node matches
_CHECK_MARK = 1  # stamped in ``mark`` beforehand, walking up from each matching label
_CHECK_SCAN = 2  # the node's labels scanned when it comes up, when the matches are this common:
_SCAN_SHARE = 8  # at least 1 / _SCAN_SHARE of the labels under the start node

# a column with more than this many weights per query feature is searched for the query's features
# (binary search) instead of scanned whole against the scattered query
_SEARCH_RATIO = 8


# fast math without reassociation: the scan adds in feature order like the search, so a node's
# score does not depend on which of the two computed it
@numba.njit(cache=True, fastmath={"nnan", "ninf", "nsz", "arcp", "contract", "afn"})
def _node_score(start, end, w_idx, w_val, q_idx, q_val, dense, bits):  # type: ignore[no-untyped-def]
    """l3-hinge of the dot product of a node's weight column ``[start, end)`` with the query.

    A short column is scanned against the scattered query: a bit per feature in ``bits`` (small
    enough to stay in the first cache level) says which of its weights to read and multiply with
    ``dense``, so the scan reads the column in order and little else; a long one (the upper
    k-means layers hold thousands of weights) is searched for each query feature in turn,
    galloping from the previous hit (the query's few features are far apart in a long column,
    so the hits are too). Both add the same products in feature order.
    """
    acc = np.float32(0.0)
    if end - start <= _SEARCH_RATIO * q_idx.shape[0]:
        for p in range(start, end):
            f = w_idx[p]
            if (bits[f >> 6] >> (f & 63)) & 1:
                acc += w_val[p] * dense[f]
    else:
        for t in range(q_idx.shape[0]):
            feature = q_idx[t]
            a = gallop(w_idx, start, end, feature)
            if a == end:
                break
            if w_idx[a] == feature:
                acc += w_val[a] * q_val[t]
                a += 1
            start = a
    z = np.float32(1.0) - acc
    if z < 0:
        z = np.float32(0.0)
    return np.float32(np.exp(-z * z * z))


@numba.njit(cache=True)
def _holds_match(node, first, end, lo, hi, check, label_order, mark, stamp):  # type: ignore[no-untyped-def]
    """Whether inner node ``node`` (its labels ``label_order[first:end]``) holds a label of
    ``[lo, hi)``: by ``check`` 0 every node does, 1 its ``mark`` entry says so, 2 its labels are
    scanned until one matches."""
    if check == _CHECK_NONE:
        return True
    if check == _CHECK_MARK:
        return mark[node] == stamp
    for i in range(first, end):
        label = label_order[i]
        if label >= lo and label < hi:
            return True
    return False


@numba.njit(cache=True)
def _heap_push(nodes, scores, size, node, score):  # type: ignore[no-untyped-def]
    """Push onto a max-heap of (score, node) held in two arrays; grows them when full."""
    if size == nodes.shape[0]:
        bigger_nodes = np.empty(2 * size, dtype=nodes.dtype)
        bigger_scores = np.empty(2 * size, dtype=scores.dtype)
        bigger_nodes[:size] = nodes
        bigger_scores[:size] = scores
        nodes, scores = bigger_nodes, bigger_scores
    i = size
    while i > 0:
        up = (i - 1) // 2
        if scores[up] >= score:
            break
        nodes[i] = nodes[up]
        scores[i] = scores[up]
        i = up
    nodes[i] = node
    scores[i] = score
    return nodes, scores, size + 1


@numba.njit(cache=True)
def _heap_pop(nodes, scores, size):  # type: ignore[no-untyped-def]
    """Remove the best entry; returns (node, score, new size)."""
    top_node, top_score = nodes[0], scores[0]
    size -= 1
    last_node, last_score = nodes[size], scores[size]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and scores[child + 1] > scores[child]:
            child += 1
        if scores[child] <= last_score:
            break
        nodes[i] = nodes[child]
        scores[i] = scores[child]
        i = child
    if size > 0:
        nodes[i] = last_node
        scores[i] = last_score
    return top_node, top_score, size


@numba.njit(cache=True)
def _insert_top(top_labels, top_scores, n_top, label, score):  # type: ignore[no-untyped-def]
    """Keep the ``len(top_labels)`` best (score descending, then label ascending) in sorted arrays."""
    k = top_labels.shape[0]
    i = n_top
    if n_top == k:
        last = k - 1
        if score < top_scores[last] or (score == top_scores[last] and label > top_labels[last]):
            return n_top
        i = last
    else:
        n_top += 1
    while i > 0 and (score > top_scores[i - 1] or (score == top_scores[i - 1] and label < top_labels[i - 1])):
        top_labels[i] = top_labels[i - 1]
        top_scores[i] = top_scores[i - 1]
        i -= 1
    top_labels[i] = label
    top_scores[i] = score
    return n_top


# the columns of FlatTree.nodes: what the search reads of a node, side by side in one row (32 bytes,
# two siblings to a cache line) rather than in six arrays, six cache misses a node on a cold cache
_CHILD_START, _CHILD_END, _LABEL, _FIRST, _END, _W_START, _W_END = range(7)
_NODE_COLUMNS = 8


class FlatTree(NamedTuple):
    """One model's tree and node weights as the arrays the kernel reads (see docs/architecture.md).

    ``nodes`` (int32, n_nodes x 8): per node its children ``[child_ptr[v], child_ptr[v + 1])``,
    its label (-1 for an inner node), its labels' span ``[node_lo, node_hi)`` of ``label_order``
    and its weight column ``[w_ptr[v], w_ptr[v + 1])`` of ``w_idx``/``w_val`` (CSC weights,
    sorted row indices); the rest are ``indexer.tree.HybridTree``'s arrays; ``trie_depth`` the
    number of trie layers.
    """

    nodes: np.ndarray
    w_idx: np.ndarray
    w_val: np.ndarray
    parent: np.ndarray
    node_layer: np.ndarray
    label_node: np.ndarray
    label_order: np.ndarray
    trie_depth: int


@numba.njit(cache=True, fastmath=True)
def beam_search(tree, q_idx, q_val, lo, hi, prefix_len, beam, k, dense, bits, mark, stamp):  # type: ignore[no-untyped-def]
    """The ``k`` best labels in ``[lo, hi)`` for one query, best first: (label ids, scores).

    ``tree``: a :class:`FlatTree`. ``q_idx``/``q_val``: the query's sparse features (bias
    included), indices strictly increasing. ``dense`` (float32, n_features) and ``bits`` (uint64,
    one bit per feature): all-zero scratch, left all-zero on return. ``mark`` (int32, n_nodes):
    scratch where this call sets the inner nodes holding a match to ``stamp``; give every call a
    stamp no entry of ``mark`` holds yet.
    """
    n_features = dense.shape[0]
    for i in range(q_idx.shape[0]):
        if q_idx[i] < 0 or q_idx[i] >= n_features:
            raise ValueError("beam_search: a query feature index is outside the weight matrix")
        if i > 0 and q_idx[i] <= q_idx[i - 1]:
            raise ValueError("beam_search: query feature indices must be strictly increasing")
    if hi <= lo or k <= 0:
        return np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float32)
    beam = max(beam, 1)
    for i in range(q_idx.shape[0]):
        dense[q_idx[i]] = q_val[i]
        bits[q_idx[i] >> 6] |= np.uint64(1) << np.uint64(q_idx[i] & 63)
    # unpacked once: helpers in the loops below take plain arrays (handing them the tuple, or moving the
    # child expansion into a helper or a single loop, measured 1.7-2.8x slower on aol1k)
    nodes, w_idx, w_val, parent, node_layer, label_node, label_order, trie_depth = tree

    start = label_node[lo]
    start_layer = min(prefix_len, trie_depth)
    while node_layer[start] > start_layer:
        start = parent[start]
    check = _CHECK_NONE
    n_start = nodes[start, _END] - nodes[start, _FIRST]
    if prefix_len > trie_depth and hi - lo < n_start:
        check = _CHECK_SCAN if (hi - lo) * _SCAN_SHARE >= n_start else _CHECK_MARK
    if check == _CHECK_MARK:  # stamp the inner nodes between the start and a matching label
        for j in range(lo, hi):
            v = parent[label_node[j]]
            while v != start and mark[v] != stamp:
                mark[v] = stamp
                v = parent[v]

    need = min(k, hi - lo)
    top_labels = np.empty(need, dtype=np.int32)
    top_scores = np.empty(need, dtype=np.float32)
    n_top = 0
    n_found = 0
    pending_nodes = np.empty(64, dtype=np.int64)
    pending_scores = np.empty(64, dtype=np.float32)
    n_pending = 0

    if prefix_len == 0 and trie_depth >= 1:  # the first trie layer has no scorers: start at all of it
        n_cur = nodes[start, _CHILD_END] - nodes[start, _CHILD_START]
        cur_nodes = np.arange(nodes[start, _CHILD_START], nodes[start, _CHILD_END]).astype(np.int64)
    else:
        n_cur = 1
        cur_nodes = np.full(1, start, dtype=np.int64)
    cur_scores = np.ones(n_cur, dtype=np.float32)
    while n_cur > 0:  # one layer per pass
        width = 0
        for b in range(n_cur):
            width += nodes[cur_nodes[b], _CHILD_END] - nodes[cur_nodes[b], _CHILD_START]
        next_nodes = np.empty(width, dtype=np.int64)
        next_scores = np.empty(width, dtype=np.float32)
        m = 0
        for b in range(n_cur):
            v = cur_nodes[b]
            for c in range(nodes[v, _CHILD_START], nodes[v, _CHILD_END]):
                row = nodes[c]
                label = row[_LABEL]
                if label >= 0:
                    if label < lo or label >= hi:
                        continue
                elif not _holds_match(c, row[_FIRST], row[_END], lo, hi, check, label_order, mark, stamp):
                    continue
                score = cur_scores[b] * _node_score(
                    row[_W_START], row[_W_END], w_idx, w_val, q_idx, q_val, dense, bits
                )
                if label >= 0:
                    n_top = _insert_top(top_labels, top_scores, n_top, label, score)
                    n_found += 1
                else:
                    next_nodes[m] = c
                    next_scores[m] = score
                    m += 1
        if m <= beam:
            cur_nodes, cur_scores, n_cur = next_nodes, next_scores, m
        else:
            order = np.argsort(-next_scores[:m], kind="mergesort")
            cur_nodes = next_nodes[order[:beam]]
            cur_scores = next_scores[order[:beam]]
            n_cur = beam
            for r in range(beam, m):
                pending_nodes, pending_scores, n_pending = _heap_push(
                    pending_nodes, pending_scores, n_pending, next_nodes[order[r]], next_scores[order[r]]
                )

    while n_found < need and n_pending > 0:  # widen: best dropped node first
        v, path_score, n_pending = _heap_pop(pending_nodes, pending_scores, n_pending)
        for c in range(nodes[v, _CHILD_START], nodes[v, _CHILD_END]):
            row = nodes[c]
            label = row[_LABEL]
            if label >= 0:
                if label < lo or label >= hi:
                    continue
            elif not _holds_match(c, row[_FIRST], row[_END], lo, hi, check, label_order, mark, stamp):
                continue
            score = path_score * _node_score(
                row[_W_START], row[_W_END], w_idx, w_val, q_idx, q_val, dense, bits
            )
            if label >= 0:
                n_top = _insert_top(top_labels, top_scores, n_top, label, score)
                n_found += 1
            else:
                pending_nodes, pending_scores, n_pending = _heap_push(
                    pending_nodes, pending_scores, n_pending, c, score
                )

    for i in range(q_idx.shape[0]):
        dense[q_idx[i]] = 0.0
        bits[q_idx[i] >> 6] = 0
    return top_labels[:n_top].copy(), top_scores[:n_top].copy()


@numba.njit(cache=True, nogil=True)
def rerank_by_count(
    ids: np.ndarray, log_scores: np.ndarray, log_counts: np.ndarray, weight: float, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The best ``n`` of the labels ``ids`` by ``log_scores + weight * log_counts[ids]`` (ties
    keep their order): their ids, that sum (float64) and their log score."""
    ranked = np.empty(ids.shape[0], dtype=np.float64)
    for i in range(ids.shape[0]):
        ranked[i] = np.float64(log_scores[i]) + weight * log_counts[ids[i]]
    order = np.argsort(-ranked, kind="mergesort")[:n]
    return ids[order], ranked[order], log_scores[order]


def _aligned_rows(n: int, width: int) -> np.ndarray:
    """Zeroed int32 rows starting on a cache line (64 bytes), so no 32-byte row straddles two."""
    buffer = np.zeros(n * width + 16, dtype=np.int32)
    skip = (-buffer.ctypes.data % 64) // 4
    return buffer[skip : skip + n * width].reshape(n, width)


def _frozen(array: Any, dtype: Any) -> np.ndarray:
    """A read-only, C-contiguous plain ndarray view (a copy only when the dtype differs), so every
    model compiles to one kernel specialization whether its arrays are memory-mapped or not."""
    out = np.asarray(np.ascontiguousarray(array, dtype=dtype)).view()
    out.flags.writeable = False
    return out


class BeamSearcher:
    """Prefix-constrained beam search over one model's node weights and tree arrays.

    Parameters
    ----------
    weights : scipy.sparse matrix, shape (n_features, n_nodes)
        One weight column per tree node (column 0, the root, is unused); the last feature is the bias.
    child_ptr, parent, node_layer, node_label, label_node, node_lo, node_hi, label_order : array-like
        The tree as in docs/architecture.md (``indexer.tree.HybridTree``'s arrays).
    trie_depth : int
        Number of trie layers below the root.

    Thread-safe: each thread gets its own scratch arrays.
    """

    def __init__(
        self,
        weights: sp.spmatrix | sp.sparray,
        *,
        child_ptr: np.ndarray,
        parent: np.ndarray,
        node_layer: np.ndarray,
        node_label: np.ndarray,
        label_node: np.ndarray,
        node_lo: np.ndarray,
        node_hi: np.ndarray,
        label_order: np.ndarray,
        trie_depth: int,
    ) -> None:
        csc = sp.csc_matrix(weights)
        n_nodes = len(parent)
        if csc.shape[1] != n_nodes or len(child_ptr) != n_nodes + 1:
            raise ValueError(
                f"BeamSearcher: weights have {csc.shape[1]} columns and child_ptr {len(child_ptr)} entries "
                f"for a tree of {n_nodes} nodes; expected one column per node and n_nodes + 1 pointers"
            )
        if len(node_lo) != n_nodes or len(node_hi) != n_nodes or len(label_order) != len(label_node):
            raise ValueError(
                f"BeamSearcher: node_lo/node_hi have {len(node_lo)}/{len(node_hi)} entries for "
                f"{n_nodes} nodes and label_order {len(label_order)} for {len(label_node)} labels; "
                "pass the tree's own arrays"
            )
        if not csc.has_sorted_indices:
            csc = csc.sorted_indices()
        self.n_features = int(csc.shape[0])
        self.n_nodes = n_nodes
        self.n_labels = len(label_node)
        self.trie_depth = int(trie_depth)
        if csc.nnz >= 2**31:  # node ids and label ids are int32 already
            raise ValueError(
                f"BeamSearcher: {csc.nnz} weights exceed the 32-bit column offsets of the node rows; "
                "train with fewer input features ([features] max_features)"
            )
        nodes = _aligned_rows(n_nodes, _NODE_COLUMNS)
        nodes[:, _CHILD_START], nodes[:, _CHILD_END] = child_ptr[:-1], child_ptr[1:]
        nodes[:, _LABEL], nodes[:, _FIRST], nodes[:, _END] = node_label, node_lo, node_hi
        nodes[:, _W_START], nodes[:, _W_END] = csc.indptr[:-1], csc.indptr[1:]
        nodes.flags.writeable = False
        self.tree = FlatTree(
            nodes,
            _frozen(csc.indices, np.int32),
            _frozen(csc.data, np.float32),
            _frozen(parent, np.int32),
            _frozen(node_layer, np.int32),
            _frozen(label_node, np.int32),
            _frozen(label_order, np.int32),
            self.trie_depth,
        )
        self._local = threading.local()

    @classmethod
    def from_tree(cls, weights: sp.spmatrix | sp.sparray, tree: Any) -> BeamSearcher:
        """From a fitted ``indexer.tree.HybridTree`` (its ``*_`` arrays)."""
        return cls(
            weights,
            child_ptr=tree.child_ptr_,
            parent=tree.parent_,
            node_layer=tree.node_layer_,
            node_label=tree.node_label_,
            label_node=tree.label_node_,
            node_lo=tree.node_lo_,
            node_hi=tree.node_hi_,
            label_order=tree.label_order_,
            trie_depth=tree.n_trie_layers_,
        )

    def _scratch(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """This thread's scratch arrays and a stamp that no entry of its mark array holds."""
        local = self._local
        try:
            local.stamp += 1
        except AttributeError:
            local.dense = np.zeros(self.n_features, dtype=np.float32)
            local.bits = np.zeros((self.n_features + 63) // 64, dtype=np.uint64)
            local.mark = np.zeros(self.n_nodes, dtype=np.int32)
            local.stamp = 1
        if local.stamp == np.iinfo(np.int32).max:
            local.mark[:] = 0
            local.stamp = 1
        return local.dense, local.bits, local.mark, local.stamp

    def search(
        self,
        indices: np.ndarray,
        data: np.ndarray,
        lo: int,
        hi: int,
        prefix_len: int,
        beam: int = 10,
        k: int = 10,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``min(k, hi - lo)`` best labels of ``[lo, hi)``: (label ids int32, scores float32),
        best first. ``indices``/``data``: the query's features, bias included, indices strictly
        increasing."""
        if not 0 <= lo <= hi <= self.n_labels:
            raise ValueError(
                f"BeamSearcher.search: label range [{lo}, {hi}) is not within [0, {self.n_labels})"
            )
        if lo == hi:
            return _EMPTY_LABELS, _EMPTY_SCORES
        dense, bits, mark, stamp = self._scratch()
        return beam_search(  # type: ignore[no-any-return]
            self.tree,
            np.ascontiguousarray(indices, dtype=np.int32),
            np.ascontiguousarray(data, dtype=np.float32),
            lo,
            hi,
            prefix_len,
            beam,
            k,
            dense,
            bits,
            mark,
            stamp,
        )

    def warm_up(self) -> None:
        """Compile the kernel (a no-op after the first time in a process) and touch the model."""
        warm_up()
        if self.n_labels:
            self.search(np.zeros(1, dtype=np.int32), np.zeros(1, dtype=np.float32), 0, self.n_labels, 0, 1, 1)


def warm_up() -> None:
    """Compile :func:`beam_search` for the array types :class:`BeamSearcher` passes, on a tiny tree."""
    # root -> one trie node -> two label nodes; one feature
    searcher = BeamSearcher(
        sp.csc_matrix(np.ones((1, 4), dtype=np.float32)),
        child_ptr=np.array([1, 2, 4, 4, 4]),
        parent=np.array([-1, 0, 1, 1]),
        node_layer=np.array([0, 1, 2, 2]),
        node_label=np.array([-1, -1, 0, 1]),
        label_node=np.array([2, 3]),
        node_lo=np.array([0, 0, 0, 1]),
        node_hi=np.array([2, 2, 1, 2]),
        label_order=np.array([0, 1]),
        trie_depth=1,
    )
    searcher.search(np.zeros(1, dtype=np.int32), np.ones(1, dtype=np.float32), 0, 2, 2, 1, 2)
