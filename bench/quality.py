"""``make bench`` (``python -m bench.quality``): every system trained and evaluated side by side.

Systems: the most-popular baseline (``mpc``), this model at trie depths 0-3 and at the configured
default (``xmr``), and PECOS itself (``pecos``: libpecos XR-Linear, hierarchical k-means on PIFA,
over the same input features and training examples, top-k by beam search then filtered by the
prefix). Writes ``results.json``, ``results.md`` and ``mrr_by_prefix_length.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from autocomplete.completer import load_completer
from autocomplete.evaluation.metrics import evaluate
from autocomplete.evaluation.protocols import BUCKETS, Examples, make_examples
from indexer.config import EvalParams, TrainConfig, load_train_config
from indexer.pipeline import build_model, folder_bytes
from indexer.querylog import read_query_log

SYSTEMS: dict[str, list[str]] = {
    "mpc": [],
    "xmr-trie0": ["tree.trie_depth=0"],
    "xmr-trie1": ["tree.trie_depth=1"],
    "xmr-trie2": ["tree.trie_depth=2"],
    "xmr-trie3": ["tree.trie_depth=3"],
    "xmr": [],
    "pecos": [],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__.split("\n")[0])
    parser.add_argument("--log", required=True)
    parser.add_argument("--config", default="configs/aol.toml")
    parser.add_argument("--out", default="bench")
    parser.add_argument("--systems", default="all", help="comma-separated subset, e.g. mpc,xmr")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = list(SYSTEMS) if args.systems == "all" else [s.strip() for s in args.systems.split(",")]
    unknown = [n for n in names if n not in SYSTEMS]
    if unknown:
        parser.error(f"unknown systems {unknown}; choose from {list(SYSTEMS)}")
    base = load_train_config(args.config)
    log = read_query_log(args.log, base.log)
    examples = make_examples(log.pairs(base.eval.split), base.eval.protocol, base.eval.seed)
    results = []
    for name in names:
        print(f"== {name}", file=sys.stderr, flush=True)
        results.append(_run_system(name, args, base, examples, out / "models" / name))
    report = {
        "log": str(args.log),
        "config": str(args.config),
        "split": base.eval.split,
        "protocol": base.eval.protocol,
        "examples": len(examples),
        "machine": {"python": platform.python_version(), "cpus": _cpus()},
        "systems": results,
    }
    (out / "results.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "results.md").write_text(markdown_table(report), encoding="utf-8")
    _plot(results, out / "mrr_by_prefix_length.png")
    print(markdown_table(report))
    return 0


def _run_system(
    name: str, args: argparse.Namespace, base: TrainConfig, examples: Examples, folder: Path
) -> dict:
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    if name == "pecos":
        from bench.pecos_baseline import train_pecos

        completer: Any = train_pecos(args.log, base, folder)
    else:
        config = load_train_config(args.config, SYSTEMS[name])
        if name == "mpc":
            config = dataclasses.replace(config, model="mpc")
        build_model(args.log, config, folder)
        completer = load_completer(folder)
    train_seconds = time.perf_counter() - started
    metrics = evaluate_with(completer, examples, base.eval)
    return {
        "system": name,
        "overrides": SYSTEMS[name],
        "train_seconds": train_seconds,
        "model_bytes": folder_bytes(folder),
        **metrics,
    }


def evaluate_with(completer: Any, examples: Examples, params: EvalParams) -> dict:
    return evaluate(
        completer,
        examples,
        k=params.k,
        latency_warmup=params.latency_warmup,
        latency_calls=params.latency_calls,
    )


def markdown_table(report: dict) -> str:
    lines = [
        f"Split `{report['split']}`, {report['protocol']} protocol, {report['examples']:,} examples "
        f"(log `{Path(report['log']).name}`, {report['machine']['cpus']} CPUs).",
        "",
        "| system | train s | model MB | MRR | BLEU | s@1 | s@10 | empty | p50 ms | p99 ms "
        + "| MRR by prefix length "
        + " / ".join(BUCKETS)
        + " |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["systems"]:
        lat = r["latency_ms"]
        by_length = " / ".join(f"{r['by_prefix_length'][b]['mrr']:.3f}" for b in BUCKETS)
        lines.append(
            f"| {r['system']} | {r['train_seconds']:.1f} | {r['model_bytes'] / 1e6:.1f} | {r['mrr']:.3f} | "
            f"{r['bleu']:.3f} | {r['success_at_1']:.3f} | {r['success_at_10']:.3f} | {r['empty_rate']:.0%} | "
            f"{lat['p50']:.3f} | {lat['p99']:.3f} | {by_length} |"
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
