"""The solver kernels through SciPy, for independent problems: what the solver and training tests use."""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

from indexer.solver import (
    BLOCKED_MIN_ROWS,
    FASTMATH,
    _shuffle,
    build_groups,
    compact_slots,
    csr_arrays,
    row_sqnorms,
    shuffle_within_groups,
    solve_grouped,
)


def solve_problems(
    X: sp.spmatrix | sp.sparray,
    problem_ptr: np.ndarray,
    rows: np.ndarray,
    signs: np.ndarray,
    *,
    cp: float = 1.0,
    cn: float = 1.0,
    bias: float = 1.0,
    max_iter: int = 20,
    tol: float = 0.1,
    threshold: float = 0.0,
    block_size: int = 1,
    seed: int = 0,
) -> sp.csc_matrix:
    """Train independent linear classifiers, in parallel.

    Parameters
    ----------
    X : sparse matrix, shape (n_examples, n_features)
    problem_ptr : int array of length ``n_problems + 1``; problem ``p`` uses the entries
        ``problem_ptr[p] .. problem_ptr[p + 1]`` of ``rows`` and ``signs``.
    rows : int array, example ids (rows of ``X``).
    signs : int array of +1 / -1, the label of each entry of ``rows``.
    cp, cn : costs of the positive and negative examples (> 0).
    bias : value of the constant feature appended to every example (0 for none).
    max_iter, tol : at most ``max_iter`` passes; stop when the projected-gradient spread is <= tol.
    threshold : weights with ``|w| < threshold`` are dropped.
    block_size : rows per block of the randomized pass order (1: LIBLINEAR's full reshuffle).
    seed : seeds the order in which each problem visits its examples.

    Returns
    -------
    scipy.sparse.csc_matrix, float32, shape (n_features + 1, n_problems)
        Column ``p`` is problem ``p``'s weight vector; the last row is the bias weight.
    """
    if cp <= 0 or cn <= 0:
        raise ValueError(f"solve_problems: cp and cn must be > 0, got cp={cp}, cn={cn}")
    if max_iter < 1 or tol < 0 or block_size < 1:
        raise ValueError(
            "solve_problems: need max_iter >= 1, tol >= 0, block_size >= 1; "
            f"got {max_iter}, {tol}, {block_size}"
        )
    problem_ptr = np.asarray(problem_ptr, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    signs = np.asarray(signs)
    if rows.shape != signs.shape or problem_ptr[-1] != rows.shape[0] or np.any(np.diff(problem_ptr) < 0):
        raise ValueError(
            "solve_problems: problem_ptr must be non-decreasing and end at len(rows) == len(signs)"
        )
    if not np.all(np.abs(signs) == 1):
        raise ValueError("solve_problems: signs must be +1 or -1")
    n_examples, n_features = X.shape
    if rows.size and (rows.min() < 0 or rows.max() >= n_examples):
        raise ValueError(f"solve_problems: rows must be example ids in [0, {n_examples})")
    order = shuffle_within_groups(problem_ptr, seed)
    rows, signs = rows[order], signs[order]
    indptr, indices, data = csr_arrays(X)
    local = build_groups(indptr, indices, data, rows, problem_ptr, n_features, 4 * numba.get_num_threads())
    n_problems = problem_ptr.shape[0] - 1
    slot_ptr = np.zeros(n_problems + 1, dtype=np.int64)
    np.cumsum(np.diff(local[3]) + 1, out=slot_ptr[1:])
    counts, out_indices, out_data, _ = solve_grouped(
        local[0],
        local[1],
        local[2],
        row_sqnorms(indptr, data)[rows],
        (signs > 0).astype(np.int64),
        problem_ptr,
        local[3],
        local[4],
        np.arange(n_problems, dtype=np.int64),
        np.ones(n_problems, dtype=np.int64),
        slot_ptr,
        n_features,
        float(cp),
        float(cn),
        float(bias),
        int(max_iter),
        float(tol),
        float(threshold),
        int(block_size),
        1,
    )
    col_ptr, col_indices, col_data = compact_slots(slot_ptr, counts, out_indices, out_data)
    return sp.csc_matrix((col_data, col_indices, col_ptr), shape=(n_features + 1, n_problems))


@numba.njit(fastmath=FASTMATH)
def dense_solve_unit(
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
    """The lock-step unit before live-problem margins: every margin of every active row, every
    weight column updated when any problem moved. indexer.solver._solve_unit must give the same
    weights and passes, bit for bit."""
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
