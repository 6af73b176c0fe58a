"""numba kernels: balanced spherical k-means over sparse, L2-normalized rows, parallel over nodes.

One call of :func:`split_segments` splits every node of one tree layer. A node is a segment
``perm[lo:hi]`` of row ids; the kernel reorders each segment in place so that its children are
contiguous sub-segments, and returns their bounds. Children differ in size by at most one:

* ``k = 2`` (PECOS): rows sorted by the difference of their two centroid similarities, the first
  ``ceil(n / 2)`` go to child 0;
* ``k > 2``: (row, child) pairs taken greedily by decreasing similarity, each child filled up to
  its capacity.

Spherical: centroids are normalized means and similarity is the dot product. The split returned
is the best (largest ``sum_c ||sum of rows in c||``) seen over the iterations, so it is never
worse than the split of the initial centroids. Every node draws its initial centroids from its
own seed (:func:`node_seeds`), so the result does not depend on how threads are scheduled.

Memory per concurrently processed node: the node's rows re-indexed to the columns they use, and
``k x (columns used)`` float32 centroids; plus one column map of ``n_features`` per thread.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _splitmix64(state: np.uint64) -> tuple[np.uint64, np.uint64]:
    """One step of SplitMix64: (next state, 64 random bits)."""
    state = state + np.uint64(0x9E3779B97F4A7C15)
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return state, z ^ (z >> np.uint64(31))


@numba.njit(cache=True)
def node_seeds(random_state: int, node_ids: np.ndarray) -> np.ndarray:
    """A 64-bit seed per node, a pure function of ``random_state`` and the node id."""
    out = np.empty(node_ids.shape[0], dtype=np.uint64)
    for i in range(node_ids.shape[0]):
        state = np.uint64(random_state) * np.uint64(0x100000001B3) + np.uint64(node_ids[i])
        state, _ = _splitmix64(state)
        _, out[i] = _splitmix64(state)
    return out


@numba.njit(cache=True)
def initial_rows(n: int, k: int, seed: np.uint64) -> np.ndarray:
    """``k`` distinct positions in ``range(n)`` drawn from ``seed``: the initial centroids."""
    idx = np.arange(n)
    state = np.uint64(seed)
    for c in range(k):
        state, r = _splitmix64(state)
        j = c + np.int64(r % np.uint64(n - c))
        idx[c], idx[j] = idx[j], idx[c]
    return idx[:k].copy()


@numba.njit(cache=True)
def child_sizes(n: int, k: int) -> np.ndarray:
    """Balanced sizes of ``k`` children of ``n`` rows; the first ``n % k`` get one more."""
    sizes = np.full(k, n // k, dtype=np.int64)
    sizes[: n % k] += 1
    return sizes


@numba.njit(cache=True, fastmath=True)
def _similarities(lptr: np.ndarray, lcol: np.ndarray, lval: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    n = lptr.shape[0] - 1
    k = centroids.shape[0]
    sims = np.zeros((n, k), dtype=np.float32)
    for i in range(n):
        for p in range(lptr[i], lptr[i + 1]):
            col = lcol[p]
            v = lval[p]
            for c in range(k):
                sims[i, c] += v * centroids[c, col]
    return sims


@numba.njit(cache=True, fastmath=True)
def _difference(lptr: np.ndarray, lcol: np.ndarray, lval: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """``sim(row, centroid 1) - sim(row, centroid 0)`` of every row, one dot product each."""
    delta = centroids[1] - centroids[0]
    n = lptr.shape[0] - 1
    diff = np.zeros(n, dtype=np.float32)
    for i in range(n):
        acc = np.float32(0.0)
        for p in range(lptr[i], lptr[i + 1]):
            acc += lval[p] * delta[lcol[p]]
        diff[i] = acc
    return diff


@numba.njit(cache=True)
def _assign_two(diff: np.ndarray) -> np.ndarray:
    """Two balanced children: the ``ceil(n / 2)`` rows leaning most to centroid 0 go to child 0."""
    n = diff.shape[0]
    order = np.argsort(diff, kind="mergesort")
    assign = np.empty(n, dtype=np.int32)
    first = (n + 1) // 2
    for r in range(n):
        assign[order[r]] = 0 if r < first else 1
    return assign


@numba.njit(cache=True)
def balanced_assign(sims: np.ndarray) -> np.ndarray:
    """Child of each row under the balance constraint, from the (n x k) similarities."""
    n, k = sims.shape
    if k == 2:
        diff = np.empty(n, dtype=np.float32)
        for i in range(n):
            diff[i] = sims[i, 1] - sims[i, 0]
        return _assign_two(diff)
    sizes = child_sizes(n, k)
    assign = np.empty(n, dtype=np.int32)
    flat = np.empty(n * k, dtype=np.float32)
    for i in range(n):
        for c in range(k):
            flat[i * k + c] = -sims[i, c]
    order = np.argsort(flat, kind="mergesort")
    assign[:] = -1
    room = sizes.copy()
    left = n
    for q in order:
        i = q // k
        c = q % k
        if assign[i] < 0 and room[c] > 0:
            assign[i] = c
            room[c] -= 1
            left -= 1
            if left == 0:
                break
    return assign


@numba.njit(cache=True)
def _assign(lptr: np.ndarray, lcol: np.ndarray, lval: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    if centroids.shape[0] == 2:
        return _assign_two(_difference(lptr, lcol, lval, centroids))
    return balanced_assign(_similarities(lptr, lcol, lval, centroids))


@numba.njit(cache=True, fastmath=True)
def _update_centroids(
    lptr: np.ndarray, lcol: np.ndarray, lval: np.ndarray, assign: np.ndarray, centroids: np.ndarray
) -> float:
    """Centroids := normalized sums of their rows; returns the objective ``sum_c ||sum_c||``."""
    k, m = centroids.shape
    centroids[:] = 0.0
    for i in range(lptr.shape[0] - 1):
        c = assign[i]
        for p in range(lptr[i], lptr[i + 1]):
            centroids[c, lcol[p]] += lval[p]
    objective = 0.0
    for c in range(k):
        sq = 0.0
        for j in range(m):
            sq += np.float64(centroids[c, j]) * centroids[c, j]
        norm = np.sqrt(sq)
        objective += norm
        if norm > 0.0:
            scale = np.float32(1.0 / norm)
            for j in range(m):
                centroids[c, j] *= scale
    return objective


@numba.njit(cache=True)
def _split_segment(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    perm: np.ndarray,
    lo: int,
    hi: int,
    branching: int,
    iterations: int,
    seed: np.uint64,
    colmap: np.ndarray,
    bounds: np.ndarray,
) -> None:
    n = hi - lo
    k = min(branching, n)
    nnz = 0
    for r in range(lo, hi):
        nnz += indptr[perm[r] + 1] - indptr[perm[r]]
    # the node's rows, re-indexed to the m columns they use
    lptr = np.zeros(n + 1, dtype=np.int64)
    lcol = np.empty(nnz, dtype=np.int32)
    lval = np.empty(nnz, dtype=np.float32)
    used = np.empty(nnz, dtype=np.int32)
    m = 0
    p_out = 0
    for i in range(n):
        row = perm[lo + i]
        for p in range(indptr[row], indptr[row + 1]):
            col = indices[p]
            if colmap[col] < 0:
                colmap[col] = m
                used[m] = col
                m += 1
            lcol[p_out] = colmap[col]
            lval[p_out] = data[p]
            p_out += 1
        lptr[i + 1] = p_out
    for j in range(m):
        colmap[used[j]] = -1

    centroids = np.zeros((k, m), dtype=np.float32)
    for c, i in enumerate(initial_rows(n, k, seed)):
        for p in range(lptr[i], lptr[i + 1]):
            centroids[c, lcol[p]] = lval[p]
    best = _assign(lptr, lcol, lval, centroids)
    best_objective = _update_centroids(lptr, lcol, lval, best, centroids)
    assign = best
    for _ in range(iterations - 1):
        new = _assign(lptr, lcol, lval, centroids)
        if np.array_equal(new, assign):
            break
        assign = new
        objective = _update_centroids(lptr, lcol, lval, assign, centroids)
        if objective > best_objective:
            best_objective = objective
            best = assign

    rows = perm[lo:hi].copy()
    order = np.argsort(best, kind="mergesort")
    for r in range(n):
        perm[lo + r] = rows[order[r]]
    sizes = child_sizes(n, k)
    bounds[0] = lo
    for c in range(k):
        bounds[c + 1] = bounds[c] + sizes[c]


@numba.njit(cache=True, parallel=True)
def split_segments(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    n_features: int,
    perm: np.ndarray,
    seg_lo: np.ndarray,
    seg_hi: np.ndarray,
    seeds: np.ndarray,
    branching: int,
    iterations: int,
    n_threads: int,
) -> np.ndarray:
    """Split every segment ``perm[seg_lo[s]:seg_hi[s]]`` (each of at least 2 rows) in place.

    Parameters
    ----------
    indptr, indices, data : CSR arrays of the L2-normalized rows (int64, int32, float32).
    n_features : number of columns.
    perm : int32 row ids; segments are disjoint and reordered in place.
    seg_lo, seg_hi : int64 segment bounds.
    seeds : uint64 seed per segment (see :func:`node_seeds`).
    branching, iterations : children per segment (at most the segment size) and k-means rounds.
    n_threads : work lists to deal the segments to (``numba.get_num_threads()``); the result
        does not depend on it.

    Returns
    -------
    bounds : int64 array (n_segments, branching + 1); row s holds ``lo, end of child 0, ...``,
        padded with -1 when a segment has fewer than ``branching`` rows.
    """
    n_seg = seg_lo.shape[0]
    bounds = np.full((n_seg, branching + 1), -1, dtype=np.int64)
    # segments sorted by size, dealt round-robin to one work list per thread: balanced and
    # independent of scheduling, since every segment only reads its own rows and seed
    order = np.argsort(-(seg_hi - seg_lo), kind="mergesort")
    n_chunks = max(1, min(n_seg, n_threads))
    for chunk in numba.prange(n_chunks):
        colmap = np.full(n_features, -1, dtype=np.int32)
        for q in range(chunk, n_seg, n_chunks):
            s = order[q]
            _split_segment(
                indptr,
                indices,
                data,
                perm,
                seg_lo[s],
                seg_hi[s],
                branching,
                iterations,
                seeds[s],
                colmap,
                bounds[s],
            )
    return bounds


@numba.njit(cache=True, parallel=True)
def sort_segments(perm: np.ndarray, seg_lo: np.ndarray, seg_hi: np.ndarray) -> None:
    """Sort each segment ``perm[seg_lo[s]:seg_hi[s]]`` in place (leaf clusters in label order)."""
    for s in numba.prange(seg_lo.shape[0]):
        perm[seg_lo[s] : seg_hi[s]] = np.sort(perm[seg_lo[s] : seg_hi[s]])
