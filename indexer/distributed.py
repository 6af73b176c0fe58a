"""``autocomplete train --scheduler ...``: training on Dask, log files and trie shards as tasks.

``--scheduler local`` starts a ``distributed.LocalCluster`` sized to the machine (one worker
process per 2 cores, numba threads split between them); ``--scheduler tcp://HOST:PORT`` uses a
running cluster (start it with ``dask scheduler`` and ``dask worker tcp://HOST:PORT
--nthreads 1``, and give each worker ``NUMBA_NUM_THREADS`` = its cores). Without
``--scheduler`` training runs in one process (:mod:`indexer.pipeline`), as ``make run`` does:
Dask (the ``scale`` extra) is imported only here.

Work on the cluster:

* **log stage**: ``--log`` may be a glob (``'logs/*.tsv.gz'``) or a folder; each file is read,
  normalized, sessionized and split by one task (:func:`read_logs`), and the caller joins the
  sessions in file order. A user's rows must sit in one file (as the AOL release's do), and
  ``split_fractions`` then cut each file by its own span (date splits cut all files alike).
* **shard stage**: one task per trie shard (:mod:`indexer.shards`): the shard's features,
  label embeddings, k-means layers and scorers; one more task trains the trie layers' scorers
  over all examples. A worker holds one shard at a time: peak memory per worker is set by the
  largest shard (and the trie task's feature matrix), not by the whole label set.

The caller fits the vocabulary (one feature space), plans the shards and assembles the result
into one ordinary model folder: ``autocomplete serve`` cannot tell how it was trained. The other
generators (pair counts, word links, language model) and the learned ranker are fit on the caller
through :func:`indexer.pipeline.fit_model`, the same code as in one process; ``ranker.max_pairs``
bounds the ranker's chain rows, the caller's longest stage on a large log.
"""

from __future__ import annotations

import glob
import os
import resource
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numba
import numpy as np

from indexer.config import TrainConfig
from indexer.features import InputVectorizer
from indexer.logreaders import LogStats
from indexer.model import XmrModel
from indexer.params import LogParams
from indexer.pipeline import CandidateRows, TrainingData, fit_model, folder_bytes, prepare, prepare_log
from indexer.popularity import PopularityIndex
from indexer.querylog import SPLITS, QueryLog, read_query_log
from indexer.shards import ShardResult, assemble, fit_shard, fit_top, merge_reports, plan_shards, shard_inputs
from indexer.training import training_examples


def log_files(log: str | Path) -> list[Path]:
    """The files of ``log``: one file, every file of a folder, or a glob, sorted by name."""
    text = str(log)
    if any(ch in text for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(text) if Path(p).is_file())
    elif Path(text).is_dir():
        files = sorted(p for p in Path(text).iterdir() if p.is_file() and not p.name.startswith("."))
    else:
        files = [Path(text)]
    if not files:
        raise FileNotFoundError(
            f"--log {text!r} names no file: give a file, a folder or a glob such as 'logs/*.tsv.gz'"
        )
    return files


def _read_one(path: Path, params: LogParams) -> QueryLog:
    return read_query_log(path, params, require=())


def merge_logs(logs: list[QueryLog]) -> QueryLog:
    """The sessions of several logs in order, their statistics added up."""
    stats = LogStats()
    sessions: dict[str, list] = {split: [] for split in SPLITS}
    for log in logs:
        for split in SPLITS:
            sessions[split].extend(log.sessions[split])
        s = log.stats
        stats.rows += s.rows
        stats.malformed.update(s.malformed)
        for reason, example in s.examples.items():
            stats.examples.setdefault(reason, example)
        stats.empty_after_normalization += s.empty_after_normalization
        stats.consecutive_duplicates += s.consecutive_duplicates
        stats.outside_splits += s.outside_splits
        stats.first_time = min(stats.first_time, s.first_time)
        stats.last_time = max(stats.last_time, s.last_time)
    bounds = (
        dict(logs[0].bounds) if len(logs) == 1 else {k: f"{v} (per file)" for k, v in logs[0].bounds.items()}
    )
    return QueryLog(sessions, stats, bounds)


def read_logs(log: str | Path, config: TrainConfig, client: Any | None) -> TrainingData:
    """:func:`indexer.pipeline.prepare` over one file or many, the files read by Dask tasks."""
    files = log_files(log)
    if client is None and len(files) == 1:
        return prepare(files[0], config)
    t0 = time.perf_counter()
    if client is None:
        logs = [_read_one(path, config.log) for path in files]
    else:
        logs = client.gather(client.map(_read_one, files, params=config.log, pure=False))
    merged = merge_logs(logs)
    if not any(len(s.queries) > 1 for s in merged.sessions["train"]):
        raise ValueError(f"--log {log}: the train split of its {len(files)} file(s) has no pair of queries")
    read = time.perf_counter() - t0
    data = prepare_log(merged, config)
    data.summary["log"] = str(log)
    data.summary["seconds"]["read_log"] = read
    return data


def _fit_shard_task(task: Any, vectorizer: InputVectorizer, config: TrainConfig, threads: int) -> ShardResult:
    if threads:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    return fit_shard(task, vectorizer, config.tree, config.training)


def _fit_top_task(plan: Any, vectorizer: InputVectorizer, prefixes, previous, y, config, threads):  # type: ignore[no-untyped-def]
    if threads:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    X = vectorizer.transform(prefixes, previous)
    return fit_top(plan, X, y, config.training)


def fit_sharded(
    data: TrainingData, config: TrainConfig, client: Any | None = None, n_shards: int = 0, threads: int = 0
) -> XmrModel:
    """An :class:`XmrModel` trained shard by shard (on ``client``, or here one after another)."""
    seconds = data.summary["seconds"]
    t0 = time.perf_counter()
    previous, prefixes, targets = training_examples(
        data.pairs.previous, data.pairs.next, config.training.prefixes_per_pair, config.tree.random_state
    )
    labels = data.labels
    y = np.fromiter((labels.id_of(t) for t in targets), dtype=np.int32, count=len(targets))
    vectorizer = InputVectorizer.from_params(config.features).fit(prefixes, previous)
    seconds["vocabulary"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if not n_shards:
        workers = len(client.scheduler_info()["workers"]) if client is not None else 1
        n_shards = 4 * max(workers, 1)
    plan = plan_shards(labels, y, config.tree, n_shards)
    tasks = shard_inputs(plan, labels, previous, prefixes, y)
    seconds["plan"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if client is None:
        top_weights, top_report = _fit_top_task(plan, vectorizer, prefixes, previous, y, config, threads)
        results = [_fit_shard_task(task, vectorizer, config, threads) for task in tasks]
    else:
        [vec] = client.scatter([vectorizer], broadcast=True)
        order = np.argsort(-plan.sizes, kind="stable")  # biggest first: the last task is a small one
        top = client.submit(
            _fit_top_task, plan, vec, prefixes, previous, y, config, threads, pure=False, priority=10
        )
        futures = [
            client.submit(_fit_shard_task, tasks[i], vec, config, threads, pure=False, priority=-int(rank))
            for rank, i in enumerate(order)
        ]
        del tasks
        results = client.gather(futures)
        top_weights, top_report = top.result()
    seconds["shards"] = time.perf_counter() - t0
    for key in ("features", "tree", "scorers"):
        seconds[f"shard_{key}_sum"] = sum(r.seconds[key] for r in results)

    t0 = time.perf_counter()
    tree, weights = assemble(plan, config.tree, results, top_weights, vectorizer.n_features_)
    model = XmrModel(
        normalization=config.log.normalization,
        features=config.features,
        tree=config.tree,
        training=config.training,
        search=config.search,
        language=config.language,
        fuzzy=config.fuzzy,
        context=config.context,
    )
    model.vectorizer_ = vectorizer
    model.tree_ = tree
    model.weights_ = weights
    model.popularity_ = PopularityIndex(labels)
    model.n_examples_ = len(targets)
    model.seconds_ = {}
    seconds["assemble"] = time.perf_counter() - t0
    data.summary.update(
        {
            "training_examples": len(targets),
            "features": int(vectorizer.n_features_),
            "tree_nodes": int(tree.n_nodes),
            "tree_layers": int(tree.n_layers),
            "weights_nnz": int(weights.nnz),
            "scorer_layers": merge_reports(top_report, [r.report for r in results]),
            "shards": {
                "count": plan.n_shards,
                "sizes": plan.sizes.tolist(),
                "largest_share": round(float(plan.sizes.max() / max(plan.sizes.sum(), 1)), 4),
            },
        }
    )
    return model


def _peak_rss_mb() -> float:
    """This process's peak resident memory (Linux: ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cluster_size(cores: int | None = None) -> tuple[int, int]:
    """(worker processes, numba threads each) for a LocalCluster on this machine."""
    cores = cores or os.cpu_count() or 1
    workers = max(1, cores // 2)
    return workers, max(1, cores // workers)


@contextmanager
def dask_client(scheduler: str, workers: int = 0, processes: bool = True):  # type: ignore[no-untyped-def]
    """A ``distributed.Client``: a LocalCluster for ``local``, else the scheduler at that address."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "--scheduler needs Dask: pip install 'session-autocomplete[scale]' (dask[distributed])"
        ) from exc
    if scheduler == "local":
        n = workers or cluster_size()[0]
        threads = max(1, (os.cpu_count() or 1) // n)
        with (
            LocalCluster(
                n_workers=n, threads_per_worker=1, processes=processes, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client, threads
    elif scheduler.startswith(("tcp://", "tls://", "inproc://")):
        with Client(scheduler) as client:
            yield client, 0
    else:
        raise ValueError(f"--scheduler {scheduler!r}: use 'local' or an address such as tcp://HOST:8786")


def build_model_distributed(
    log: str | Path,
    config: TrainConfig,
    out: str | Path,
    scheduler: str,
    shards: int = 0,
    workers: int = 0,
    candidate_rows: CandidateRows | None = None,
) -> dict:
    """``build_model`` on Dask: the same model folder, trained by log and shard tasks. The XMR
    scorers are fit shard by shard on the cluster (twice with a ranker and ``ranker.refit``: without
    and with the late sessions); the pair counts, word links, language model and the ranker's
    chain rows are fit here, as :func:`indexer.pipeline.fit_model` does in one process."""
    if config.model != "xmr":
        raise ValueError(
            "--scheduler trains the xmr model; the mpc baseline needs no cluster (drop --scheduler)"
        )
    t_start = time.perf_counter()
    with dask_client(scheduler, workers) as (client, threads):
        data = read_logs(log, config, client)

        def sharded(part: TrainingData, config: TrainConfig, progress: bool, summary: dict) -> XmrModel:
            return fit_sharded(part, config, client, shards, threads)

        model = fit_model(data, config, False, candidate_rows, fit_scorers=sharded)
        peaks = client.run(_peak_rss_mb)
    summary = data.summary
    summary["worker_peak_rss_mb"] = sorted(round(v) for v in peaks.values())
    summary["client_peak_rss_mb"] = round(_peak_rss_mb())
    summary["scheduler"] = scheduler
    t0 = time.perf_counter()
    summary["seconds"]["total"] = t0 - t_start
    model.save(out, summary={"config": config.to_dict(), **summary})
    summary["seconds"]["save"] = time.perf_counter() - t0
    summary["seconds"]["total"] = time.perf_counter() - t_start
    summary["model_bytes"] = folder_bytes(out)
    return summary
