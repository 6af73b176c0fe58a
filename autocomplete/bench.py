"""``autocomplete bench``: every system trained and evaluated side by side, in one process.

Systems: the most-popular baseline (``mpc``), this model at trie depths 0-3 and at the configured
default (``xmr``), and PECOS itself (``pecos``: libpecos XR-Linear, hierarchical k-means on PIFA,
over the same input features and training examples, top-k by beam search then filtered by the
prefix). Writes ``results.json``, ``results.md`` and ``mrr_by_prefix_length.png``.

``--scale`` trains on a large log instead and reports training time, peak memory and latency.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from autocomplete.build import build_model, folder_bytes
from autocomplete.completer import load_completer
from autocomplete.config import EvalParams, TrainConfig, load_train_config
from autocomplete.evaluation import BUCKETS, Examples, evaluate, make_examples
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


def main_bench(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.scale:
        return _scale(args, out)
    names = list(SYSTEMS) if args.systems == "all" else [s.strip() for s in args.systems.split(",")]
    unknown = [n for n in names if n not in SYSTEMS]
    if unknown:
        raise ValueError(f"unknown systems {unknown}; choose from {list(SYSTEMS)}")
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
        from autocomplete.pecos_baseline import train_pecos

        completer: Any = train_pecos(args.log, base, folder)
    else:
        config = load_train_config(args.config, SYSTEMS[name])
        if name == "mpc":
            config = dataclasses.replace(config, model="mpc")
        build_model(args.log, config, folder)
        completer = load_completer(folder)
    train_seconds = time.perf_counter() - started
    metrics = _evaluate(completer, examples, base.eval)
    return {
        "system": name,
        "overrides": SYSTEMS[name],
        "train_seconds": train_seconds,
        "model_bytes": folder_bytes(folder),
        **metrics,
    }


def _evaluate(completer: Any, examples: Examples, params: EvalParams) -> dict:
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


def _scale(args: argparse.Namespace, out: Path) -> int:
    """Train in a child process (for a clean peak-memory figure), then time queries here."""
    config = load_train_config(args.config)
    folder = out / "models" / "scale"
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "autocomplete.cli",
            "train",
            "--config",
            str(args.config),
            "--log",
            str(args.log),
            "--out",
            str(folder),
            "--quiet",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    train_seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    completer = load_completer(folder)
    log = read_query_log(args.log, config.log)
    examples = make_examples(log.pairs(config.eval.split), config.eval.protocol, config.eval.seed)
    metrics = _evaluate(completer, examples, config.eval)
    summary = json.loads((folder / "params.json").read_text())["summary"]
    report = {
        "log": str(args.log),
        "labels": summary.get("labels"),
        "training_examples": summary.get("training_examples"),
        "train_seconds": train_seconds,
        "train_peak_rss_mb": peak_mb,
        "model_bytes": folder_bytes(folder),
        "stage_seconds": summary.get("seconds"),
        **metrics,
    }
    (out / "scale.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    lat = metrics["latency_ms"]
    table = (
        "| log | labels | train s | peak RSS MB | model MB | MRR | p50 ms | p99 ms |\n"
        "|---|---|---|---|---|---|---|---|\n"
        f"| {Path(args.log).name} | {report['labels']:,} | {train_seconds:.1f} | {peak_mb:.0f} | "
        f"{report['model_bytes'] / 1e6:.1f} | {metrics['mrr']:.3f} | {lat['p50']:.3f} | {lat['p99']:.3f} |\n"
    )
    (out / "scale.md").write_text(table, encoding="utf-8")
    print(table)
    return 0


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))
