"""The learned ranker over merged candidates: LightGBM LambdaRank, served by a numba tree walk.

Training (offline) fits ``lightgbm.LGBMRanker`` on groups of candidates, one group per
(previous query, typed prefix) example, label 1 for the query the person typed next. The fitted
trees are exported to flat arrays (:class:`TreeArrays`), so serving scores a keystroke's
candidates with :func:`score_trees`, a pure numba function, without LightGBM in the request
path. The arrays reproduce the booster's raw scores (tested against ``Booster.predict``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numba
import numpy as np
from sklearn.base import BaseEstimator

from indexer.errors import ModelFileError
from indexer.modelio import load_array, read_params, save_params
from indexer.params import RankerParams


class TreeArrays(NamedTuple):
    """Every tree's nodes in one set of arrays; node ``roots[t]`` is tree ``t``'s root.

    An inner node tests ``x[feature] <= threshold`` (left if true); a leaf has ``feature == -1``
    and its score in ``value``.
    """

    feature: np.ndarray  # int32
    threshold: np.ndarray  # float64
    left: np.ndarray  # int32
    right: np.ndarray  # int32
    value: np.ndarray  # float64
    roots: np.ndarray  # int32


@numba.njit(cache=True)
def score_trees(feature, threshold, left, right, value, roots, X):  # type: ignore[no-untyped-def]
    """The ensemble's raw score of every row of ``X`` (float32, shape (n, n_features))."""
    out = np.zeros(X.shape[0], dtype=np.float64)
    for i in range(X.shape[0]):
        total = 0.0
        for t in range(roots.shape[0]):
            node = roots[t]
            f = feature[node]
            while f >= 0:
                # both children read before one is picked: a select, not a branch the data mispredicts
                go_left, to_left, to_right = np.float64(X[i, f]) <= threshold[node], left[node], right[node]
                node = to_left if go_left else to_right
                f = feature[node]
            total += value[node]
        out[i] = total
    return out


def export_trees(dump: dict[str, Any]) -> TreeArrays:
    """Flatten LightGBM's ``Booster.dump_model()`` into :class:`TreeArrays`."""
    feature: list[int] = []
    threshold: list[float] = []
    left: list[int] = []
    right: list[int] = []
    value: list[float] = []
    roots: list[int] = []

    def add(node: dict[str, Any]) -> int:
        me = len(feature)
        feature.append(-1)
        threshold.append(0.0)
        left.append(-1)
        right.append(-1)
        value.append(float(node.get("leaf_value", 0.0)))
        if "split_feature" in node:
            if node.get("decision_type", "<=") != "<=":
                raise ValueError(f"export_trees: unsupported decision type {node['decision_type']!r}")
            feature[me] = int(node["split_feature"])
            threshold[me] = float(node["threshold"])
            left[me] = add(node["left_child"])
            right[me] = add(node["right_child"])
        return me

    for tree in dump["tree_info"]:
        roots.append(add(tree["tree_structure"]))
    return TreeArrays(
        np.array(feature, dtype=np.int32),
        np.array(threshold, dtype=np.float64),
        np.array(left, dtype=np.int32),
        np.array(right, dtype=np.int32),
        np.array(value, dtype=np.float64),
        np.array(roots, dtype=np.int32),
    )


def _within(children: np.ndarray, n: int) -> bool:
    return not len(children) or (int(children.min()) >= 0 and int(children.max()) < n)


class TreeRanker(BaseEstimator):
    """LambdaRank over candidate feature rows; ``score(X)`` is higher for better candidates.

    Parameters
    ----------
    params : RankerParams

    Attributes
    ----------
    trees_ : TreeArrays
    n_features_ : int
    importance_ : dict of int to float
        Total gain of the splits on each feature column.
    """

    def __init__(self, *, params: RankerParams = RankerParams()) -> None:  # noqa: B008 - frozen
        self.params = params

    def fit(self, X: np.ndarray, y: np.ndarray, groups: Sequence[int]) -> TreeRanker:
        """``groups``: the sizes of consecutive row groups (one per example)."""
        import lightgbm

        p = self.params
        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.shape[0] != len(y) or sum(groups) != len(y):
            raise ValueError(
                f"TreeRanker.fit: {X.shape[0]} rows, {len(y)} labels, groups adding up to {sum(groups)}"
            )
        model = lightgbm.LGBMRanker(
            objective="lambdarank",
            n_estimators=p.n_trees,
            learning_rate=p.learning_rate,
            num_leaves=p.num_leaves,
            min_child_samples=p.min_data_in_leaf,
            random_state=p.random_state,
            n_jobs=2,
            verbose=-1,
        )
        model.fit(X, y, group=list(groups))
        booster = model.booster_
        self.trees_ = export_trees(booster.dump_model())
        self.n_features_ = int(X.shape[1])
        gains = booster.feature_importance(importance_type="gain")
        self.importance_ = {i: float(g) for i, g in enumerate(gains)}
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        """Raw scores of candidate rows (per keystroke: no sklearn fitted-check)."""
        return score_trees(*self.trees_, np.ascontiguousarray(X, dtype=np.float32))  # type: ignore[no-any-return]

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name, array in self.trees_._asdict().items():
            np.save(folder / f"{name}.npy", array)
        save_params(
            folder,
            type(self).__name__,
            {"n_features": self.n_features_, "params": self.params.__dict__},
            {"importance": self.importance_},
        )

    @classmethod
    def load(cls, folder: str | Path) -> TreeRanker:
        folder = Path(folder)
        body = read_params(folder, kind=cls.__name__)
        self = cls(params=RankerParams(**body["params"]["params"]))
        arrays = TreeArrays(*(load_array(folder / f"{name}.npy", mmap=False) for name in TreeArrays._fields))
        n = len(arrays.feature)
        n_features = int(body["params"]["n_features"])
        inner = arrays.feature >= 0
        if (
            any(len(a) != n for a in arrays[:5])
            or (len(arrays.roots) and (arrays.roots.min() < 0 or arrays.roots.max() >= n))
            or (inner.any() and (arrays.feature.max() >= n_features))
            or (inner.any() and not _within(arrays.left[inner], n) or not _within(arrays.right[inner], n))
        ):
            raise ModelFileError(f"{folder}: the ranker's tree arrays are inconsistent: rebuild the model")
        self.trees_ = arrays
        self.n_features_ = n_features
        self.importance_ = {int(k): v for k, v in body["summary"].get("importance", {}).items()}
        return self
