"""``make bench-personal`` (``python -m bench.personal``): what history and generalizing context add.

Five systems, each trained twice (on every user, and without the new users of the new-users
protocol), all scored on the same examples of ``--split`` (the config's protocol, sampled by
default):

- ``no-cache-lm``: no cache LM (``language.context_candidates=0``), no word links, no
  reformulations, no history;
- ``plain``: the default chain without word links, reformulations and history
  (``context.enabled=false``, ``context.reformulations=0``, ``context.history=0``), the cache LM on;
- ``+history``: the same with the person's history as a link and as ranker columns;
- ``+word-links``: also the word links (overlap and links between the previous query and each
  candidate, and the ``related`` link);
- ``+reformulations``: also the one-edit reformulations of the previous query: the shipped default.

Every system is scored with each person's history as a deployed service would have it (their
earlier queries, training period included; :func:`autocomplete.evaluation.protocols.pair_histories`)
and without it; the context gain (same model, previous query withheld, history kept) comes with its
paired bootstrap 95% CI overall and by prefix length. The sampled protocol has few examples of
1-2 characters (about 200 on a split of ``aol1k-dev``), so the gain there is also measured on the
keystroke protocol's 1- and 2-character prefixes of every pair, bootstrapped over pairs, beside
the most any reranking of the shipped chain's candidates could gain there (:func:`pool_ceiling`).
On the new users' examples only context that generalizes over people can gain anything. Writes
``personal.json`` and ``personal.md``; aggregates only, never a query.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from autocomplete.candidates import NO_HISTORY
from autocomplete.completer import Completer, candidate_rows, load_completer
from autocomplete.evaluation.metrics import (
    answer_all,
    bootstrap_ci,
    evaluate,
    interleaved_latency,
    per_example,
    training_labels,
)
from autocomplete.evaluation.protocols import BUCKETS, Examples, make_examples, pair_histories
from indexer.config import load_train_config
from indexer.histories import History
from indexer.model import XmrModel, load_model
from indexer.pipeline import build_model
from indexer.querylog import Pairs, is_new_user, read_query_log

_NO_REFORMULATIONS = "context.reformulations=0"
SYSTEMS: dict[str, list[str]] = {
    "no-cache-lm": [
        "context.enabled=false",
        "context.history=0",
        "language.context_candidates=0",
        _NO_REFORMULATIONS,
    ],
    "plain": ["context.enabled=false", "context.history=0", _NO_REFORMULATIONS],
    "+history": ["context.enabled=false", _NO_REFORMULATIONS],
    "+word-links": [_NO_REFORMULATIONS],
    "+reformulations": [],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.personal", description=__doc__.split("\n")[0])
    parser.add_argument("--log", required=True)
    parser.add_argument("--config", default="configs/aol.toml")
    parser.add_argument("--out", default="bench")
    parser.add_argument("--split", default=None, help="the split scored (default: the config's)")
    parser.add_argument(
        "--systems",
        default=",".join(list(SYSTEMS)[1:]),
        help=f"subset of {list(SYSTEMS)} (default: all but the first)",
    )
    parser.add_argument("--set", action="append", default=[], help="section.key=value for every system")
    parser.add_argument("--reuse", action="store_true", help="keep model folders already built under --out")
    args = parser.parse_args(argv)
    names = [s.strip() for s in args.systems.split(",") if s.strip()]
    if unknown := [n for n in names if n not in SYSTEMS]:
        parser.error(f"unknown systems {unknown}; choose from {list(SYSTEMS)}")
    out = Path(args.out)
    base = load_train_config(args.config, args.set)
    split = args.split or base.eval.split
    params = base.eval
    log = read_query_log(args.log, base.log)
    fraction, salt = params.new_users_fraction, params.new_users_salt
    groups = {"all": log, "new users": log.only_users(lambda user: is_new_user(user, fraction, salt))}
    report: dict[str, Any] = {"log": str(args.log), "config": str(args.config), "split": split, "rows": []}
    for group, group_log in groups.items():
        pairs = group_log.pairs(split)
        histories = pair_histories(group_log, split, base.context.history_length)
        examples = make_examples(pairs, params.protocol, params.seed, histories)
        bare = make_examples(pairs, params.protocol, params.seed)
        short, short_bare = (first_characters(pairs, h) for h in (histories, None))
        for name in names:
            new = group != "all"
            folder = out / "models" / f"personal-{name.strip('+')}{'-new-users' if new else ''}"
            overrides = [*args.set, *SYSTEMS[name], *(["log.holdout_new_users=true"] if new else [])]
            if not (args.reuse and (folder / "params.json").exists()):
                shutil.rmtree(folder, ignore_errors=True)
                print(f"== training {name} ({group})", file=sys.stderr, flush=True)
                config = load_train_config(args.config, overrides)
                build_model(args.log, config, folder, candidate_rows=candidate_rows)
            completer = load_completer(folder)
            seen = training_labels(folder)
            for with_history in (False, True) if name != "plain" else (False,):
                print(f"== scoring {name} ({group}, history {with_history})", file=sys.stderr, flush=True)
                metrics = evaluate(
                    completer,
                    examples if with_history else bare,
                    k=params.k,
                    latency_warmup=0 if new else params.latency_warmup,
                    latency_calls=0 if new else params.latency_calls,
                    seen=seen,
                    with_context_gain=True,
                    resamples=params.bootstrap_resamples,
                    seed=params.seed,
                )
                metrics["every_short_prefix"] = short_prefix_gain(
                    completer,
                    short if with_history else short_bare,
                    params.k,
                    params.bootstrap_resamples,
                    params.seed,
                )
                if name == names[-1] and not with_history:
                    metrics["every_short_prefix_ceiling"] = pool_ceiling(
                        candidate_rows(_xmr(folder)),
                        completer,
                        short_bare,
                        seen,
                        params.k,
                        params.bootstrap_resamples,
                        params.seed,
                    )
                report["rows"].append({"system": name, "users": group, "history": with_history, **metrics})
            if not new and name == names[-1]:  # the cost of the history, with machine drift cancelled
                side = interleaved_latency(
                    completer.complete,
                    {"with history": examples, "without history": bare},
                    params.k,
                    params.latency_warmup,
                    params.latency_calls,
                    completer.prepare,
                )
                report["latency_side_by_side"] = {"system": name, **side}
    out.mkdir(parents=True, exist_ok=True)
    (out / "personal.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "personal.md").write_text(markdown_table(report), encoding="utf-8")
    print(markdown_table(report))
    return 0


def first_characters(pairs: Pairs, histories: Sequence[History] | None) -> Examples:
    """The keystroke protocol's examples with 1 or 2 characters typed: two per pair (one for a
    next query of one character)."""
    every = make_examples(pairs, "keystroke", 0, histories)
    return every.subset([j for j, prefix in enumerate(every.prefix) if len(prefix) <= 2])


def short_prefix_gain(completer: Completer, examples: Examples, k: int, resamples: int, seed: int) -> dict:
    """The context gain (MRR with minus without the previous query) on ``examples``; its 95% CI
    from a bootstrap over pairs, since a pair's two prefixes are not independent."""
    rr = per_example(examples, answer_all(completer, examples, k, True), k)["rr"]
    blind = per_example(examples, answer_all(completer, examples, k, False), k)["rr"]
    return _gain_over_pairs(examples, rr - blind, resamples, seed)


def _gain_over_pairs(examples: Examples, gains: np.ndarray, resamples: int, seed: int) -> dict:
    """The mean of per-example ``gains`` averaged per pair first, with its bootstrap 95% CI over pairs."""
    pair = np.asarray(examples.pair_ids())
    sizes = np.bincount(pair).astype(np.float64)
    per_pair = np.bincount(pair, weights=gains)[sizes > 0] / sizes[sizes > 0]
    lo, hi = bootstrap_ci(per_pair, resamples, seed)
    return {
        "examples": len(examples),
        "pairs": int(per_pair.shape[0]),
        "gain": float(per_pair.mean()),
        "ci95": [lo, hi],
    }


def pool_ceiling(
    rows_of: Callable[..., tuple[list[str], np.ndarray]],
    completer: Completer,
    examples: Examples,
    seen: Callable[[str], bool],
    k: int,
    resamples: int,
    seed: int,
) -> dict:
    """The most any reranking of the chain's candidates could gain from the previous query on
    ``examples``: each next query ranked first whenever it is among the candidates asked with the
    previous query (``rows_of``, the chain's pool before ranking), against the answers without it;
    per pair, with its bootstrap 95% CI. Also the shares of next queries that are logged queries
    (``seen``) and that are in the pool at all."""
    asked = zip(examples.previous, examples.prefix, examples.target)
    pooled = np.array(
        [
            target in rows_of(prev, prefix, examples.history_of(j) or NO_HISTORY)[0]
            for j, (prev, prefix, target) in enumerate(asked)
        ],
        dtype=np.float64,
    )
    blind = per_example(examples, answer_all(completer, examples, k, False), k)["rr"]
    return {
        **_gain_over_pairs(examples, pooled - blind, resamples, seed),
        "next_is_logged": float(np.mean([seen(t) for t in examples.target])),
        "in_pool": float(pooled.mean()),
    }


def _xmr(folder: Path) -> XmrModel:
    model = load_model(folder)
    if not isinstance(model, XmrModel):
        raise TypeError(f"{folder}: bench.personal compares XMR chains, not {type(model).__name__}")
    return model


def _ci(gain: dict) -> str:
    lo, hi = gain["ci95"]
    return f"{gain['gain']:+.4f} [{lo:+.4f}, {hi:+.4f}]"


def markdown_table(report: dict) -> str:
    lines = [
        f"Split `{report['split']}` of `{Path(report['log']).name}`. Strict: prefix shorter than the next "
        "query. Context gain: the same model with minus without the previous query (history kept), "
        "paired bootstrap 95% CI; at 1-2 characters: the examples with 1 or 2 characters typed; every "
        "1-2 character prefix: the keystroke protocol's first two prefixes of every pair, CI over pairs.",
        "",
        "| system | users | history | examples | strict MRR | MRR | seen | unseen | context gain [95% CI] "
        "| gain at 1-2 chars [95% CI] | every 1-2 char prefix [95% CI] | gain by prefix length "
        + " / ".join(BUCKETS)
        + " | p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        g = r["context_gain"]
        by_length = " / ".join(f"{g['by_prefix_length'][b]['gain']:+.3f}" for b in BUCKETS)
        short = g["short"]
        every = _ci(r["every_short_prefix"]) if "every_short_prefix" in r else "-"
        p99 = r.get("latency_ms", {}).get("p99")
        lines.append(
            f"| {r['system']} | {r['users']} | {'yes' if r['history'] else 'no'} | {r['examples']:,} | "
            f"{r['strict_mrr']:.4f} | {r['mrr']:.4f} | {r['seen']['mrr']:.4f} | {r['unseen']['mrr']:.4f} | "
            f"{_ci(g)} | {_ci(short)} | {every} | {by_length} | {'-' if p99 is None else f'{p99:.3f}'} |"
        )
    for r in report["rows"]:
        if "every_short_prefix_ceiling" in r:
            c = r["every_short_prefix_ceiling"]
            lines += [
                "",
                f"{r['users'].capitalize()}, `{r['system']}`, every 1-2 character prefix "
                f"({c['examples']:,}): the next query is a logged query in {c['next_is_logged']:.1%} and "
                f"among the chain's candidates (asked with the previous query) in {c['in_pool']:.1%}; "
                "ranking it first "
                f"whenever it is there would gain {_ci(c)}, the most any reranking of these candidates can.",
            ]
    side = report.get("latency_side_by_side")
    if side:
        timed = [name for name in ("with history", "without history") if side[name]["calls"]]
        figures = "; ".join(
            f"{name} p50 {side[name]['p50']:.3f}, p99 {side[name]['p99']:.3f} ms" for name in timed
        )
        lines += [
            "",
            f"One keystroke of `{side['system']}` in-process, the two timed side by side (blocks of 100 "
            f"calls in turn, {side[timed[0]]['calls']:,} each, prepared as the server prepares a submitted "
            f"query): {figures}. The p99 column above times each row alone, minutes apart.",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
