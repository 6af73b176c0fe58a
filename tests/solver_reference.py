"""The solver kernels through SciPy, for independent problems: what the solver and training tests use."""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

from indexer.solver import (
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
