"""``make bench-scale`` (``python -m bench.scale``): training time, peak memory and latency on a large log."""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from autocomplete.completer import load_completer
from autocomplete.evaluation.protocols import make_examples
from bench.quality import evaluate_with
from indexer.config import load_train_config
from indexer.pipeline import folder_bytes
from indexer.querylog import read_query_log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n")[0])
    parser.add_argument("--log", required=True)
    parser.add_argument("--config", default="configs/aol1m.toml")
    parser.add_argument("--out", default="bench")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return _scale(args, out)


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
    metrics = evaluate_with(completer, examples, config.eval)
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


if __name__ == "__main__":
    sys.exit(main())
