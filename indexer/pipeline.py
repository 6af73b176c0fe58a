"""``autocomplete train``: a query log and a configuration in, a model folder out.

Stages (each timed in the summary): read the log into sessions and splits; choose the labels
(distinct next queries of the training split that pass the privacy filters) with their counts;
then fit the most-popular baseline or the full XMR model and save it.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from pathlib import Path

from indexer.config import TrainConfig
from indexer.labels import LabelSet
from indexer.model import MpcModel, XmrModel
from indexer.privacy import filter_labels
from indexer.querylog import Pairs, QueryLog, read_query_log
from indexer.training import training_examples


@dataclasses.dataclass
class TrainingData:
    """What every model kind trains on: the log, the labels, and the training pairs whose
    next query is a label."""

    log: QueryLog
    labels: LabelSet
    pairs: Pairs
    summary: dict


def prepare(log_path: str | Path, config: TrainConfig, progress: bool = False) -> TrainingData:
    t0 = time.perf_counter()
    log = read_query_log(log_path, config.log, progress=progress)
    return prepare_log(log, log_path, config, {"read_log": time.perf_counter() - t0})


def prepare_log(
    log: QueryLog, log_path: str | Path, config: TrainConfig, seconds: dict[str, float]
) -> TrainingData:
    """The labels and training pairs of a log already read (``indexer.distributed`` reads many files)."""
    t0 = time.perf_counter()
    train = log.pairs("train")
    counts = Counter(train.next)
    candidates = sorted(counts)
    kept, removed = filter_labels(
        candidates, log.sessions["train"], config.privacy, untimed=config.log.format == "lines"
    )
    labels = LabelSet(kept, [counts[q] for q in kept])
    allowed = set(kept)
    keep = [i for i, q in enumerate(train.next) if q in allowed]
    pairs = Pairs(
        [train.previous[i] for i in keep], [train.next[i] for i in keep], [train.users[i] for i in keep]
    )
    seconds["labels"] = time.perf_counter() - t0

    summary = dict(log.summary())
    summary.update(
        {
            "log": str(log_path),
            "label_candidates": len(candidates),
            "labels": len(labels),
            **removed,
            "training_pairs": len(pairs),
            "seconds": seconds,
        }
    )
    return TrainingData(log, labels, pairs, summary)


def fit_model(data: TrainingData, config: TrainConfig, progress: bool = False) -> MpcModel | XmrModel:
    """The model ``config.model`` fitted on prepared data (stage seconds added to its summary)."""
    seconds = data.summary["seconds"]
    if config.model == "mpc":
        t0 = time.perf_counter()
        mpc = MpcModel(normalization=config.log.normalization).fit(data.labels)
        seconds["popular"] = time.perf_counter() - t0
        return mpc
    previous, prefixes, targets = training_examples(
        data.pairs.previous, data.pairs.next, config.training.prefixes_per_pair, config.tree.random_state
    )
    xmr = XmrModel(
        normalization=config.log.normalization,
        features=config.features,
        tree=config.tree,
        training=config.training,
        search=config.search,
    ).fit(previous, prefixes, targets, data.labels, progress=progress)
    seconds.update(xmr.seconds_)
    data.summary.update(xmr.shape_summary())
    return xmr


def build_model(log_path: str | Path, config: TrainConfig, out: str | Path, progress: bool = False) -> dict:
    """Train the model ``config.model`` on ``log_path`` and save it to ``out``; return the summary."""
    t_start = time.perf_counter()
    data = prepare(log_path, config, progress)
    model = fit_model(data, config, progress)
    summary = data.summary
    t0 = time.perf_counter()
    summary["seconds"]["total"] = t0 - t_start  # the saved summary: log to fitted model
    model.save(out, summary={"config": config.to_dict(), **summary})
    summary["seconds"]["save"] = time.perf_counter() - t0
    summary["seconds"]["total"] = time.perf_counter() - t_start
    summary["model_bytes"] = folder_bytes(out)
    return summary


def folder_bytes(folder: str | Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
