"""Model folders: a model just fitted and the same model loaded from its folder look alike to the kernels."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from indexer.cooccurrence import PairCounts
from indexer.labels import LabelSet
from indexer.language import WordLanguageModel
from indexer.popularity import PopularityIndex
from indexer.wordlinks import WordLinks

QUERIES = ["garden seeds", "garden tools", "grass seed", "pizza near me", "pizza dough"]
PREVIOUS = ["house plants", "plants", "garden", "pizza", "pizza hut"]
USERS = ["u1", "u2", "u3", "u4", "u5"]


def kernel_types(arrays) -> list:  # type: ignore[no-untyped-def]
    return [numba.typeof(a) for a in arrays]


def test_fitted_and_loaded_arrays_are_one_numba_type_so_kernels_compile_once(tmp_path):
    labels = LabelSet(QUERIES, [5, 4, 3, 9, 6])
    labels.save(tmp_path / "labels")
    loaded = LabelSet.load(tmp_path / "labels")
    names = LabelSet.ARRAYS
    assert kernel_types(getattr(labels, n) for n in names) == kernel_types(getattr(loaded, n) for n in names)

    popular = PopularityIndex(labels)
    popular.save(tmp_path / "popular")
    assert numba.typeof(popular.table) == numba.typeof(PopularityIndex.load(tmp_path / "popular").table)

    pairs = PairCounts().fit(PREVIOUS, QUERIES, labels)
    pairs.save(tmp_path / "pairs")
    again = PairCounts.load(tmp_path / "pairs", len(labels))
    names = [f"{n}_" for n in PairCounts.ARRAYS]
    assert kernel_types(getattr(pairs, n) for n in names) == kernel_types(getattr(again, n) for n in names)

    links = WordLinks(min_pairs=1).fit(PREVIOUS, QUERIES, labels, USERS)
    links.save(tmp_path / "links")
    again_links = WordLinks.load(tmp_path / "links", len(labels))
    names = [f"{n}_" for n in WordLinks.ARRAYS]
    assert kernel_types(getattr(links, n) for n in names) == kernel_types(
        getattr(again_links, n) for n in names
    )

    language = WordLanguageModel(order=2, min_users=1).fit(QUERIES, USERS)
    language.save(tmp_path / "language")
    assert numba.typeof(language.arrays()) == numba.typeof(
        WordLanguageModel.load(tmp_path / "language").arrays()
    )


def test_fitted_arrays_refuse_writes():
    labels = LabelSet(QUERIES)
    with pytest.raises(ValueError, match="read-only"):
        labels.counts[0] = 7
    assert np.array_equal(labels.counts, np.ones(len(QUERIES)))
