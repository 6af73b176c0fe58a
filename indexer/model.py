"""The model objects: what training returns, what a model folder holds, what serving wraps.

:class:`MpcModel` is the labels with their popularity (the most-popular-completion baseline).
:class:`XmrModel` adds the session-aware XR-Linear parts: the input vectorizer, the hybrid label
tree and one sparse linear scorer per tree node. Each saves itself to a folder (``params.json``
written last, arrays as ``.npy`` memory-mapped on load) and :func:`load_model` reads any folder
back, reading its ``params.json`` once.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from indexer.cooccurrence import PairCounts
from indexer.embeddings import label_embeddings
from indexer.errors import ModelFileError
from indexer.features import InputVectorizer
from indexer.labels import LabelSet
from indexer.language import WordLanguageModel
from indexer.manifest import verify
from indexer.modelio import load_array, read_params, save_params
from indexer.normalize import get_normalizer
from indexer.params import (
    ContextParams,
    FeatureParams,
    FuzzyParams,
    LanguageParams,
    SearchParams,
    TrainParams,
    TreeParams,
    from_mapping,
)
from indexer.popularity import PopularityIndex
from indexer.ranking import TreeRanker
from indexer.training import TrainingReport, train_scorers
from indexer.tree import HybridTree, first_scored_layer
from indexer.wordlinks import WordLinks

_WEIGHT_ARRAYS = ("data", "indices", "indptr")
_PARTS = ("language", "pairs", "links", "ranker")  # optional parts, each saved in a sub-folder of its name
_FEATURES, _TREE, _TRAINING, _SEARCH = FeatureParams(), TreeParams(), TrainParams(), SearchParams()
_LANGUAGE, _FUZZY, _CONTEXT = LanguageParams(), FuzzyParams(), ContextParams()


class MpcModel:
    """Most-popular completion: the training labels and their counts.

    Parameters
    ----------
    normalization : str
        The scheme the labels were normalized with; typed prefixes get the same.

    Attributes
    ----------
    popularity_ : PopularityIndex
    """

    kind = "mpc"

    def __init__(self, *, normalization: str = "aol") -> None:
        self.normalization = normalization

    def fit(self, labels: LabelSet) -> MpcModel:
        get_normalizer(self.normalization)
        self.popularity_ = PopularityIndex(labels)
        return self

    @property
    def labels(self) -> LabelSet:
        return self.popularity_.labels

    def save(self, folder: str | Path, summary: dict[str, Any] | None = None) -> None:
        self.popularity_.save(folder)
        save_params(folder, self.kind, {"normalization": self.normalization}, summary)

    @classmethod
    def load(cls, folder: str | Path, params: dict[str, Any] | None = None) -> MpcModel:
        params = read_params(folder)["params"] if params is None else params
        self = cls(normalization=params["normalization"])
        self.popularity_ = PopularityIndex.load(folder)
        return self


class XmrModel:
    """Session-aware XR-Linear: (previous query, typed prefix) -> scores of the labels under a prefix.

    Parameters
    ----------
    normalization : str
    features, tree, training : FeatureParams, TreeParams, TrainParams
        The offline stages' parameters.
    search : SearchParams
        How serving searches and re-ranks; saved with the model.
    language : LanguageParams
        How generated completions are made from ``language_``.
    fuzzy : FuzzyParams
        When and how far typos are corrected.
    context : ContextParams
        Word links and the person's history in the chain.

    Attributes
    ----------
    popularity_ : PopularityIndex
        The labels (sorted, counted) and their popularity table.
    vectorizer_ : InputVectorizer
    tree_ : HybridTree
    weights_ : scipy.sparse.csc_matrix, shape (n_features + 1, n_nodes)
        One scorer column per tree node; the last row weighs the constant bias feature.
    seconds_ : dict of str to float
        Seconds per training stage (features, tree, scorers).
    report_ : TrainingReport
    language_ : WordLanguageModel or None
        The word n-gram model behind generated completions (set by the pipeline).
    pairs_ : PairCounts or None
        (previous query -> next label) counts of the training pairs.
    links_ : WordLinks or None
        Word-to-word statistics of consecutive training queries, and every label's words.
    ranker_ : TreeRanker or None
        The learned ranker over the merged candidates.
    """

    kind = "xmr"
    # the optional parts; a model assembled from shards (indexer.shards) has none of them
    language_: WordLanguageModel | None = None
    pairs_: PairCounts | None = None
    links_: WordLinks | None = None
    ranker_: TreeRanker | None = None

    def __init__(
        self,
        *,
        normalization: str = "aol",
        features: FeatureParams = _FEATURES,
        tree: TreeParams = _TREE,
        training: TrainParams = _TRAINING,
        search: SearchParams = _SEARCH,
        language: LanguageParams = _LANGUAGE,
        fuzzy: FuzzyParams = _FUZZY,
        context: ContextParams = _CONTEXT,
    ) -> None:
        self.normalization = normalization
        self.features = features
        self.tree = tree
        self.training = training
        self.search = search
        self.language = language
        self.fuzzy = fuzzy
        self.context = context

    @property
    def labels(self) -> LabelSet:
        return self.popularity_.labels

    def fit(
        self,
        previous: Sequence[str],
        prefixes: Sequence[str],
        targets: Sequence[str],
        labels: LabelSet,
        progress: bool = False,
    ) -> XmrModel:
        """Train on (previous query, prefix, next query) examples whose next query is a label."""
        get_normalizer(self.normalization)
        self.seconds_: dict[str, float] = {}
        t0 = time.perf_counter()
        self.vectorizer_ = InputVectorizer.from_params(self.features)
        X = self.vectorizer_.fit_transform(prefixes, previous)
        y = np.fromiter((labels.id_of(t) for t in targets), dtype=np.int32, count=len(targets))
        if (y < 0).any():
            raise ValueError("XmrModel.fit: every target must be a label; filter the examples first")
        self.seconds_["features"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        texts = labels.texts()
        embeddings = label_embeddings(
            texts,
            self.vectorizer_.prefix_,
            pifa=(X, y) if self.tree.pifa_weight > 0 else None,
            pifa_weight=self.tree.pifa_weight,
        )
        self.tree_ = HybridTree.from_params(self.tree).fit(texts, embeddings)
        self.seconds_["tree"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        self.report_ = TrainingReport()
        self.weights_ = train_scorers(
            X, y, self.tree_, self.training, progress=progress, report=self.report_,
            first_layer=first_scored_layer(self.tree_.n_trie_layers_),
        )  # fmt: skip
        self.seconds_["scorers"] = time.perf_counter() - t0
        self.popularity_ = PopularityIndex(labels)
        self.n_examples_ = int(X.shape[0])
        self.language_ = self.pairs_ = self.links_ = self.ranker_ = None
        return self

    def shape_summary(self) -> dict[str, Any]:
        return {
            "training_examples": self.n_examples_,
            "features": int(self.vectorizer_.n_features_),
            "tree_nodes": int(self.tree_.n_nodes),
            "tree_layers": int(self.tree_.n_layers),
            "weights_nnz": int(self.weights_.nnz),
            "scorer_layers": self.report_.as_dict(),
        }

    def save(self, folder: str | Path, summary: dict[str, Any] | None = None) -> None:
        folder = Path(folder)
        self.popularity_.save(folder)
        self.vectorizer_.save(folder / "features")
        self.tree_.save(folder / "tree")
        w = self.weights_
        np.save(folder / "weights_indptr.npy", w.indptr.astype(np.int64))
        np.save(folder / "weights_indices.npy", w.indices.astype(np.int32))
        np.save(folder / "weights_data.npy", w.data.astype(np.float32))
        params = {
            "normalization": self.normalization,
            "weights_shape": list(w.shape),
            "bias": self.training.bias,
            "features": dataclasses.asdict(self.features),
            "tree": dataclasses.asdict(self.tree),
            "training": dataclasses.asdict(self.training),
            "search": dataclasses.asdict(self.search),
            "language": dataclasses.asdict(self.language),
            "fuzzy": dataclasses.asdict(self.fuzzy),
            "context": dataclasses.asdict(self.context),
        }
        parts = [name for name in _PARTS if getattr(self, f"{name}_", None) is not None]
        for name in parts:
            getattr(self, f"{name}_").save(folder / name)
        params["parts"] = parts
        save_params(folder, self.kind, params, summary)

    @classmethod
    def load(cls, folder: str | Path, params: dict[str, Any] | None = None) -> XmrModel:
        folder = Path(folder)
        params = read_params(folder, kind=cls.kind)["params"] if params is None else params
        self = cls(
            normalization=params["normalization"],
            features=from_mapping(FeatureParams, params.get("features"), "features"),
            tree=from_mapping(TreeParams, params.get("tree"), "tree"),
            training=from_mapping(
                TrainParams, {**params.get("training", {}), "bias": params["bias"]}, "training"
            ),
            search=from_mapping(SearchParams, params["search"], "search"),
            language=from_mapping(LanguageParams, params.get("language"), "language"),
            fuzzy=from_mapping(FuzzyParams, params.get("fuzzy"), "fuzzy"),
            context=from_mapping(ContextParams, params.get("context"), "context"),
        )
        self.popularity_ = PopularityIndex.load(folder)
        self.vectorizer_ = InputVectorizer.load(folder / "features")
        self.tree_ = HybridTree.load(folder / "tree")
        shape = tuple(params["weights_shape"])
        arrays = [load_array(folder / f"weights_{name}.npy") for name in _WEIGHT_ARRAYS]
        try:
            self.weights_ = sp.csc_matrix(tuple(arrays), shape=shape)
        except ValueError as exc:
            raise ModelFileError(
                f"{folder}/weights_*.npy do not form a {shape} matrix ({exc}): rebuild the model."
            ) from exc
        if len(self.tree_.label_node_) != len(self.labels):
            raise ModelFileError(
                f"{folder / 'tree'} has {len(self.tree_.label_node_)} labels, the label set "
                f"{len(self.labels)}: rebuild the model."
            )
        parts = params.get("parts", [])
        self.language_ = WordLanguageModel.load(folder / "language") if "language" in parts else None
        self.pairs_ = PairCounts.load(folder / "pairs", len(self.labels)) if "pairs" in parts else None
        self.links_ = WordLinks.load(folder / "links", len(self.labels)) if "links" in parts else None
        self.ranker_ = TreeRanker.load(folder / "ranker") if "ranker" in parts else None
        return self


def load_model(folder: str | Path, snapshot: bool = False) -> MpcModel | XmrModel:
    """Any model folder written by ``autocomplete train``, its files verified against params.json
    before any is memory-mapped (for a ``snapshot``, verified when it was made, sizes only)."""
    body = read_params(folder)
    verify(folder, body.get("files", {}), digests=not snapshot)
    kind = body.get("kind")
    if kind == MpcModel.kind:
        return MpcModel.load(folder, body["params"])
    if kind == XmrModel.kind:
        return XmrModel.load(folder, body["params"])
    raise ModelFileError(f"{Path(folder) / 'params.json'} names unknown model kind {kind!r}.")
