from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.svm import LinearSVC
from solver_reference import solve_problems

from indexer.solver import (
    BLOCKED_MIN_ROWS,
    build_groups,
    csr_arrays,
    shuffle_within_groups,
)


def _problem(
    n: int, d: int, density: float, positive_rate: float, seed: int
) -> tuple[sp.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=density, random_state=seed, format="csr", dtype=np.float32)
    signs = np.where(rng.random(n) < positive_rate, 1, -1)
    return X, signs


def _reference(X: sp.csr_matrix, signs: np.ndarray, cp: float, cn: float, bias: float) -> np.ndarray:
    """scikit-learn's liblinear on the same problem: the bias as an explicit constant column."""
    clf = LinearSVC(
        loss="squared_hinge",
        dual=True,
        C=1.0,
        fit_intercept=False,
        tol=1e-10,
        max_iter=200_000,
        class_weight={1: cp, -1: cn},
    )
    if bias == 0.0:
        return np.r_[clf.fit(X, signs).coef_[0], 0.0]
    return clf.fit(sp.hstack([X, np.full((X.shape[0], 1), bias)]).tocsr(), signs).coef_[0]


@pytest.mark.parametrize(
    ("n", "d", "density", "cp", "cn", "bias"),
    [
        (40, 10, 0.3, 1.0, 1.0, 1.0),
        (200, 30, 0.2, 2.0, 0.5, 1.0),
        (300, 80, 0.05, 0.3, 3.0, 0.5),
        (150, 50, 0.1, 1.0, 1.0, 0.0),
    ],
)
def test_solution_matches_liblinear(
    n: int, d: int, density: float, cp: float, cn: float, bias: float
) -> None:
    X, signs = _problem(n, d, density, 0.3, seed=n)
    W = solve_problems(
        X, np.array([0, n]), np.arange(n), signs, cp=cp, cn=cn, bias=bias, max_iter=20_000, tol=1e-9
    )
    assert W.shape == (d + 1, 1) and W.dtype == np.float32
    w = W.toarray()[:, 0]
    expected = _reference(X, signs, cp, cn, bias)
    np.testing.assert_allclose(w, expected, atol=2e-5)
    Xb = np.c_[X.toarray(), np.full(n, bias)]
    np.testing.assert_allclose(Xb @ w, Xb @ expected, atol=1e-4)


def test_few_passes_are_already_close_and_more_passes_get_closer() -> None:
    X, signs = _problem(300, 40, 0.1, 0.4, seed=3)
    expected = _reference(X, signs, 1.0, 1.0, 1.0)
    errors = []
    for max_iter in (2, 20, 2000):
        W = solve_problems(X, np.array([0, 300]), np.arange(300), signs, max_iter=max_iter, tol=1e-9)
        errors.append(np.abs(W.toarray()[:, 0] - expected).max())
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-4


def test_independent_problems_in_one_call_equal_separate_calls() -> None:
    X, signs = _problem(120, 25, 0.2, 0.5, seed=5)
    rng = np.random.default_rng(0)
    parts = [rng.choice(120, size=m, replace=False) for m in (60, 90, 1, 0, 120)]
    rows = np.concatenate(parts)
    part_signs = np.concatenate([signs[p] for p in parts])
    ptr = np.r_[0, np.cumsum([len(p) for p in parts])]
    together = solve_problems(X, ptr, rows, part_signs, max_iter=5000, tol=1e-9).toarray()
    for j, part in enumerate(parts):
        alone = solve_problems(X, np.array([0, len(part)]), part, signs[part], max_iter=5000, tol=1e-9)
        np.testing.assert_allclose(together[:, j], alone.toarray()[:, 0], atol=1e-5)
    assert not together[:, 3].any()  # no examples: no weights


def test_threshold_drops_exactly_the_small_weights() -> None:
    X, signs = _problem(200, 60, 0.1, 0.3, seed=7)
    args = (X, np.array([0, 200]), np.arange(200), signs)
    full = solve_problems(*args, threshold=0.0).toarray()[:, 0]
    pruned = solve_problems(*args, threshold=0.1)
    kept = np.abs(full) >= 0.1
    assert 0 < kept.sum() < np.count_nonzero(full)
    np.testing.assert_array_equal(pruned.indices, np.flatnonzero(kept))
    np.testing.assert_allclose(pruned.data, full[kept].astype(np.float32))


def test_blocked_pass_order_converges_to_the_same_solution() -> None:
    n = BLOCKED_MIN_ROWS + 500
    X, signs = _problem(n, 20, 0.1, 0.3, seed=11)
    args = (X, np.array([0, n]), np.arange(n), signs)
    reference = solve_problems(*args, max_iter=3000, tol=1e-8, block_size=1).toarray()
    blocked = solve_problems(*args, max_iter=3000, tol=1e-8, block_size=16).toarray()
    np.testing.assert_allclose(blocked, reference, atol=1e-4)


def test_costs_shift_the_decision_towards_the_costlier_class() -> None:
    X, signs = _problem(300, 20, 0.1, 0.3, seed=13)
    args = (X, np.array([0, 300]), np.arange(300), signs)
    Xb = np.c_[X.toarray(), np.ones(300)]
    low = Xb @ solve_problems(*args, cp=0.1, cn=1.0, max_iter=1000, tol=1e-6).toarray()[:, 0]
    high = Xb @ solve_problems(*args, cp=10.0, cn=1.0, max_iter=1000, tol=1e-6).toarray()[:, 0]
    assert (high > 0).sum() > (low > 0).sum()


def test_shuffle_within_groups_keeps_each_group_in_its_range() -> None:
    ptr = np.array([0, 3, 3, 10, 11])
    perm = shuffle_within_groups(ptr, seed=1)
    for g in range(4):
        assert sorted(perm[ptr[g] : ptr[g + 1]]) == list(range(ptr[g], ptr[g + 1]))
    assert not np.array_equal(perm, np.arange(11))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cp": 0.0}, "cp and cn"),
        ({"max_iter": 0}, "max_iter"),
        ({"signs": np.array([1, 0, -1])}, "signs"),
        ({"rows": np.array([0, 1, 5])}, "rows must be example ids"),
        ({"problem_ptr": np.array([0, 2])}, "problem_ptr"),
    ],
)
def test_misuse_is_refused_with_a_reason(kwargs: dict, message: str) -> None:
    args = {
        "X": sp.random(3, 4, density=0.5, format="csr", random_state=0),
        "problem_ptr": np.array([0, 3]),
        "rows": np.arange(3),
        "signs": np.array([1, -1, 1]),
    }
    options = {k: kwargs.pop(k) for k in list(kwargs) if k not in args}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        solve_problems(args["X"], args["problem_ptr"], args["rows"], args["signs"], **options)


@pytest.mark.parametrize("n_groups", [1, 5])
def test_groups_hold_their_rows_with_local_feature_ids(n_groups: int) -> None:
    X = sp.random(400, 60, density=0.05, random_state=n_groups, format="csr", dtype=np.float32)
    rows = np.random.default_rng(n_groups).permutation(400).astype(np.int64)
    indptr, indices, data = csr_arrays(X)
    group_ptr = np.linspace(0, 400, n_groups + 1).astype(np.int64)
    li, lx, ld, feature_ptr, features = build_groups(indptr, indices, data, rows, group_ptr, X.shape[1], 3)
    for g in range(n_groups):
        own = features[feature_ptr[g] : feature_ptr[g + 1]]
        block = X[rows[group_ptr[g] : group_ptr[g + 1]]]
        assert np.array_equal(own, np.unique(block.indices))  # every feature of the group, ascending
        for r in range(group_ptr[g], group_ptr[g + 1]):
            entries = slice(li[r], li[r + 1])
            assert np.array_equal(own[lx[entries]], X[rows[r]].indices)
            assert np.array_equal(ld[entries], X[rows[r]].data)
