"""``make bench`` (``python -m bench.quality``): every system trained and evaluated side by side.

Systems, all on the same examples (the config's split and protocol, sampled by default):

- ``mpc``: the most-popular baseline;
- ``cooccurrence``: the next queries that followed this exact previous query in training, then MPC,
  then the tail rule (:mod:`bench.cooccurrence`), the baseline every quality claim is against;
- ``mpc+words``: MPC, then the unfinished last word completed from the training vocabulary, then
  the tail rule (:mod:`bench.word_completion`);
- ``xmr``: today's model: the config without the learned ranker and the language model (exact
  prefix -> tails -> popular fill, in chain order);
- ``default``: what the config trains, the learned ranker over every generator included;
- ``pecos``: libpecos XR-Linear, hierarchical k-means on PIFA, over the same input features and
  training examples, top-k by beam search then filtered by the prefix.

Selectable with ``--systems`` only: ``xmr-trie0`` .. ``xmr-trie3`` (the trie-depth sweep).

Reported: per system strict MRR (quoted first), MRR, seen/unseen MRR (next query is / is not a
training label), BLEU, success@10, empty answers, latency; the keystroke protocol's accepted@5 and
saved@5 per test query (``--keystroke-pairs`` of them, 0 = all, for ``KEYSTROKE_SYSTEMS``); the
context gain with its paired bootstrap 95% CI (``CONTEXT_SYSTEMS``); and the new-users protocol
(``--new-users-systems``, trained without the new users, tested on theirs: the context gain there
can only come from generalizing). Writes ``results.json``, ``results.md`` and ``mrr_by_prefix_length.png``;
aggregates only, never a query.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from autocomplete.completer import candidate_rows, load_completer
from autocomplete.evaluation.metrics import (
    answer_all,
    evaluate,
    evaluate_keystrokes,
    per_example,
    training_labels,
)
from autocomplete.evaluation.protocols import BUCKETS, Examples, make_examples
from autocomplete.generators import FuzzyPrefix
from indexer.config import TrainConfig, load_train_config
from indexer.pipeline import TrainingData, build_model, folder_bytes, prepare
from indexer.querylog import Pairs, is_new_user, read_query_log
from indexer.typos import typo_examples

# the chain before the learned ranker (with the tails link the learned chain no longer has)
TODAY = ["ranker.kind=none", "language.enabled=false", "search.unseen_tails=1"]
SYSTEMS: dict[str, list[str]] = {
    "mpc": [],
    "cooccurrence": [],
    "mpc+words": [],
    "xmr": TODAY,
    "default": [],
    "pecos": [],
    "xmr-trie0": [*TODAY, "tree.trie_depth=0"],
    "xmr-trie1": [*TODAY, "tree.trie_depth=1"],
    "xmr-trie2": [*TODAY, "tree.trie_depth=2"],
    "xmr-trie3": [*TODAY, "tree.trie_depth=3"],
}
DEFAULT_SYSTEMS = ["mpc", "cooccurrence", "mpc+words", "xmr", "default", "pecos"]
KEYSTROKE_SYSTEMS = {"mpc", "cooccurrence", "mpc+words", "xmr", "default"}
CONTEXT_SYSTEMS = {"cooccurrence", "xmr", "default"}
NEW_USERS_SYSTEMS = ("xmr", "default")
TYPO_SYSTEMS = {"mpc", "default"}


def typo_report(completer: Any, examples: Examples, params: Any, seen: Any) -> dict:
    """The typo benchmark (variant A): the examples of 3+ typed characters clean and with one
    seeded keyboard typo each, MRR per kind of edit, latency of both, and how often the fuzzy
    walk ran (keystrokes that walked the trie, of the typo'd and of the clean ones)."""
    keep = [i for i, prefix in enumerate(examples.prefix) if len(prefix) >= 3]
    clean = examples.subset(keep)
    typoed, kinds = typo_examples(list(zip(clean.previous, clean.prefix, clean.target)), "A", params.seed)
    typo = Examples([p for p, _, _ in typoed], [x for _, x, _ in typoed], clean.target, clean.pair)
    fuzzy = next(
        (
            g
            for g in getattr(getattr(completer, "chain", None), "generators", ())
            if isinstance(g, FuzzyPrefix)
        ),
        None,
    )
    out: dict[str, Any] = {}
    for name, subset in (("clean", clean), ("typo", typo)):
        asked = fuzzy.asked if fuzzy is not None else 0
        out[name] = evaluate(
            completer, subset, k=params.k, latency_warmup=params.latency_warmup,
            latency_calls=params.latency_calls, seen=seen,
        )  # fmt: skip
        walked = (fuzzy.asked - asked) if fuzzy is not None else 0
        calls = len(subset) + params.latency_warmup + 2 * params.latency_calls  # prepared, then cold
        out[name]["fuzzy_walk_share"] = walked / calls if fuzzy is not None else None
    rr = per_example(typo, answer_all(completer, typo, params.k), params.k)["rr"]
    out["mrr_by_kind"] = {
        kind: float(rr[[i for i, k in enumerate(kinds) if k == kind]].mean()) for kind in sorted(set(kinds))
    }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__.split("\n")[0])
    parser.add_argument("--log", required=True)
    parser.add_argument("--config", default="configs/aol.toml")
    parser.add_argument("--out", default="bench")
    parser.add_argument(
        "--systems",
        default="default",
        help=f"comma-separated subset of {list(SYSTEMS)} (default: {','.join(DEFAULT_SYSTEMS)})",
    )
    parser.add_argument(
        "--keystroke-pairs",
        type=int,
        default=0,
        help="test pairs for the keystroke table (0: all; else a seeded sample)",
    )
    parser.add_argument(
        "--new-users-systems",
        default=",".join(NEW_USERS_SYSTEMS),
        help="systems trained and scored on the new-users protocol too ('' to skip)",
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = DEFAULT_SYSTEMS if args.systems == "default" else [s.strip() for s in args.systems.split(",")]
    unknown = [n for n in names if n not in SYSTEMS]
    if unknown:
        parser.error(f"unknown systems {unknown}; choose from {list(SYSTEMS)}")
    base = load_train_config(args.config)
    log = read_query_log(args.log, base.log)
    pairs = log.pairs(base.eval.split)
    examples = make_examples(pairs, base.eval.protocol, base.eval.seed)
    keystroke_pairs = _sample(pairs, args.keystroke_pairs, base.eval.seed)
    data = prepare(args.log, base)
    labels = data.labels
    seen = lambda text: labels.id_of(text) >= 0  # noqa: E731 - the training labels of every system
    results = []
    for name in names:
        print(f"== {name}", file=sys.stderr, flush=True)
        results.append(
            _run_system(name, args, base, data, examples, keystroke_pairs, seen, out / "models" / name)
        )
    report: dict[str, Any] = {
        "log": str(args.log),
        "config": str(args.config),
        "split": base.eval.split,
        "protocol": base.eval.protocol,
        "examples": len(examples),
        "keystroke_pairs": len(keystroke_pairs),
        "test_pairs": len(pairs),
        "machine": {"python": platform.python_version(), "cpus": _cpus()},
        "systems": results,
    }
    new_users = [s.strip() for s in args.new_users_systems.split(",") if s.strip()]
    if any(s not in ("xmr", "default") for s in new_users):
        parser.error(f"--new-users-systems takes xmr and/or default, got {new_users}")
    report["new_users"] = []
    for name in new_users:
        print(f"== new users: {name}", file=sys.stderr, flush=True)
        report["new_users"].append(_new_users(name, args, base, log, out / "models" / f"{name}-new-users"))
    (out / "results.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "results.md").write_text(markdown_table(report), encoding="utf-8")
    _plot(results, out / "mrr_by_prefix_length.png")
    print(markdown_table(report))
    return 0


def _sample(pairs: Pairs, n: int, seed: int) -> Pairs:
    if n <= 0 or n >= len(pairs):
        return pairs
    keep = sorted(random.Random(seed).sample(range(len(pairs)), n))
    return Pairs(
        [pairs.previous[i] for i in keep], [pairs.next[i] for i in keep], [pairs.users[i] for i in keep]
    )


def _build(name: str, args: argparse.Namespace, base: TrainConfig, data: TrainingData, folder: Path) -> Any:
    """The system's completer, trained (into ``folder`` when it has one)."""
    if name == "pecos":
        from bench.pecos_baseline import train_pecos

        return train_pecos(args.log, base, folder)
    if name == "cooccurrence":
        from bench.cooccurrence import CooccurrenceCompleter

        return CooccurrenceCompleter(data, base.log.normalization)
    if name == "mpc+words":
        from bench.word_completion import WordCompletionCompleter

        return WordCompletionCompleter(data, base.log.normalization)
    config = load_train_config(args.config, SYSTEMS[name])
    if name == "mpc":
        config = dataclasses.replace(config, model="mpc")
    build_model(args.log, config, folder, candidate_rows=candidate_rows)
    return load_completer(folder)


def _run_system(
    name: str,
    args: argparse.Namespace,
    base: TrainConfig,
    data: TrainingData,
    examples: Examples,
    keystroke_pairs: Pairs,
    seen: Any,
    folder: Path,
) -> dict:
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    completer = _build(name, args, base, data, folder)
    train_seconds = time.perf_counter() - started
    if name in ("cooccurrence", "mpc+words"):  # built from the shared prepared data: count its preparation
        train_seconds += data.summary["seconds"]["read_log"] + data.summary["seconds"]["labels"]
    params = base.eval
    metrics = evaluate(
        completer,
        examples,
        k=params.k,
        latency_warmup=params.latency_warmup,
        latency_calls=params.latency_calls,
        seen=seen,
        with_context_gain=name in CONTEXT_SYSTEMS,
        resamples=params.bootstrap_resamples,
        seed=params.seed,
    )
    if name in KEYSTROKE_SYSTEMS:
        metrics["keystrokes"] = evaluate_keystrokes(completer, keystroke_pairs, seen)
    if name in TYPO_SYSTEMS:
        metrics["typos"] = typo_report(completer, examples, params, seen)
    return {
        "system": name,
        "overrides": SYSTEMS[name],
        "train_seconds": train_seconds,
        "model_bytes": folder_bytes(folder) if folder.exists() else None,
        **metrics,
    }


def _new_users(name: str, args: argparse.Namespace, base: TrainConfig, log: Any, folder: Path) -> dict:
    """System ``name`` trained without the new users, scored on the new users' pairs of the split."""
    shutil.rmtree(folder, ignore_errors=True)
    config = load_train_config(args.config, [*SYSTEMS[name], "log.holdout_new_users=true"])
    summary = build_model(args.log, config, folder, candidate_rows=candidate_rows)
    completer = load_completer(folder)
    params = base.eval
    fraction, salt = params.new_users_fraction, params.new_users_salt
    pairs = log.only_users(lambda user: is_new_user(user, fraction, salt)).pairs(params.split)
    examples = make_examples(pairs, params.protocol, params.seed)
    metrics = evaluate(
        completer,
        examples,
        k=params.k,
        latency_calls=0,
        seen=training_labels(folder),
        with_context_gain=True,
        resamples=params.bootstrap_resamples,
        seed=params.seed,
    )
    metrics.pop("latency_ms")
    metrics.pop("latency_cold_ms")
    return {
        "system": name,
        "new_users_fraction": fraction,
        "training_pairs": summary["training_pairs"],
        **metrics,
    }


def _f(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ci(gain: dict) -> str:
    lo, hi = gain["ci95"]
    return f"{gain['gain']:+.4f} [{lo:+.4f}, {hi:+.4f}]"


def markdown_table(report: dict) -> str:
    systems = report["systems"]
    lines = [
        f"Split `{report['split']}`, {report['protocol']} protocol, {report['examples']:,} examples "
        f"(log `{Path(report['log']).name}`, {report['machine']['cpus']} CPUs). Strict: prefix shorter "
        "than the next query; seen: the next query is a training label.",
        "",
        "| system | strict MRR | MRR | seen MRR | unseen MRR | BLEU | s@10 | empty | p50 ms | p99 ms "
        "| p99 cold ms | train s | model MB | MRR by prefix length " + " / ".join(BUCKETS) + " |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in systems:
        lat, cold = r["latency_ms"], r.get("latency_cold_ms", {})
        by_length = " / ".join(f"{r['by_prefix_length'][b]['mrr']:.3f}" for b in BUCKETS)
        size = "-" if r["model_bytes"] is None else f"{r['model_bytes'] / 1e6:.1f}"
        lines.append(
            f"| {r['system']} | {r['strict_mrr']:.4f} | {r['mrr']:.4f} | {r['seen']['mrr']:.4f} | "
            f"{r['unseen']['mrr']:.4f} | {r['bleu']:.3f} | {r['success_at_10']:.3f} | "
            f"{r['empty_rate']:.1%} | "
            f"{_f(lat['p50'])} | {_f(lat['p99'])} | {_f(cold.get('p99'))} | "
            f"{r['train_seconds']:.1f} | {size} | {by_length} |"
        )
    seen_rate = systems[0]["seen_rate"] if systems else 0.0
    lines += ["", f"Seen examples: {seen_rate:.1%}."]
    keyed = [r for r in systems if "keystrokes" in r]
    if keyed:
        lines += [
            "",
            f"Keystroke protocol: {report['keystroke_pairs']:,} of {report['test_pairs']:,} test queries "
            "typed one character at a time with their previous query; accepted@5: shown among 5 before "
            "fully typed; saved@5: share of its characters not typed when taken the first time (0 if never).",
            "",
            "| system | accepted@5 | saved@5 | seen saved@5 | unseen saved@5 | keystrokes scored |",
            "|---|---|---|---|---|---|",
        ]
        for r in keyed:
            ks = r["keystrokes"]
            lines.append(
                f"| {r['system']} | {ks['accepted_at_5']:.4f} | {ks['saved_at_5']:.4f} | "
                f"{ks['seen']['saved_at_5']:.4f} | {ks['unseen']['saved_at_5']:.4f} | "
                f"{ks['keystrokes_scored']:,} |"
            )
    gained = [r for r in systems if "context_gain" in r]
    if gained:
        g0 = gained[0]["context_gain"]
        lines += [
            "",
            "Context gain: MRR with the previous query minus without, same examples, paired bootstrap "
            f"95% CI ({g0['resamples']} resamples, seed {g0['seed']}).",
            "",
            "| system | MRR with | MRR without | gain [95% CI] | strict gain [95% CI] "
            "| gain by prefix length " + " / ".join(BUCKETS) + " |",
            "|---|---|---|---|---|---|",
        ]
        for r in gained:
            g = r["context_gain"]
            by_length = " / ".join(f"{g['by_prefix_length'][b]['gain']:+.3f}" for b in BUCKETS)
            lines.append(
                f"| {r['system']} | {g['mrr_with']:.4f} | {g['mrr_without']:.4f} | {_ci(g)} | "
                f"{_ci(g['strict'])} | {by_length} |"
            )
    typoed = [r for r in systems if "typos" in r]
    if typoed:
        lines += [
            "",
            "Typo benchmark: the examples with 3+ typed characters, each with one seeded keyboard typo "
            "(variant A: never the first character), beside the same examples clean. Walked: share of "
            "keystrokes (timed ones included) on which the fuzzy walk ran.",
            "",
            "| system | examples | clean MRR | typo MRR | typo strict MRR | typo s@10 | typo empty "
            "| transposition MRR | clean p50/p99 ms | typo p50/p99 ms | walked clean / typo |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in typoed:
            t = r["typos"]
            c, x = t["clean"], t["typo"]
            walked = "-" if x["fuzzy_walk_share"] is None else (
                f"{c['fuzzy_walk_share']:.1%} / {x['fuzzy_walk_share']:.1%}"
            )  # fmt: skip
            lines.append(
                f"| {r['system']} | {x['examples']:,} | {c['mrr']:.4f} | {x['mrr']:.4f} | "
                f"{x['strict_mrr']:.4f} | {x['success_at_10']:.3f} | {x['empty_rate']:.1%} | "
                f"{t['mrr_by_kind'].get('transposition', 0):.4f} | "
                f"{_f(c['latency_ms']['p50'])}/{_f(c['latency_ms']['p99'])} | "
                f"{_f(x['latency_ms']['p50'])}/{_f(x['latency_ms']['p99'])} | {walked} |"
            )
    new_users = report.get("new_users") or []
    if new_users:
        first = new_users[0]
        lines += [
            "",
            f"New-users protocol: each system trained without {first['new_users_fraction']:.0%} of the users "
            f"(stable hash), tested on their {first['examples']:,} {report['split']} examples.",
            "",
            "| system | strict MRR | MRR | seen MRR | unseen MRR | context gain [95% CI] "
            "| strict gain [95% CI] |",
            "|---|---|---|---|---|---|---|",
        ]
        for new in new_users:
            g = new["context_gain"]
            lines.append(
                f"| {new['system']} | {new['strict_mrr']:.4f} | {new['mrr']:.4f} | "
                f"{new['seen']['mrr']:.4f} | {new['unseen']['mrr']:.4f} | {_ci(g)} | {_ci(g['strict'])} |"
            )
    return "\n".join(lines) + "\n"


def _plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for r in results:
        ax.plot(BUCKETS, [r["by_prefix_length"][b]["mrr"] for b in BUCKETS], marker="o", label=r["system"])
    ax.set_xlabel("prefix length (characters)")
    ax.set_ylabel("MRR")
    ax.set_title("MRR by prefix length")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    sys.exit(main())
