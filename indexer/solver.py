"""numba kernels: L2-regularized squared-hinge linear classifiers by dual coordinate descent.

This is the solver of LIBLINEAR (``solve_l2r_l1l2_svc`` with the L2 loss) and of PECOS
XR-Linear: for one problem with examples ``x_i``, signs ``y_i`` in {+1, -1} and costs ``C_i``
(``cp`` for positives, ``cn`` for negatives) it minimizes

    1/2 ||w||^2 + sum_i C_i max(0, 1 - y_i w.x_i)^2

through its dual, one coordinate ``alpha_i`` at a time, with LIBLINEAR's shrinking and stopping
rule: the solve ends after a pass whose projected gradients spread by at most ``tol``
(``max PG - min PG``), or after ``max_iter`` passes. Unlike LIBLINEAR, which reshuffles every
pass, rows are visited in their storage order, which callers shuffle once
(:func:`shuffle_within_groups`): passes then stream through memory instead of jumping.

Problems come in **groups** that share their examples (in a label tree, the children of one
node are trained on the same examples: those under the node). A group is a range of rows of a
*local* CSR matrix whose feature ids are renumbered densely within the group
(:func:`build_groups`), so each problem works on a small dense weight vector that stays in cache.
A problem is ``(group, key)``: its positives are the group's rows whose ``row_key`` equals
``key``, every other row of the group is a negative. An optional constant feature of value
``bias`` is appended to every example; its weight is returned as global feature ``n_features``.

Kernels take plain arrays (CSR ``indptr`` int64, ``indices`` int32, ``data`` float32) and return
plain arrays; ``indexer.training`` is their SciPy-facing caller.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

# Every fast-math flag except nnan/ninf: the solver compares against infinities.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

# Problems with fewer rows visit them in a fully random order (one full reshuffle per pass).
BLOCKED_MIN_ROWS = 4096

_LCG_MUL = np.uint64(6364136223846793005)
_LCG_ADD = np.uint64(1442695040888963407)


@numba.njit(cache=True)
def _next_random(state: np.uint64) -> np.uint64:
    """One step of a 64-bit linear congruential generator (deterministic per problem)."""
    return state * _LCG_MUL + _LCG_ADD


@numba.njit(cache=True)
def _shuffle(values: np.ndarray, count: int, state: np.uint64) -> np.uint64:
    """Fisher-Yates shuffle of ``values[:count]``; returns the generator's new state."""
    for s in range(count - 1):
        state = _next_random(state)
        t = s + np.int64((state >> np.uint64(33)) % np.uint64(count - s))
        values[s], values[t] = values[t], values[s]
    return state


@numba.njit(cache=True, parallel=True)
def build_groups(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    rows: np.ndarray,
    group_ptr: np.ndarray,
    n_features: int,
    n_chunks: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gather the example rows of every group into one CSR with group-local feature ids.

    Parameters
    ----------
    indptr, indices, data : CSR of the examples (int64, int32, float32), sorted indices.
    rows : int64 array, the example id of each local row; group ``g`` owns local rows
        ``group_ptr[g] .. group_ptr[g + 1]``.
    group_ptr : int64 array of length ``n_groups + 1``.
    n_features : number of columns of the examples' matrix.
    n_chunks : groups are handed out to this many parallel workers (each holds two arrays of
        ``n_features`` entries); a few per thread balances the load.

    Each group's rows are read twice (discover its features, then write its local rows); the
    features are found into an int32 scratch as long as the local entries.

    Returns
    -------
    local_indptr, local_indices, local_data : the local rows as CSR; ``local_indices`` are
        local feature ids, sorted within each row.
    feature_ptr, features : group ``g``'s local feature ``j`` is global feature
        ``features[feature_ptr[g] + j]``; ascending within a group.
    """
    n_rows = rows.shape[0]
    n_groups = group_ptr.shape[0] - 1
    local_indptr = np.zeros(n_rows + 1, dtype=np.int64)
    for r in range(n_rows):
        ex = rows[r]
        local_indptr[r + 1] = local_indptr[r] + indptr[ex + 1] - indptr[ex]
    local_indices = np.empty(local_indptr[n_rows], dtype=np.int32)
    local_data = np.empty(local_indptr[n_rows], dtype=np.float32)
    n_chunks = max(1, min(n_groups, n_chunks))
    # one pass discovers each group's features into the room its rows' entries give (their
    # count bounds the distinct features), the same pass then writes the local rows
    found = np.empty(local_indptr[n_rows], dtype=np.int32)
    counts = np.zeros(n_groups, dtype=np.int64)
    for c in numba.prange(n_chunks):
        seen = np.full(n_features, -1, dtype=np.int64)
        local_id = np.empty(n_features, dtype=np.int32)
        for g in range(c, n_groups, n_chunks):
            start = local_indptr[group_ptr[g]]
            count = 0
            for r in range(group_ptr[g], group_ptr[g + 1]):
                ex = rows[r]
                for k in range(indptr[ex], indptr[ex + 1]):
                    f = indices[k]
                    if seen[f] != g:
                        seen[f] = g
                        found[start + count] = f
                        count += 1
            found[start : start + count] = np.sort(found[start : start + count])
            for j in range(count):
                local_id[found[start + j]] = j
            for r in range(group_ptr[g], group_ptr[g + 1]):
                ex = rows[r]
                pos = local_indptr[r]
                for k in range(indptr[ex], indptr[ex + 1]):
                    local_indices[pos] = local_id[indices[k]]
                    local_data[pos] = data[k]
                    pos += 1
            counts[g] = count
    feature_ptr = np.zeros(n_groups + 1, dtype=np.int64)
    for g in range(n_groups):
        feature_ptr[g + 1] = feature_ptr[g] + counts[g]
    features = np.empty(feature_ptr[n_groups], dtype=np.int32)
    for g in numba.prange(n_groups):
        start = local_indptr[group_ptr[g]]
        features[feature_ptr[g] : feature_ptr[g + 1]] = found[start : start + counts[g]]
    return local_indptr, local_indices, local_data, feature_ptr, features


@numba.njit(cache=True, fastmath=FASTMATH)
def _solve_unit(
    local_indptr: np.ndarray,
    local_indices: np.ndarray,
    local_data: np.ndarray,
    sqnorm: np.ndarray,
    row_key: np.ndarray,
    first_row: int,
    end_row: int,
    keys: np.ndarray,
    W: np.ndarray,
    cp: float,
    cn: float,
    bias: float,
    max_iter: int,
    tol: float,
    block_size: int,
    seed: np.uint64,
) -> np.ndarray:
    """Dual coordinate descent for ``K = len(keys)`` problems on the same rows, in lock step.

    Problem ``k``'s positives are the rows ``first_row .. end_row`` whose ``row_key`` is
    ``keys[k]``. Each row is read once per pass for all K problems: its margins are one
    K-wide product with ``W`` (float64 zeros, shape ``(n_local + 1, K)``, the bias weights
    last), which receives the solutions. Each problem keeps its own duals, shrinking (LIBLINEAR's
    rule) and stopping test; a row leaves the pass order once every unfinished problem has
    shrunk it. Each pass visits the active rows in blocks of ``block_size`` consecutive ones, the
    blocks in a fresh random order (``block_size = 1``, LIBLINEAR's full reshuffle, is always
    used below ``BLOCKED_MIN_ROWS`` rows), so passes over big groups stream through memory.
    Returns the number of passes of each problem.
    """
    n = end_row - first_row
    n_problems = keys.shape[0]
    if n < BLOCKED_MIN_ROWS:
        block_size = 1  # small groups stay in cache anyway; a full reshuffle converges faster
    n_local = W.shape[0] - 1
    alpha = np.zeros((n, n_problems), dtype=np.float64)
    shrunk = np.zeros((n, n_problems), dtype=np.bool_)
    n_shrunk = np.zeros(n_problems, dtype=np.int64)
    done = np.zeros(n_problems, dtype=np.bool_)
    passes = np.zeros(n_problems, dtype=np.int64)
    pg_max_old = np.full(n_problems, np.inf)  # no upper bound on alpha: nothing to shrink at C
    pg_max_new = np.empty(n_problems)
    pg_min_new = np.empty(n_problems)
    margin = np.empty(n_problems)
    step = np.empty(n_problems)
    active_rows = np.arange(n)
    blocks = np.empty((n + block_size - 1) // block_size, dtype=np.int64)
    diag_p = 0.5 / cp
    diag_n = 0.5 / cn
    bias_sq = bias * bias
    active = n
    state = seed
    n_done = 0
    while n_done < n_problems:
        pg_max_new[:] = -np.inf
        pg_min_new[:] = np.inf
        n_blocks = (active + block_size - 1) // block_size
        for b in range(n_blocks):
            blocks[b] = b
        state = _shuffle(blocks, n_blocks, state)
        for bi in range(n_blocks):
            first = blocks[bi] * block_size
            for s in range(first, min(active, first + block_size)):
                i = active_rows[s]
                r = first_row + i
                for k in range(n_problems):
                    margin[k] = W[n_local, k] * bias
                for j in range(local_indptr[r], local_indptr[r + 1]):
                    f = local_indices[j]
                    x = local_data[j]
                    for k in range(n_problems):
                        margin[k] += W[f, k] * x
                moved = False
                for k in range(n_problems):
                    step[k] = 0.0
                    if done[k] or shrunk[i, k]:
                        continue
                    positive = row_key[r] == keys[k]
                    y = 1.0 if positive else -1.0
                    diag = diag_p if positive else diag_n
                    a = alpha[i, k]
                    g = y * margin[k] - 1.0 + diag * a
                    pg = g
                    if a == 0.0:
                        if g > pg_max_old[k]:
                            shrunk[i, k] = True  # bound at 0 and likely to stay there
                            n_shrunk[k] += 1
                            continue
                        if g > 0.0:
                            pg = 0.0
                    if pg > pg_max_new[k]:
                        pg_max_new[k] = pg
                    if pg < pg_min_new[k]:
                        pg_min_new[k] = pg
                    if abs(pg) > 1e-12:
                        a_new = max(a - g / (sqnorm[r] + bias_sq + diag), 0.0)
                        alpha[i, k] = a_new
                        step[k] = (a_new - a) * y
                        moved = True
                if moved:
                    for j in range(local_indptr[r], local_indptr[r + 1]):
                        f = local_indices[j]
                        x = local_data[j]
                        for k in range(n_problems):
                            W[f, k] += step[k] * x
                    for k in range(n_problems):
                        W[n_local, k] += step[k] * bias
        restored = False
        for k in range(n_problems):
            if done[k]:
                continue
            passes[k] += 1
            if pg_max_new[k] - pg_min_new[k] <= tol:
                if n_shrunk[k] == 0:
                    done[k] = True
                else:  # converged on the shrunk rows: verify on all of them
                    shrunk[:, k] = False
                    n_shrunk[k] = 0
                    pg_max_old[k] = np.inf
                    restored = True
            else:
                pg_max_old[k] = pg_max_new[k] if pg_max_new[k] > 0.0 else np.inf
            if passes[k] >= max_iter:
                done[k] = True
            if done[k]:
                n_done += 1
        if restored:
            active = n
            for i in range(n):
                active_rows[i] = i
        kept = 0
        for s in range(active):
            i = active_rows[s]
            for k in range(n_problems):
                if not done[k] and not shrunk[i, k]:
                    active_rows[kept] = i
                    kept += 1
                    break
        active = kept
    return passes


@numba.njit(cache=True, parallel=True)
def solve_grouped(
    local_indptr: np.ndarray,
    local_indices: np.ndarray,
    local_data: np.ndarray,
    sqnorm: np.ndarray,
    row_key: np.ndarray,
    group_ptr: np.ndarray,
    feature_ptr: np.ndarray,
    features: np.ndarray,
    problem_group: np.ndarray,
    problem_key: np.ndarray,
    slot_ptr: np.ndarray,
    n_features: int,
    cp: float,
    cn: float,
    bias: float,
    max_iter: int,
    tol: float,
    threshold: float,
    block_size: int,
    unit_size: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Solve problems in parallel; keep the weights with ``|w| >= threshold``.

    Consecutive problems of the same group are solved together, up to ``unit_size`` at a time
    (see :func:`_solve_unit`); the units run in parallel.

    Parameters
    ----------
    local_indptr, local_indices, local_data, feature_ptr, features : from :func:`build_groups`.
    sqnorm : float64 array, squared L2 norm of each local row (without the bias feature).
    row_key : int64 array, the key of each local row.
    group_ptr : int64 array, local rows of each group.
    problem_group, problem_key : int64 arrays, one entry per problem.
    slot_ptr : int64 array of length ``n_problems + 1``; problem ``p`` may write at most
        ``slot_ptr[p + 1] - slot_ptr[p]`` weights, at least its group's feature count plus one.
    n_features : global id of the bias feature.
    block_size : rows per block of the randomized pass order; 1 gives LIBLINEAR's order,
        larger blocks are faster on big groups and converge a bit slower.
    unit_size : most problems solved together.

    Returns
    -------
    counts : int64 array, number of kept weights of each problem.
    out_indices, out_data : int32 / float32 arrays of length ``slot_ptr[-1]``; problem ``p``'s
        kept weights are at ``slot_ptr[p] .. slot_ptr[p] + counts[p]``, ascending feature ids.
    passes : int64 array, the number of solver passes of each problem.
    """
    n_problems = problem_group.shape[0]
    counts = np.zeros(n_problems, dtype=np.int64)
    passes = np.zeros(n_problems, dtype=np.int64)
    out_indices = np.empty(slot_ptr[n_problems], dtype=np.int32)
    out_data = np.empty(slot_ptr[n_problems], dtype=np.float32)
    unit_ptr = np.zeros(n_problems + 1, dtype=np.int64)
    n_units = 0
    p = 0
    while p < n_problems:  # runs of one group, cut into near-equal units of at most unit_size
        end = p
        while end < n_problems and problem_group[end] == problem_group[p]:
            end += 1
        pieces = (end - p + unit_size - 1) // unit_size
        for piece in range(pieces):
            n_units += 1
            unit_ptr[n_units] = p + ((end - p) * (piece + 1)) // pieces
        p = end
    for u in numba.prange(n_units):
        lo = unit_ptr[u]
        hi = unit_ptr[u + 1]
        g = problem_group[lo]
        f0 = feature_ptr[g]
        n_local = feature_ptr[g + 1] - f0
        W = np.zeros((n_local + 1, hi - lo), dtype=np.float64)
        passes[lo:hi] = _solve_unit(
            local_indptr,
            local_indices,
            local_data,
            sqnorm,
            row_key,
            group_ptr[g],
            group_ptr[g + 1],
            problem_key[lo:hi],
            W,
            cp,
            cn,
            bias,
            max_iter,
            tol,
            block_size,
            np.uint64(problem_key[lo]),
        )
        for k in range(hi - lo):
            pos = slot_ptr[lo + k]
            for j in range(n_local + 1):
                value = W[j, k]
                if value != 0.0 and abs(value) >= threshold:
                    out_indices[pos] = features[f0 + j] if j < n_local else n_features
                    out_data[pos] = value
                    pos += 1
            counts[lo + k] = pos - slot_ptr[lo + k]
    return counts, out_indices, out_data, passes


@numba.njit(cache=True)
def compact_slots(
    slot_ptr: np.ndarray, counts: np.ndarray, out_indices: np.ndarray, out_data: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pack the kept weights of :func:`solve_grouped` into CSC ``(indptr, indices, data)``."""
    n = counts.shape[0]
    indptr = np.zeros(n + 1, dtype=np.int64)
    for p in range(n):
        indptr[p + 1] = indptr[p] + counts[p]
    indices = np.empty(indptr[n], dtype=np.int32)
    data = np.empty(indptr[n], dtype=np.float32)
    for p in range(n):
        src = slot_ptr[p]
        dst = indptr[p]
        for j in range(counts[p]):
            indices[dst + j] = out_indices[src + j]
            data[dst + j] = out_data[src + j]
    return indptr, indices, data


def csr_arrays(X: sp.spmatrix | sp.sparray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The kernel form of a matrix: CSR ``indptr`` int64, ``indices`` int32, ``data`` float32, sorted."""
    X = sp.csr_matrix(X, dtype=np.float32)
    if not X.has_sorted_indices:
        X = X.sorted_indices()
    return (
        np.ascontiguousarray(X.indptr, dtype=np.int64),
        np.ascontiguousarray(X.indices, dtype=np.int32),
        np.ascontiguousarray(X.data, dtype=np.float32),
    )


def row_sqnorms(indptr: np.ndarray, data: np.ndarray) -> np.ndarray:
    """Squared L2 norm of each CSR row, float64."""
    n_rows = indptr.shape[0] - 1
    row_of = np.repeat(np.arange(n_rows), np.diff(indptr))
    return np.bincount(row_of, weights=np.square(data, dtype=np.float64), minlength=n_rows)


def shuffle_within_groups(group_ptr: np.ndarray, seed: int) -> np.ndarray:
    """A permutation of ``0 .. group_ptr[-1]`` that shuffles each group's range in place.

    The solver visits rows in storage order, so callers store each group's rows shuffled.
    """
    group_of = np.repeat(np.arange(group_ptr.shape[0] - 1), np.diff(group_ptr))
    return np.lexsort((np.random.default_rng(seed).random(group_of.shape[0]), group_of))
