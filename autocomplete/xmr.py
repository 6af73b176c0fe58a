"""The session-aware XMR completer: training it into a model folder, and answering keystrokes.

Training: (previous query, prefix of the next query) examples -> input features; label
embeddings -> hybrid trie/k-means tree; one linear scorer per node. Serving: normalize the typed
prefix, find the labels that start with it, featurize (prefix, previous query), run the
prefix-constrained beam search, re-rank the candidates with their popularity, and fill from the
most-popular completer should the model ever come back short.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from autocomplete.build import TrainingData
from autocomplete.completer import Completion
from autocomplete.config import SearchParams, TrainConfig
from autocomplete.popular import PopularCompleter
from autocomplete.search import BeamSearcher
from indexer.embeddings import label_embeddings
from indexer.features import InputVectorizer
from indexer.labels import LabelSet, encode, prefix_range
from indexer.modelio import ModelFileError, load_array, read_params, save_params
from indexer.normalize import get_normalizer, normalize_prefix
from indexer.params import from_mapping
from indexer.training import TrainingReport, train_scorers
from indexer.tree import HybridTree


def training_examples(
    previous: Sequence[str], following: Sequence[str], prefixes_per_pair: int, seed: int
) -> tuple[list[str], list[str], list[str]]:
    """(previous, prefix, next) examples: ``prefixes_per_pair`` distinct prefix lengths per pair
    drawn uniformly (every length when 0 or when the query is that short)."""
    rng = random.Random(seed)
    prev_out, prefix_out, next_out = [], [], []
    for prev, nxt in zip(previous, following):
        n = len(nxt)
        if prefixes_per_pair <= 0 or n <= prefixes_per_pair:
            lengths: Sequence[int] = range(1, n + 1)
        else:
            lengths = rng.sample(range(1, n + 1), prefixes_per_pair)
        for length in lengths:
            prev_out.append(prev)
            prefix_out.append(nxt[:length])
            next_out.append(nxt)
    return prev_out, prefix_out, next_out


def train_xmr(
    data: TrainingData,
    config: TrainConfig,
    out: str | Path,
    progress: bool = False,
    started: float | None = None,
) -> None:
    """Train the full model on prepared data and save it to ``out``."""
    started = time.perf_counter() if started is None else started
    seconds = data.summary["seconds"]
    out = Path(out)
    labels = data.labels

    t0 = time.perf_counter()
    previous, prefixes, targets = training_examples(
        data.pairs.previous, data.pairs.next, config.training.prefixes_per_pair, config.tree.random_state
    )
    vectorizer = InputVectorizer.from_params(config.features)
    X = vectorizer.fit_transform(prefixes, previous)
    y = np.fromiter((labels.id_of(t) for t in targets), dtype=np.int32, count=len(targets))
    seconds["features"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    texts = labels.texts()
    embeddings = label_embeddings(
        texts,
        vectorizer.prefix_,
        pifa=(X, y) if config.tree.pifa_weight > 0 else None,
        pifa_weight=config.tree.pifa_weight,
    )
    tree = HybridTree.from_params(config.tree).fit(texts, embeddings)
    seconds["tree"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    report = TrainingReport()
    weights = train_scorers(X, y, tree, config.training, progress=progress, report=report)
    seconds["scorers"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    popular = PopularCompleter(labels, config.log.normalization)
    popular.save_arrays(out)  # labels and the popularity table: the fallback shares them
    vectorizer.save(out / "features")
    tree.save(out / "tree")
    np.save(out / "weights_indptr.npy", weights.indptr.astype(np.int64))
    np.save(out / "weights_indices.npy", weights.indices.astype(np.int32))
    np.save(out / "weights_data.npy", weights.data.astype(np.float32))
    seconds["save"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - started

    data.summary.update(
        {
            "training_examples": int(X.shape[0]),
            "features": int(X.shape[1]),
            "tree_nodes": int(tree.n_nodes),
            "tree_layers": int(tree.n_layers),
            "weights_nnz": int(weights.nnz),
            "scorer_layers": report.as_dict(),
        }
    )
    params = {
        "normalization": config.log.normalization,
        "weights_shape": list(weights.shape),
        "bias": config.training.bias,
        "search": dataclasses.asdict(config.search),
    }
    save_params(out, "xmr", params, {"config": config.to_dict(), **data.summary})


class XmrCompleter:
    """Answers ``complete(prefix, previous, k)`` from an XMR model folder.

    Parameters
    ----------
    labels : LabelSet
    vectorizer : InputVectorizer
    searcher : BeamSearcher
    popular : PopularCompleter
        Fills an answer the beam left short (never expected; counted in ``source``).
    normalization : str
    search : SearchParams
    bias : float
        The value of the constant feature the scorers were trained with.
    """

    kind = "xmr"

    def __init__(
        self,
        labels: LabelSet,
        vectorizer: InputVectorizer,
        searcher: BeamSearcher,
        popular: PopularCompleter,
        normalization: str,
        search: SearchParams,
        bias: float = 1.0,
    ) -> None:
        self.labels = labels
        self.vectorizer = vectorizer
        self.searcher = searcher
        self.popular = popular
        self.normalization = normalization
        self.search = search
        self._normalize = get_normalizer(normalization)
        self._bias_index = np.array([searcher.n_features - 1], dtype=np.int32)
        self._bias_value = np.array([bias], dtype=np.float32)
        self._log_counts = np.log1p(np.asarray(labels.counts, dtype=np.float64))

    def normalize_prefix(self, prefix: str) -> str:
        return normalize_prefix(prefix, self.normalization)

    def complete(self, prefix: str, previous: Sequence[str] = (), k: int = 10) -> list[Completion]:
        if k <= 0:
            return []
        typed = self.normalize_prefix(prefix)
        context = self._normalize(previous[-1]) if previous else ""
        lo, hi = prefix_range(self.labels.indptr, self.labels.chars, encode(typed))
        if lo < hi:
            return self._ranked(typed, context, lo, hi, k, "", "model")
        return self._complete_unseen(typed, context, k)

    def _complete_unseen(self, typed: str, context: str, k: int) -> list[Completion]:
        """No logged query starts with ``typed``: keep its first words and complete the rest.

        "cheap flights to par" may never have been searched whole, but "flights to paris" was:
        the tails that start at a word boundary are tried longest first (at most
        ``search.unseen_tails`` of them), each ranked by the model with the same context.
        """
        result: list[Completion] = []
        seen: set[str] = set()
        tails = 0
        for start in range(1, len(typed)):
            if typed[start - 1] != " " or tails >= self.search.unseen_tails or len(result) >= k:
                continue
            lo, hi = prefix_range(self.labels.indptr, self.labels.chars, encode(typed[start:]))
            if lo == hi:
                continue
            tails += 1
            floor = result[-1].score if result else 1.0
            for c in self._ranked(typed[start:], context, lo, hi, k, typed[:start], "tail"):
                if c.text not in seen and len(result) < k:
                    seen.add(c.text)
                    result.append(Completion(c.text, min(c.score, floor), c.source))
        return result

    def _ranked(
        self, typed: str, context: str, lo: int, hi: int, k: int, head: str, source: str
    ) -> list[Completion]:
        """The top ``k`` of the labels ``[lo, hi)`` (which start with ``typed``), each after ``head``."""
        indices, data = self.vectorizer.transform_one(typed, context)
        indices = np.concatenate((indices, self._bias_index))
        data = np.concatenate((data, self._bias_value))
        pool = max(k, self.search.candidates)
        ids, scores = self.searcher.search(indices, data, lo, hi, len(typed), self.search.beam_width, pool)
        result = []
        if len(ids):
            ranked = np.log(np.maximum(scores, 1e-30)) + self.search.popularity_weight * self._log_counts[ids]
            order = np.argsort(-ranked, kind="stable")[:k]
            top = np.exp(ranked[order] - ranked[order[0]])
            result = [
                Completion(head + self.labels.text(int(ids[i])), float(s), source) for i, s in zip(order, top)
            ]
        if len(result) < min(k, hi - lo):  # the beam came back short: never expected, visible as "popular"
            seen = {c.text for c in result}
            for c in self.popular.complete(typed, (), k + len(result)):
                if head + c.text not in seen and len(result) < min(k, hi - lo):
                    result.append(Completion(head + c.text, 0.0, "popular"))
        return result

    def warm_up(self) -> None:
        self.searcher.warm_up()
        self.popular.warm_up()
        self.complete("a", ["warm up"], 10)

    @classmethod
    def load(cls, folder: str | Path) -> XmrCompleter:
        folder = Path(folder)
        params = read_params(folder, kind="xmr")["params"]
        popular = PopularCompleter.load(folder)
        vectorizer = InputVectorizer.load(folder / "features")
        tree = HybridTree.load(folder / "tree")
        shape = tuple(params["weights_shape"])
        arrays = [load_array(folder / f"weights_{name}.npy") for name in ("data", "indices", "indptr")]
        try:
            weights = sp.csc_matrix(tuple(arrays), shape=shape)
        except ValueError as exc:
            raise ModelFileError(
                f"{folder}/weights_*.npy do not form a {shape} matrix ({exc}): rebuild the model."
            ) from exc
        if len(tree.label_node_) != len(popular.labels):
            raise ModelFileError(
                f"{folder / 'tree'} has {len(tree.label_node_)} labels, the label set "
                f"{len(popular.labels)}: rebuild the model."
            )
        return cls(
            popular.labels,
            vectorizer,
            BeamSearcher.from_tree(weights, tree),
            popular,
            params["normalization"],
            from_mapping(SearchParams, params["search"], "search"),
            params["bias"],
        )
