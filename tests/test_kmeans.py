from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from indexer import kmeans


def random_rows(n: int, dim: int, seed: int, density: float = 0.3) -> sp.csr_matrix:
    x = sp.random(n, dim, density=density, random_state=seed, format="csr", dtype=np.float32)
    x = normalize(x).astype(np.float32).tocsr()
    x.sort_indices()
    return x


def split(
    x: sp.csr_matrix,
    segments: list[tuple[int, int]],
    seeds: np.ndarray,
    branching: int,
    iterations: int = 20,
    n_threads: int = 2,
    perm: np.ndarray | None = None,
):
    perm = np.arange(x.shape[0], dtype=np.int32) if perm is None else perm.copy()
    lo = np.array([s[0] for s in segments], dtype=np.int64)
    hi = np.array([s[1] for s in segments], dtype=np.int64)
    bounds = kmeans.split_segments(
        x.indptr.astype(np.int64),
        x.indices,
        x.data,
        x.shape[1],
        perm,
        lo,
        hi,
        seeds,
        branching,
        iterations,
        n_threads,
    )
    return perm, bounds


def reference_assign(sims: np.ndarray) -> np.ndarray:
    n, k = sims.shape
    sizes = [n // k + (c < n % k) for c in range(k)]
    assign = np.full(n, -1)
    if k == 2:
        order = np.argsort(sims[:, 1] - sims[:, 0], kind="stable")
        assign[order[: sizes[0]]] = 0
        assign[order[sizes[0] :]] = 1
        return assign
    room = list(sizes)
    for q in np.argsort(-sims.ravel(), kind="stable"):
        i, c = divmod(int(q), k)
        if assign[i] < 0 and room[c] > 0:
            assign[i] = c
            room[c] -= 1
    return assign


def objective(x: np.ndarray, assign: np.ndarray, k: int) -> float:
    return float(sum(np.linalg.norm(x[assign == c].sum(axis=0)) for c in range(k)))


def reference_split(x: np.ndarray, seed: np.uint64, branching: int, iterations: int):
    """Balanced spherical k-means in float64 NumPy: (best assignment, initial assignment)."""
    k = min(branching, x.shape[0])
    centroids = x[kmeans.initial_rows(x.shape[0], k, seed)]
    first = best = assign = reference_assign(x @ centroids.T)
    best_obj = objective(x, assign, k)
    for _ in range(iterations - 1):
        sums = np.stack([x[assign == c].sum(axis=0) for c in range(k)])
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        centroids = np.divide(sums, norms, out=np.zeros_like(sums), where=norms > 0)
        new = reference_assign(x @ centroids.T)
        if np.array_equal(new, assign):
            break
        assign = new
        if objective(x, assign, k) > best_obj:
            best, best_obj = assign, objective(x, assign, k)
    return best, first


@pytest.mark.parametrize("branching", [2, 3, 4])
@pytest.mark.parametrize("n, seed", [(40, 0), (41, 1), (57, 2), (9, 3)])
def test_split_matches_numpy_reference(branching: int, n: int, seed: int) -> None:
    x = random_rows(n, 25, seed)
    seeds = kmeans.node_seeds(seed, np.array([7]))
    perm, bounds = split(x, [(0, n)], seeds, branching)
    best, _ = reference_split(x.toarray().astype(np.float64), seeds[0], branching, 20)
    expected = np.argsort(best, kind="stable")
    np.testing.assert_array_equal(perm, expected)
    sizes = np.bincount(best, minlength=branching)
    np.testing.assert_array_equal(np.diff(bounds[0]), sizes)


@pytest.mark.parametrize("branching", [2, 3, 5])
def test_children_are_balanced_and_objective_not_worse_than_initial_split(branching: int) -> None:
    n = 103
    x = random_rows(n, 60, 5, density=0.1)
    seeds = kmeans.node_seeds(3, np.array([0]))
    perm, bounds = split(x, [(0, n)], seeds, branching)
    sizes = np.diff(bounds[0])
    assert sizes.sum() == n and sizes.max() - sizes.min() <= 1
    assert sorted(perm) == list(range(n))
    assign = np.empty(n, dtype=np.int64)
    for c in range(branching):
        assign[perm[bounds[0, c] : bounds[0, c + 1]]] = c
    dense = x.toarray().astype(np.float64)
    _, first = reference_split(dense, seeds[0], branching, 1)
    assert objective(dense, assign, branching) >= objective(dense, first, branching) - 1e-5


def test_clusters_separate_obvious_groups() -> None:
    # two groups on disjoint columns: any sensible 2-means split separates them
    rng = np.random.default_rng(0)
    a = np.hstack([rng.random((20, 5)), np.zeros((20, 5))])
    b = np.hstack([np.zeros((20, 5)), rng.random((20, 5))])
    x = sp.csr_matrix(normalize(np.vstack([a, b])).astype(np.float32))
    order = rng.permutation(40).astype(np.int32)
    perm, bounds = split(x, [(0, 40)], kmeans.node_seeds(0, np.array([0])), 2, perm=order)
    assert set(perm[:20]) in ({*range(20)}, {*range(20, 40)})


def test_many_segments_at_once_equal_one_at_a_time_and_ignore_thread_count() -> None:
    x = random_rows(200, 40, 11, density=0.15)
    segments = [(0, 90), (90, 95), (96, 200)]  # row 95 belongs to no segment
    seeds = kmeans.node_seeds(42, np.arange(len(segments)) + 10)
    together, bounds = split(x, segments, seeds, 3, n_threads=2)
    serial, bounds1 = split(x, segments, seeds, 3, n_threads=1)
    np.testing.assert_array_equal(together, serial)
    np.testing.assert_array_equal(bounds, bounds1)
    for s, (lo, hi) in enumerate(segments):
        alone, b = split(x, [(lo, hi)], seeds[s : s + 1], 3)
        np.testing.assert_array_equal(alone[lo:hi], together[lo:hi])
        np.testing.assert_array_equal(b[0], bounds[s])
    untouched = np.ones(200, dtype=bool)
    for lo, hi in segments:
        untouched[lo:hi] = False
    np.testing.assert_array_equal(together[untouched], np.flatnonzero(untouched))


def test_seed_decides_the_split() -> None:
    x = random_rows(64, 30, 4)
    runs = {tuple(split(x, [(0, 64)], kmeans.node_seeds(rs, np.array([0])), 2)[0]) for rs in range(6)}
    again = {tuple(split(x, [(0, 64)], kmeans.node_seeds(rs, np.array([0])), 2)[0]) for rs in range(6)}
    assert runs == again
    assert len(runs) > 1


def test_small_segment_gets_one_child_per_row_and_degenerate_rows_still_split() -> None:
    x = sp.csr_matrix(np.array([[1, 0], [1, 0], [1, 0], [0, 0], [0, 0]], dtype=np.float32))
    perm, bounds = split(x, [(0, 2)], kmeans.node_seeds(0, np.array([0])), 3)
    np.testing.assert_array_equal(bounds[0], [0, 1, 2, -1])
    perm, bounds = split(x, [(0, 5)], kmeans.node_seeds(0, np.array([0])), 2)
    np.testing.assert_array_equal(np.diff(bounds[0]), [3, 2])
    assert sorted(perm) == list(range(5))


def test_node_seeds_differ_per_node_and_random_state() -> None:
    a = kmeans.node_seeds(0, np.arange(1000))
    b = kmeans.node_seeds(1, np.arange(1000))
    assert len(set(a.tolist())) == 1000
    assert not np.any(a == b)


def test_initial_rows_are_distinct_and_in_range() -> None:
    for seed in kmeans.node_seeds(0, np.arange(50)):
        rows = kmeans.initial_rows(7, 4, seed)
        assert len(set(rows.tolist())) == 4 and rows.min() >= 0 and rows.max() < 7


def test_sort_segments_sorts_only_inside_segments() -> None:
    perm = np.array([5, 3, 4, 9, 8, 7, 1], dtype=np.int32)
    kmeans.sort_segments(perm, np.array([0, 3], dtype=np.int64), np.array([3, 6], dtype=np.int64))
    np.testing.assert_array_equal(perm, [3, 4, 5, 7, 8, 9, 1])
