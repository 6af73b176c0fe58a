"""``python -m bench.replay --reload-every S``: hot reloads while the replay benchmark runs.

For each worker count a real server serves a ``current`` symlink (sessions in Redis). While the
test split's sessions are replayed at full speed (``--reload-concurrency``, 16 by default), a
thread swaps the symlink every ``S`` seconds to a new model folder (the benchmark model under a
new id: its files hard-linked, its params.json given a new ``reload`` field, so each server loads,
verifies, copies and warms a model it has not seen), and times each swap from the symlink's
rename to the moment ``/metrics`` counts a load in every worker. The third swap offers a damaged
folder (one byte of an array file changed): every worker must refuse it and keep answering.

Latency is split by when a keystroke was answered: during a swap (from the rename to the last
worker's load, + 0.25 s) or steady (all the others). Aggregates only go to ``bench/reload.json``
and ``bench/reload.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from autocomplete.evaluation.metrics import latency_summary
from autocomplete.evaluation.replay import run_replay
from autocomplete.evaluation.replay_plan import plan_replay
from autocomplete.evaluation.server_process import ServerProcess, drop_redis_keys
from bench.replay import SERVER_ENV
from indexer.config import load_train_config
from indexer.querylog import read_query_log

MARGIN = 0.25  # seconds after the last worker's load still counted as "during the swap"
DAMAGED_AT = 3  # the n-th swap offers a damaged folder


def linked_copy(model: Path, out: Path, tag: str, damage: bool = False) -> Path:
    """``model`` under a new id: files hard-linked, params.json rewritten with ``reload = tag``;
    with ``damage`` one byte of its largest array is changed (in a private copy of that file)."""
    for path in sorted(model.rglob("*")):
        target = out / path.relative_to(model)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path != model / "params.json":
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)
    params = json.loads((model / "params.json").read_text(encoding="utf-8"))
    params["summary"]["reload"] = tag
    (out / "params.json").write_text(json.dumps(params), encoding="utf-8")
    if damage:
        largest = max((p for p in out.rglob("*.npy")), key=lambda p: p.stat().st_size)
        data = bytearray(largest.read_bytes())
        data[len(data) // 2] ^= 0xFF
        largest.unlink()  # the link, not the original
        largest.write_bytes(bytes(data))
    return out


def _swap(link: Path, target: Path) -> None:
    staging = link.with_name(link.name + ".new")
    staging.unlink(missing_ok=True)
    staging.symlink_to(target)
    os.replace(staging, link)  # atomic: the poll sees the old folder or the new one


def _reloads(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    found: dict[str, float] = {}
    for result, value in re.findall(r'autocomplete_model_reloads_total\{result="(\w+)"\} (\S+)', text):
        found[result] = found.get(result, 0.0) + float(value)
    return found


def _ready(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/readyz", timeout=10) as response:
        return json.loads(response.read())


class Swapper(threading.Thread):
    """Swaps ``link`` every ``every`` seconds until stopped; records each swap's window."""

    def __init__(self, url: str, link: Path, folders: Path, model: Path, workers: int, every: float) -> None:
        super().__init__(daemon=True)
        self.url, self.link, self.folders, self.model = url, link, folders, model
        self.workers, self.every = workers, every
        self.stop = threading.Event()
        self.windows: list[tuple[float, float]] = []  # good swaps: (rename, last worker loaded)
        self.damaged: list[dict[str, Any]] = []
        self.failures: list[str] = []

    def run(self) -> None:
        n = 0
        while not self.stop.wait(self.every):
            n += 1
            damaged = n == DAMAGED_AT
            folder = linked_copy(self.model, self.folders / f"m{n}", f"bench-{n}", damage=damaged)
            before = _reloads(self.url)
            serving = _ready(self.url)["model_id"]
            started = time.perf_counter()
            _swap(self.link, folder)
            result = "refused" if damaged else "loaded"
            want = before.get(result, 0.0) + self.workers
            while _reloads(self.url).get(result, 0.0) < want:
                if time.perf_counter() - started > 120:
                    self.failures.append(f"swap {n}: not every worker reported {result} within 120 s")
                    return
                time.sleep(0.05)
            ended = time.perf_counter()
            if damaged:
                still = {_ready(self.url)["model_id"] for _ in range(4 * self.workers)}
                self.damaged.append(
                    {
                        "seconds": round(ended - started, 2),
                        "refused_by": self.workers,
                        "kept": still == {serving},
                    }
                )
            else:
                self.windows.append((started, ended))


def _split(latencies: np.ndarray, at: np.ndarray, windows: list[tuple[float, float]]) -> np.ndarray:
    during = np.zeros(len(at), dtype=bool)
    for start, end in windows:
        during |= (at >= start) & (at <= end + MARGIN)
    return during


def run(args: argparse.Namespace, workers: int) -> dict[str, Any]:
    config = load_train_config(args.config)
    log = read_query_log(args.log, config.log)
    model = Path(args.model).resolve()
    scratch = Path(tempfile.mkdtemp(prefix="bench-reload-"))
    link = scratch / "current"
    link.symlink_to(model)
    prefix = f"bench-reload-{uuid.uuid4().hex}:"
    env = dict(
        SERVER_ENV,
        AUTOCOMPLETE_REDIS_PREFIX=prefix,
        AUTOCOMPLETE_MODEL_SNAPSHOT_DIR=str(scratch / "snapshots"),
        # a few test queries are longer than the default 100 characters: typed in full, their last
        # prefixes and submits would be answered too_long, errors that have nothing to do with reloading
        AUTOCOMPLETE_MAX_PREFIX_CHARS="400",
        AUTOCOMPLETE_MAX_QUERY_CHARS="400",
    )
    try:
        with ServerProcess(
            link, config=args.serve_config, redis_url=args.redis_url, workers=workers, env=env
        ) as server:
            run_replay(server.ws_url, plan_replay(log, args.split, "keystroke", sessions=8), concurrency=4)
            plan = plan_replay(log, args.split, "keystroke", config.eval.seed, args.reload_sessions)
            swapper = Swapper(server.url, link, scratch, model, workers, args.reload_every)
            swapper.start()
            report, tally = run_replay(
                server.ws_url,
                plan,
                concurrency=args.reload_concurrency,
                speed="max",
                k=config.eval.k,
                processes=args.client_procs,
            )
            swapper.stop.set()
            swapper.join(150)
            final = _ready(server.url)["model_id"]
    finally:
        drop_redis_keys(args.redis_url, prefix)
        shutil.rmtree(scratch, ignore_errors=True)
    latencies = np.asarray(tally.latencies)
    during = _split(latencies, np.asarray(tally.answered_at), swapper.windows)
    steady, swapping = latency_summary(latencies[~during]), latency_summary(latencies[during])
    swap_seconds = [round(end - start, 2) for start, end in swapper.windows]
    return {
        "workers": workers,
        "concurrency": args.reload_concurrency,
        "sessions": report["sessions"]["done"],
        "keystrokes": report["inputs"]["sent"],
        "keystrokes_per_second": report["keystrokes_per_second"],
        "reloads": len(swapper.windows),
        "swap_seconds_median": round(float(np.median(swap_seconds)), 2) if swap_seconds else None,
        "swap_seconds_max": max(swap_seconds) if swap_seconds else None,
        "steady": {"keystrokes": int((~during).sum()), **steady},
        "during_swaps": {"keystrokes": int(during.sum()), **swapping},
        "p99_ratio": round(swapping["p99"] / steady["p99"], 2) if during.any() else None,
        "errors": sum(report["inputs"]["errors"].values()),
        "errors_by_code": dict(report["inputs"]["errors"]),
        "violations": sum(report["violations"].values()),
        "violations_by_kind": dict(report["violations"]),
        "reconnects": tally.reconnects,
        "sessions_failed": tally.sessions_failed,
        "damaged": swapper.damaged,
        "swapper_failures": swapper.failures,
        "final_model_id": final,
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Hot reload under load (`python -m bench.replay --reload-every S`)",
        "",
        f"Model: `{report['model']}`; the {report['split']} split of `{report['log']}`, keystroke protocol,"
        " full speed, sessions in Redis, one websocket per session. Every"
        f" {report['reload_every']:g} s the served `current` symlink is swapped to a new model folder"
        " (same arrays, new id: it is verified and copied once, then each worker loads and warms it); swap"
        f" {DAMAGED_AT} offers a damaged folder (one byte of its largest array changed).",
        f"During a swap: keystrokes answered from the rename until every worker loaded, + {MARGIN} s."
        " Latency: the client's round trip (ms).",
        f"Loopback; {report['setup']['cpus']} CPUs shared by the server,"
        f" {report['setup']['client_processes']}"
        " client processes and whatever else runs (load average at the end:"
        f" {report['setup']['load_average_at_end'][0]:.1f}): compare the two columns of a row, not rows"
        " of different runs.",
        "",
        "| workers | concurrency | keystrokes | keys/s | reloads | swap s (median / max) | steady p50 |"
        " steady p99 | during-swap keystrokes | during p50 | during p99 | p99 ratio | errors | violations |"
        " reconnects | damaged folder |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["runs"]:
        damaged = "; ".join(
            f"refused by {d['refused_by']} worker(s) in {d['seconds']} s, old model kept: {d['kept']}"
            for d in r["damaged"]
        )
        lines.append(
            f"| {r['workers']} | {r['concurrency']} | {r['keystrokes']} | {r['keystrokes_per_second']} |"
            f" {r['reloads']} | {r['swap_seconds_median']} / {r['swap_seconds_max']} |"
            f" {r['steady']['p50']} | {r['steady']['p99']} | {r['during_swaps']['keystrokes']} |"
            f" {r['during_swaps']['p50']} | {r['during_swaps']['p99']} | {r['p99_ratio']} | {r['errors']} |"
            f" {r['violations']} | {r['reconnects']} | {damaged or 'not reached'} |"
        )
    lines.append("")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    runs = []
    for workers in args.workers:
        print(f"bench-replay --reload-every {args.reload_every:g}: {workers} worker(s)", flush=True)
        row = run(args, workers)
        runs.append(row)
        print(json.dumps(row), flush=True)
    report = {
        "model": str(args.model),
        "log": Path(args.log).name,
        "split": args.split,
        "reload_every": args.reload_every,
        "setup": {
            "cpus": os.cpu_count(),
            "client_processes": args.client_procs,
            "margin_seconds": MARGIN,
            "load_average_at_end": os.getloadavg(),
        },
        "runs": runs,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "reload.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "reload.md").write_text(markdown(report))
    print(markdown(report))
    bad = any(r["errors"] or r["violations"] or r["reconnects"] or r["swapper_failures"] for r in runs)
    return 1 if bad else 0
