"""HybridTree: the label tree, a character trie on top and balanced spherical k-means below.

The tree is built layer by layer over *positions*: ``label_order_`` is a permutation of the label
ids, and every node owns the contiguous slice ``label_order_[node_lo_[v]:node_hi_[v]]`` of it.
Trie nodes never reorder (their slice is exactly their label id range, because labels sharing a
prefix have contiguous ids); k-means only permutes inside the slice it splits. Since the nodes of
one layer own disjoint slices, sorting a layer by slice start numbers the nodes breadth-first with
the children of each node contiguous and in key order. See docs/architecture.md for the arrays.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numba
import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.preprocessing import normalize
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from indexer import kmeans
from indexer.labels import encode
from indexer.modelio import ModelFileError, load_array, read_params, save_params
from indexer.params import TreeParams

TRIE, CLUSTER, LABEL = 0, 1, 2

_ARRAYS = (
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
)


@numba.njit(cache=True)
def common_prefix_lengths(indptr: np.ndarray, chars: np.ndarray) -> np.ndarray:
    """Length of the common prefix of each label with the one before it; -1 for the first."""
    n = indptr.shape[0] - 1
    out = np.empty(n, dtype=np.int64)
    if n:
        out[0] = -1
    for i in range(1, n):
        a, b = indptr[i - 1], indptr[i]
        limit = min(indptr[i] - a, indptr[i + 1] - b)
        j = 0
        while j < limit and chars[a + j] == chars[b + j]:
            j += 1
        out[i] = j
    return out


class _Layer:
    """The nodes of one layer, sorted by the start of their slice."""

    def __init__(self, lo: np.ndarray, hi: np.ndarray, kind: np.ndarray, key_len: np.ndarray) -> None:
        order = np.argsort(lo, kind="stable")
        self.lo, self.hi, self.kind, self.key_len = lo[order], hi[order], kind[order], key_len[order]

    @classmethod
    def merge(cls, parts: list[tuple[np.ndarray, np.ndarray, int, np.ndarray | int]]) -> _Layer:
        lo = np.concatenate([p[0] for p in parts]).astype(np.int64)
        hi = np.concatenate([p[1] for p in parts]).astype(np.int64)
        kind = np.concatenate([np.full(len(p[0]), p[2], dtype=np.int8) for p in parts])
        key = np.concatenate([np.broadcast_to(np.asarray(p[3], dtype=np.int32), len(p[0])) for p in parts])
        return cls(lo, hi, kind, key)

    def __len__(self) -> int:
        return len(self.lo)


def first_scored_layer(n_trie_layers: int) -> int:
    """The top layer with scorers: any typed character fixes the first trie layer's node, so it
    has none (an empty prefix starts the beam at every first character, ``autocomplete.search``)."""
    return 2 if n_trie_layers >= 1 else 1


class HybridTree(BaseEstimator):
    """Label tree: ``trie_depth`` character-trie layers, then balanced spherical k-means.

    Parameters
    ----------
    trie_depth : int, default=1
        Trie layers below the root (node key = ``label[:depth]``). 0 gives a pure k-means tree;
        a depth beyond the longest label a pure trie (as deep as the longest label).
    branching : int, default=2
        Children per k-means node.
    max_leaf_size : int, default=32
        A cluster (or deepest trie node) with at most this many labels becomes a leaf: its
        children are label nodes.
    kmeans_iterations : int, default=20
        k-means rounds per split (fewer when the split stops changing).
    random_state : int, RandomState or None, default=0
        Seeds k-means; every node draws from its own seed, so a fixed value gives the same tree
        whatever the thread count.

    Attributes
    ----------
    n_trie_layers_ : int
        Trie layers actually built, ``min(trie_depth, longest label length)``.
    child_ptr_ : ndarray of int32, shape (n_nodes + 1,)
        Children of node ``v`` are ``child_ptr_[v]:child_ptr_[v + 1]``.
    parent_ : ndarray of int32, shape (n_nodes,)
        Parent of each node, -1 for the root.
    node_layer_ : ndarray of int32, shape (n_nodes,)
    layer_ptr_ : ndarray of int32, shape (n_layers + 1,)
        First node id of each layer.
    node_label_ : ndarray of int32, shape (n_nodes,)
        Label id of a label node, -1 for inner nodes.
    label_node_ : ndarray of int32, shape (n_labels,)
        The label node of each label.
    node_key_len_ : ndarray of int32, shape (n_nodes,)
        Length of a trie node's key (its labels all start with ``label[:key_len]`` of any of
        them), -1 for k-means and label nodes. The root is a trie node with key length 0.
    label_order_ : ndarray of int32, shape (n_labels,)
        Label ids ordered so that every node's labels are a contiguous slice.
    node_lo_, node_hi_ : ndarray of int32, shape (n_nodes,)
        The labels under node ``v`` are ``label_order_[node_lo_[v]:node_hi_[v]]``; for a trie node
        they are the label id range ``node_lo_[v]..node_hi_[v] - 1`` (in k-means order).
    """

    def __init__(
        self,
        *,
        trie_depth: int = 1,
        branching: int = 2,
        max_leaf_size: int = 32,
        kmeans_iterations: int = 20,
        random_state: int | np.random.RandomState | None = 0,
    ) -> None:
        self.trie_depth = trie_depth
        self.branching = branching
        self.max_leaf_size = max_leaf_size
        self.kmeans_iterations = kmeans_iterations
        self.random_state = random_state

    @classmethod
    def from_params(cls, params: TreeParams) -> HybridTree:
        return cls(
            trie_depth=params.trie_depth,
            branching=params.branching,
            max_leaf_size=params.max_leaf_size,
            kmeans_iterations=params.kmeans_iterations,
            random_state=params.random_state,
        )

    def _validate_params(self) -> None:
        for name, low in (
            ("trie_depth", 0),
            ("branching", 2),
            ("max_leaf_size", 1),
            ("kmeans_iterations", 1),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"HybridTree: {name} must be a whole number >= {low}, got {value!r}")

    def fit(self, labels: Sequence[str], embeddings: sp.spmatrix | sp.sparray) -> HybridTree:
        """Build the tree.

        Parameters
        ----------
        labels : sequence of str, length n_labels
            Label texts in label id order: distinct and sorted in code point order
            (``LabelSet.texts()``).
        embeddings : sparse matrix, shape (n_labels, n_features)
            One row per label (see ``indexer.embeddings.label_embeddings``); rows are
            L2-normalized here.

        Returns
        -------
        self : HybridTree
        """
        self._validate_params()
        labels = list(labels)
        n = len(labels)
        if n == 0:
            raise ValueError(
                "HybridTree.fit: no labels; the training log gave no label that passed the filters"
            )
        if any(a >= b for a, b in itertools.pairwise(labels)):
            raise ValueError(
                "HybridTree.fit: labels must be distinct and sorted in code point order "
                "(use LabelSet.texts())"
            )
        if not sp.issparse(embeddings) or embeddings.shape[0] != n:
            raise ValueError(
                f"HybridTree.fit: embeddings must be a sparse matrix with one row per label ({n}), "
                f"got {type(embeddings).__name__} of shape {getattr(embeddings, 'shape', None)}"
            )
        x = sp.csr_matrix(embeddings, dtype=np.float32, copy=True)  # one copy, normalized in place
        x.sort_indices()
        normalize(x, copy=False)
        indptr_x, indices_x = x.indptr.astype(np.int64, copy=False), x.indices.astype(np.int32, copy=False)
        rows = (indptr_x, indices_x, x.data, int(x.shape[1]))
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

        lengths = np.fromiter((len(s) for s in labels), dtype=np.int64, count=n)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        lcp = common_prefix_lengths(indptr, encode("".join(labels)))
        depth = int(min(self.trie_depth, lengths.max()))

        layers = self._trie_layers(lengths, lcp, depth)
        perm = np.arange(n, dtype=np.int32)
        self._kmeans_layers(layers, perm, rows, seed)
        self._assemble(layers, perm)
        self.n_trie_layers_ = depth
        return self

    @staticmethod
    def _trie_layers(lengths: np.ndarray, lcp: np.ndarray, depth: int) -> list[_Layer]:
        n = len(lengths)
        layers = [_Layer.merge([(np.array([0]), np.array([n]), TRIE, 0)])]
        for d in range(1, depth + 1):
            starts = np.flatnonzero(lcp < d)  # where label[:d] changes (or a shorter label sits)
            ends = np.append(starts[1:], n)
            keep = lengths[starts] >= d
            ended = np.flatnonzero(lengths == d - 1)  # labels ending at a trie node of the layer above
            layers.append(_Layer.merge([(starts[keep], ends[keep], TRIE, d), (ended, ended + 1, LABEL, -1)]))
        return layers

    def _kmeans_layers(
        self,
        layers: list[_Layer],
        perm: np.ndarray,
        rows: tuple[np.ndarray, np.ndarray, np.ndarray, int],
        seed: int,
    ) -> None:
        offset = sum(len(layer) for layer in layers[:-1])
        n_threads = numba.get_num_threads()
        while True:
            layer = layers[-1]
            grow = layer.kind != LABEL
            size = layer.hi - layer.lo
            leaf = grow & (size <= self.max_leaf_size)
            split = grow & (size > self.max_leaf_size)
            if not grow.any():
                return
            child_lo = child_hi = np.empty(0, dtype=np.int64)
            if split.any():
                bounds = kmeans.split_segments(
                    *rows,
                    perm,
                    layer.lo[split],
                    layer.hi[split],
                    kmeans.node_seeds(seed, self._seed_ids(len(layers) - 1, offset, np.flatnonzero(split))),
                    self.branching,
                    self.kmeans_iterations,
                    n_threads,
                )
                child_lo, child_hi = bounds[:, :-1].ravel(), bounds[:, 1:].ravel()
            real = child_hi >= 0
            kmeans.sort_segments(perm, layer.lo[leaf], layer.hi[leaf])
            starts, sizes = layer.lo[leaf], size[leaf]
            positions = np.arange(sizes.sum()) + np.repeat(starts - (np.cumsum(sizes) - sizes), sizes)
            offset += len(layer)
            layers.append(
                _Layer.merge(
                    [
                        (child_lo[real], child_hi[real], CLUSTER, -1),
                        (positions, positions + 1, LABEL, -1),
                    ]
                )
            )

    def _seed_ids(self, layer: int, offset: int, index: np.ndarray) -> np.ndarray:
        """The node ids k-means seeds from: ``index`` of the nodes of ``layer``, which starts at
        node ``offset`` (a shard of a larger tree maps them to the global ids, indexer.shards)."""
        return offset + index

    def _assemble(self, layers: list[_Layer], perm: np.ndarray) -> None:
        sizes = np.array([len(layer) for layer in layers], dtype=np.int64)
        layer_ptr = np.zeros(len(layers) + 1, dtype=np.int64)
        np.cumsum(sizes, out=layer_ptr[1:])
        n_nodes = int(layer_ptr[-1])
        lo = np.concatenate([layer.lo for layer in layers])
        hi = np.concatenate([layer.hi for layer in layers])
        kind = np.concatenate([layer.kind for layer in layers])
        parent = np.full(n_nodes, -1, dtype=np.int64)
        for i in range(1, len(layers)):
            above = layers[i - 1].lo
            parent[layer_ptr[i] : layer_ptr[i + 1]] = (
                layer_ptr[i - 1] + np.searchsorted(above, layers[i].lo, "right") - 1
            )
        child_ptr = np.ones(n_nodes + 1, dtype=np.int64)
        np.cumsum(np.bincount(parent[1:], minlength=n_nodes), out=child_ptr[1:])
        child_ptr[1:] += 1
        is_label = kind == LABEL
        node_label = np.full(n_nodes, -1, dtype=np.int32)
        node_label[is_label] = perm[lo[is_label]]
        label_node = np.empty(len(perm), dtype=np.int32)
        label_node[node_label[is_label]] = np.flatnonzero(is_label)

        self.child_ptr_ = child_ptr.astype(np.int32)
        self.parent_ = parent.astype(np.int32)
        self.node_layer_ = np.repeat(np.arange(len(layers), dtype=np.int32), sizes)
        self.layer_ptr_ = layer_ptr.astype(np.int32)
        self.node_label_ = node_label
        self.label_node_ = label_node
        self.node_key_len_ = np.concatenate([layer.key_len for layer in layers]).astype(np.int32)
        self.node_key_len_[kind != TRIE] = -1
        self.node_lo_ = lo.astype(np.int32)
        self.node_hi_ = hi.astype(np.int32)
        self.label_order_ = perm

    @property
    def n_nodes(self) -> int:
        check_is_fitted(self)
        return int(self.parent_.shape[0])

    @property
    def n_layers(self) -> int:
        check_is_fitted(self)
        return int(self.layer_ptr_.shape[0] - 1)

    def save(self, folder: str | Path) -> None:
        """Write one ``.npy`` per array, then ``params.json`` (so a folder with one is complete)."""
        check_is_fitted(self)
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name in _ARRAYS:
            np.save(folder / f"{name.rstrip('_')}.npy", np.ascontiguousarray(getattr(self, name)))
        params = self.get_params()
        if not isinstance(params["random_state"], (int, type(None))):
            params["random_state"] = None  # a RandomState object: its draws cannot be saved
        save_params(folder, type(self).__name__, params, summary=self._shape_summary())

    def _shape_summary(self) -> dict[str, Any]:
        return {
            "n_trie_layers": self.n_trie_layers_,
            "n_nodes": self.n_nodes,
            "n_layers": self.n_layers,
            "n_labels": int(self.label_node_.shape[0]),
        }

    @classmethod
    def load(cls, folder: str | Path, mmap: bool = True) -> HybridTree:
        """A fitted tree from ``folder``; arrays memory-mapped read-only unless ``mmap`` is false.

        Raises
        ------
        ModelFileError
            A file is missing, truncated, of another format version or disagrees in shape.
        """
        folder = Path(folder)
        body = read_params(folder, kind=cls.__name__)
        try:
            self = cls(**body["params"])
            summary = body["summary"]
            n_nodes, n_layers, n_labels = (int(summary[k]) for k in ("n_nodes", "n_layers", "n_labels"))
            n_trie_layers = int(summary["n_trie_layers"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(
                f"{folder / 'params.json'} lacks tree parameters or shapes ({exc}): rebuild the model."
            ) from exc
        expected = {
            "child_ptr_": n_nodes + 1,
            "layer_ptr_": n_layers + 1,
            "label_node_": n_labels,
            "label_order_": n_labels,
        }
        for name in _ARRAYS:
            path = folder / f"{name.rstrip('_')}.npy"
            array = load_array(path, mmap=mmap)
            length = expected.get(name, n_nodes)
            if array.dtype != np.int32 or array.shape != (length,):
                raise ModelFileError(
                    f"{path} holds {array.dtype} {array.shape}, expected int32 ({length},) as "
                    "params.json says: the model folder is corrupt, rebuild it."
                )
            setattr(self, name, array)
        self.n_trie_layers_ = n_trie_layers
        return self
