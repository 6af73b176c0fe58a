"""Choose the ranker's settings on the valid split: one feature collection, many rankers.

Fits the generators on the early training sessions, collects the ranker's training rows on the
late ones (exactly as ``autocomplete train`` does), collects the valid split's candidate rows from
a full model folder, then trains one ranker per setting and reports valid MRR (sampled protocol)
and the scoring time per keystroke, plus what each feature group adds (the ranker retrained without it).
Aggregates only.

    python -m bench.ranker_tuning --log ../shared/data/aol1k-dev.tsv.gz --model models/aol --out bench
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import random
import time
from pathlib import Path

import numpy as np

from autocomplete.candidates import Feature
from autocomplete.completer import candidate_rows
from indexer.config import load_train_config
from indexer.model import load_model
from indexer.pipeline import prepare, ranker_training_rows
from indexer.ranking import TreeRanker

GROUPS = {
    "xmr score": [Feature.MODEL_LOG_SCORE],
    "popularity": [Feature.LOG_COUNT, Feature.IS_LABEL],
    "language model": [Feature.LM_LOGPROB, Feature.LM_END_LOGPROB, Feature.WORDS_ADDED,
                       Feature.COMPLETED_COUNT, Feature.BACKOFF_STEPS],
    "followed previous query": [Feature.PAIR_LOG_COUNT],
    "lengths": [Feature.CHARS_ADDED, Feature.TYPED_CHARS, Feature.ECHO, Feature.HEAD_CHARS],
    "source": [Feature.FROM_EXACT, Feature.FROM_FOLLOWED, Feature.FROM_TAIL, Feature.FROM_GENERATED,
               Feature.FROM_POPULAR, Feature.SOURCE_RANK, Feature.HAS_CONTEXT],
}  # fmt: skip


def valid_rows(model_folder: str, log, seed: int):
    rows_of = candidate_rows(load_model(model_folder))
    pairs = log.pairs("valid")
    rng = random.Random(seed)
    out = []
    for prev, nxt in zip(pairs.previous, pairs.next):
        prefix = nxt[: rng.randint(1, len(nxt))]
        texts, X = rows_of(prev, prefix)
        out.append((X, np.array([t == nxt for t in texts], dtype=bool)))
    return out


def valid_mrr(ranker: TreeRanker, rows, drop: list[int] | None = None, k: int = 10) -> tuple[float, float]:
    rr, seconds = 0.0, 0.0
    for X, hit in rows:
        if not len(hit) or not hit.any():
            continue
        if drop:
            X = X.copy()
            X[:, drop] = 0.0
        t0 = time.perf_counter()
        scores = ranker.score(X)
        seconds += time.perf_counter() - t0
        order = np.argsort(-scores, kind="stable")[:k]
        where = np.flatnonzero(hit[order])
        rr += 1.0 / (where[0] + 1) if len(where) else 0.0
    return rr / len(rows), seconds / len(rows) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ranker_tuning", description=__doc__.split("\n")[0])
    parser.add_argument("--log", required=True)
    parser.add_argument("--config", default="configs/aol.toml")
    parser.add_argument("--model", required=True, help="a model folder trained with this config")
    parser.add_argument("--out", default="bench")
    args = parser.parse_args(argv)
    config = load_train_config(args.config)
    data = prepare(args.log, config)
    _, (X, y, groups) = ranker_training_rows(data, config, candidate_rows)
    rows = valid_rows(args.model, data.log, config.eval.seed)
    results = []
    for n_trees, leaves, rate in itertools.product((50, 100, 200), (15, 31), (0.05, 0.1, 0.2)):
        params = dataclasses.replace(config.ranker, n_trees=n_trees, num_leaves=leaves, learning_rate=rate)
        ranker = TreeRanker(params=params).fit(X, y, groups)
        mrr, us = valid_mrr(ranker, rows)
        results.append(
            {
                "n_trees": n_trees,
                "num_leaves": leaves,
                "learning_rate": rate,
                "valid_mrr": mrr,
                "score_us": us,
            }
        )
        print(results[-1], flush=True)
    best = max(results, key=lambda r: r["valid_mrr"])
    params = dataclasses.replace(
        config.ranker,
        n_trees=best["n_trees"],
        num_leaves=best["num_leaves"],
        learning_rate=best["learning_rate"],
    )
    ranker = TreeRanker(params=params).fit(X, y, groups)
    full, _ = valid_mrr(ranker, rows)
    ablation = {}
    for name, cols in GROUPS.items():  # retrained without the group: what the ranker loses without it
        drop = [int(f) for f in cols]
        X_without = X.copy()
        X_without[:, drop] = 0.0
        without = TreeRanker(params=params).fit(X_without, y, groups)
        ablation[name] = full - valid_mrr(without, rows, drop)[0]
    report = {"grid": results, "best": best, "drop_one_loss": ablation, "training_rows": int(len(y))}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "ranker_tuning.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"best": best, "drop_one_loss": ablation}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
