import numpy as np
import pytest

from indexer.errors import ModelFileError
from indexer.params import RankerParams
from indexer.ranking import TreeRanker


def groups_of(rng, n_groups=300, size=12, n_features=6):
    """Made-up candidate groups where the target has a higher feature 0 and lower feature 1."""
    X = rng.normal(size=(n_groups * size, n_features)).astype(np.float32)
    y = np.zeros(n_groups * size, dtype=np.float32)
    for g in range(n_groups):
        target = g * size + rng.integers(size)
        X[target, 0] += 2.0
        X[target, 1] -= 1.0
        y[target] = 1.0
    return X, y, [size] * n_groups


@pytest.fixture(scope="module")
def fitted():
    X, y, groups = groups_of(np.random.default_rng(0))
    return TreeRanker(params=RankerParams(n_trees=40, min_data_in_leaf=20)).fit(X, y, groups), X


def test_the_exported_trees_score_exactly_like_lightgbm(fitted):
    ranker, X = fitted
    import lightgbm

    booster = lightgbm.LGBMRanker(
        objective="lambdarank", n_estimators=40, learning_rate=RankerParams().learning_rate,
        num_leaves=RankerParams().num_leaves, min_child_samples=20,
        random_state=0, n_jobs=2, verbose=-1,
    ).fit(X, groups_of(np.random.default_rng(0))[1], group=[12] * 300)  # fmt: skip
    np.testing.assert_allclose(ranker.score(X), booster.predict(X, raw_score=True), rtol=1e-9, atol=1e-9)


def test_the_ranker_puts_the_targets_of_new_groups_first(fitted):
    ranker, _ = fitted
    X, y, groups = groups_of(np.random.default_rng(1), n_groups=100)
    scores = ranker.score(X).reshape(100, 12)
    assert (scores.argmax(axis=1) == y.reshape(100, 12).argmax(axis=1)).mean() > 0.6  # chance: 1/12
    assert ranker.importance_[0] > ranker.importance_[5]


def test_save_load_round_trip_and_a_damaged_tree_file(fitted, tmp_path):
    ranker, X = fitted
    ranker.save(tmp_path / "ranker")
    loaded = TreeRanker.load(tmp_path / "ranker")
    np.testing.assert_array_equal(loaded.score(X), ranker.score(X))
    left = np.load(tmp_path / "ranker" / "left.npy")
    np.save(tmp_path / "ranker" / "left.npy", left + 10**6)
    with pytest.raises(ModelFileError, match="ranker"):
        TreeRanker.load(tmp_path / "ranker")


def test_mismatched_groups_are_refused():
    with pytest.raises(ValueError, match="groups adding up to"):
        TreeRanker().fit(np.zeros((5, 2)), np.zeros(5), [2, 2])
