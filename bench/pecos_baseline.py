"""PECOS itself as a benchmark system (``pip install '.[bench]'`` then libpecos, see the Makefile).

XR-Linear with hierarchical k-means on PIFA embeddings, over exactly our input features and
training examples; predictions are PECOS's beam search top-k, then filtered by the typed prefix,
as the paper's reference code does. Only the benchmark imports this module.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from autocomplete.completer import Completion
from indexer.config import TrainConfig
from indexer.features import InputVectorizer
from indexer.labels import LabelSet
from indexer.normalize import get_normalizer, normalize_prefix
from indexer.pipeline import prepare
from indexer.training import training_examples


class PecosCompleter:
    """Wraps a trained ``pecos.xmc.xlinear.XLinearModel`` in the completer interface."""

    kind = "pecos"

    def __init__(
        self,
        model,
        vectorizer: InputVectorizer,
        labels: LabelSet,
        normalization: str,  # type: ignore[no-untyped-def]
        beam_size: int = 10,
        only_topk: int = 100,
    ) -> None:
        self.model = model
        self.vectorizer = vectorizer
        self.labels = labels
        self.texts = labels.texts()
        self.normalization = normalization
        self.beam_size = beam_size
        self.only_topk = only_topk
        self._normalize = get_normalizer(normalization)

    def normalize_prefix(self, prefix: str) -> str:
        return normalize_prefix(prefix, self.normalization)

    def complete(self, prefix: str, previous: Sequence[str] = (), k: int = 10) -> list[Completion]:
        typed = self.normalize_prefix(prefix)
        context = self._normalize(previous[-1]) if previous else ""
        indices, data = self.vectorizer.transform_one(typed, context)
        x = sp.csr_matrix(
            (data, indices, np.array([0, len(indices)])), shape=(1, self.vectorizer.n_features_)
        )
        scores = self.model.predict(x, beam_size=self.beam_size, only_topk=self.only_topk)
        row = scores.getrow(0)
        order = np.argsort(-row.data, kind="stable")
        out = []
        for i in order:
            text = self.texts[row.indices[i]]
            if text.startswith(typed):
                out.append(Completion(text, float(row.data[i]), "pecos"))
                if len(out) == k:
                    break
        return out

    def prepare(self, previous: Sequence[str]) -> None:
        return None  # nothing is kept per context

    def warm_up(self) -> None:
        self.complete("a", ["warm up"], 10)


def train_pecos(log_path: str | Path, config: TrainConfig, folder: str | Path) -> PecosCompleter:
    """Train PECOS XR-Linear on the same labels, examples and features as our model; save it to ``folder``."""
    from pecos.xmc import Indexer, LabelEmbeddingFactory
    from pecos.xmc.xlinear.model import XLinearModel

    data = prepare(log_path, config)
    labels = data.labels
    previous, prefixes, targets = training_examples(
        data.pairs.previous, data.pairs.next, config.training.prefixes_per_pair, config.tree.random_state
    )
    vectorizer = InputVectorizer.from_params(config.features)
    X = vectorizer.fit_transform(prefixes, previous).astype(np.float32)
    X.sort_indices()
    y = np.fromiter((labels.id_of(t) for t in targets), dtype=np.int64, count=len(targets))
    Y = sp.csr_matrix(
        (np.ones(len(y), dtype=np.float32), (np.arange(len(y)), y)), shape=(len(y), len(labels))
    )
    Y.sum_duplicates()
    Y.sort_indices()
    t0 = time.perf_counter()
    embeddings = LabelEmbeddingFactory.create(Y, X, method="pifa")
    tree = Indexer.gen(
        embeddings,
        indexer_type="hierarchicalkmeans",
        max_leaf_size=config.tree.max_leaf_size,
        seed=config.tree.random_state,
    )
    model = XLinearModel.train(
        X,
        Y,
        C=tree,
        threshold=config.training.threshold,
        Cp=config.training.cp,
        Cn=config.training.cn,
        bias=config.training.bias,
    )
    model.save(str(Path(folder) / "pecos"))
    data.summary["seconds"]["pecos"] = time.perf_counter() - t0
    completer = PecosCompleter(
        model, vectorizer, labels, config.log.normalization, beam_size=config.search.beam_width
    )
    completer.warm_up()
    return completer
