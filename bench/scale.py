"""``make bench-scale`` (``python -m bench.scale``): training time, peak memory and latency at scale.

Runs (``--runs``, in this order; each trains in a child process for a clean peak-memory figure):

* ``aol1m``: the large log in one process; ``aol1m-dask1``, ``aol1m-dask2``: the same on a
  Dask LocalCluster of 1 and 2 worker processes (``--scheduler local --workers N``);
* ``syn1m``, ``syn3m``: synthetic scale logs (``indexer.synthetic.write_scale_log``) sized for
  about 1M and 3M labels, trained on Dask (``--scale-workers``), written to ``--scratch``;
* ``serve``: the largest synthetic model served by ``autocomplete serve --workers 2``: time until
  ready, and each worker's RSS and PSS (the memory-mapped model pages are shared: PSS counts a
  shared page once across the processes that map it).

Every trained model is scored in this process on its log's test split (MRR, in-process
single-keystroke latency p50/p99). Results go to ``scale.json`` / ``scale.md`` under ``--out``,
merged with the runs already there, so the big runs can be made one at a time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from autocomplete.completer import load_completer
from autocomplete.evaluation.metrics import evaluate
from autocomplete.evaluation.protocols import make_examples
from autocomplete.evaluation.server_process import ServerProcess
from indexer.config import load_train_config
from indexer.pipeline import folder_bytes
from indexer.querylog import read_query_log
from indexer.synthetic import ScaleLogParams, write_scale_log

RUNS = ("aol1m", "aol1m-dask1", "aol1m-dask2", "syn1m", "syn3m", "serve")
# sessions of a synthetic log for about 1M / 3M labels (measured: see docs/scaling.md)
SYNTHETIC = {"syn1m": 1_700_000, "syn3m": 6_000_000}
SYNTHETIC_SETTINGS = ["training.prefixes_per_pair=1", "privacy.min_users=1"]

# the child that trains: reports its descendants' peak RSS (Dask workers included, when reaped)
_WRAPPER = (
    "import json, resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "print(json.dumps({'rc': r.returncode, 'seconds': time.perf_counter() - t,\n"
    "    'peak_mb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))\n"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n")[0])
    parser.add_argument("--log", required=True, help="the large real log (aol1m)")
    parser.add_argument("--config", default="configs/aol1m.toml")
    parser.add_argument("--synthetic-config", default="configs/aol.toml", help="how to read synthetic logs")
    parser.add_argument("--out", default="bench")
    parser.add_argument("--scratch", default="/tmp/autocomplete-scale", help="synthetic logs and models")
    parser.add_argument("--runs", default=",".join(RUNS[:3]), help=f"comma-separated, of {', '.join(RUNS)}")
    parser.add_argument("--scale-workers", type=int, default=2, help="Dask workers of the synthetic runs")
    args = parser.parse_args(argv)
    runs = [r for r in args.runs.split(",") if r]
    unknown = sorted(set(runs) - set(RUNS))
    if unknown:
        parser.error(f"unknown runs {unknown}; choose from {', '.join(RUNS)}")
    out, scratch = Path(args.out), Path(args.scratch)
    out.mkdir(parents=True, exist_ok=True)
    scratch.mkdir(parents=True, exist_ok=True)
    path = out / "scale.json"
    report = json.loads(path.read_text()) if path.exists() else {}
    report = report if isinstance(report, dict) and "runs" in report else {"runs": {}}
    for run in runs:
        if run == "serve":
            report["runs"][run] = _serve(scratch)
        elif run.startswith("aol1m"):
            workers = int(run[-1]) if "dask" in run else 0
            report["runs"][run] = _train_and_score(args.log, args.config, [], scratch / run, workers)
        else:
            log = scratch / f"{run}.tsv.gz"
            made = _synthetic_log(log, SYNTHETIC[run])
            row = _train_and_score(
                log, args.synthetic_config, SYNTHETIC_SETTINGS, scratch / run, args.scale_workers
            )
            report["runs"][run] = {**row, "log_rows": made["rows"], "log_seconds": made["seconds"]}
        path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        (out / "scale.md").write_text(_table(report["runs"]), encoding="utf-8")
        print(_table({run: report["runs"][run]}), flush=True)
    return 0


def _synthetic_log(path: Path, sessions: int) -> dict:
    if path.exists():
        return json.loads(path.with_suffix(".json").read_text())
    t0 = time.perf_counter()
    made: dict[str, float] = dict(write_scale_log(path, ScaleLogParams(sessions=sessions, seed=0)))
    made["seconds"] = time.perf_counter() - t0
    path.with_suffix(".json").write_text(json.dumps(made))
    return made


def _train_and_score(
    log: str | Path, config_path: str, settings: list[str], folder: Path, workers: int
) -> dict:
    shutil.rmtree(folder, ignore_errors=True)
    command = [sys.executable, "-m", "autocomplete.cli", "train", "--config", config_path]
    command += ["--log", str(log), "--out", str(folder), "--quiet"]
    for setting in settings:
        command += ["--set", setting]
    if workers:
        command += ["--scheduler", "local", "--workers", str(workers)]
    child = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *command], capture_output=True, text=True, check=True
    )
    trained = json.loads(child.stdout.strip().splitlines()[-1])
    if trained["rc"]:
        raise RuntimeError(f"training failed ({trained['rc']}): {' '.join(command)}")
    summary = json.loads((folder / "params.json").read_text())["summary"]
    config = load_train_config(config_path, settings)
    t0 = time.perf_counter()
    completer = load_completer(folder)
    load_seconds = time.perf_counter() - t0
    pairs = read_query_log(log, config.log).pairs(config.eval.split)
    examples = make_examples(pairs, config.eval.protocol, config.eval.seed)
    params = config.eval
    metrics = evaluate(
        completer,
        examples,
        k=params.k,
        latency_warmup=params.latency_warmup,
        latency_calls=params.latency_calls,
    )
    return {
        "log": Path(log).name,
        "workers": workers,
        "labels": summary.get("labels"),
        "training_examples": summary.get("training_examples"),
        "train_seconds": round(trained["seconds"], 1),
        "peak_rss_mb": round(trained["peak_mb"]),
        "worker_peak_rss_mb": summary.get("worker_peak_rss_mb"),
        "client_peak_rss_mb": summary.get("client_peak_rss_mb"),
        "shards": summary.get("shards"),
        "model_bytes": folder_bytes(folder),
        "load_seconds": round(load_seconds, 2),
        "stage_seconds": {k: round(v, 2) for k, v in summary.get("seconds", {}).items()},
        "mrr": metrics["mrr"],
        "latency_ms": metrics["latency_ms"],
        "folder": str(folder),
    }


def _proc_kb(pid: int, name: str, key: str) -> int:
    for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _serve(scratch: Path) -> dict:
    folders = [scratch / run for run in ("syn3m", "syn1m") if (scratch / run / "params.json").exists()]
    if not folders:
        raise RuntimeError("serve: train syn1m or syn3m first (--runs syn1m,serve)")
    folder = folders[0]
    t0 = time.perf_counter()
    with ServerProcess(folder, workers=2, ready_timeout=600) as server:
        ready = time.perf_counter() - t0
        time.sleep(2)  # both workers up
        workers = [pid for pid in _children(server.process.pid) if _proc_kb(pid, "status", "VmRSS") > 50_000]
        memory = [
            {
                "rss_mb": round(_proc_kb(pid, "status", "VmRSS") / 1024),
                "pss_mb": round(_proc_kb(pid, "smaps_rollup", "Pss") / 1024),
            }
            for pid in workers
        ]
    summary = json.loads((folder / "params.json").read_text())["summary"]
    return {
        "model": folder.name,
        "labels": summary.get("labels"),
        "model_bytes": folder_bytes(folder),
        "ready_seconds": round(ready, 1),
        "workers": memory,
    }


def _table(runs: dict) -> str:
    lines = [
        "| run | labels | train s | peak RSS MB (max process) | worker peaks MB | model MB | MRR "
        "| p50 ms | p99 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in runs.items():
        if name == "serve":
            continue
        lat = r["latency_ms"]
        lines.append(
            f"| {name} | {r['labels']:,} | {r['train_seconds']:.1f} | {r['peak_rss_mb']} | "
            f"{r.get('worker_peak_rss_mb') or '-'} | {r['model_bytes'] / 1e6:.1f} | {r['mrr']:.4f} | "
            f"{lat['p50']:.3f} | {lat['p99']:.3f} |"
        )
    if "serve" in runs:
        s = runs["serve"]
        per = ", ".join(f"RSS {w['rss_mb']} / PSS {w['pss_mb']}" for w in s["workers"])
        lines += [
            "",
            "| served model | labels | model MB | ready s (2 workers) | per worker MB |",
            "|---|---|---|---|---|",
            f"| {s['model']} | {s['labels']:,} | {s['model_bytes'] / 1e6:.1f} | {s['ready_seconds']} "
            f"| {per} |",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
