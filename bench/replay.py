"""``make bench-replay``: the test split's sessions replayed keystroke by keystroke under load.

For each worker count (Redis sessions) a real server is started as a subprocess, and the replay
client types the split's sessions at full speed with 1, 16, 64 and 256 concurrent connections.
Each level replays ``max(2 x level, --min-sessions)`` sessions (at most all of them), dealt out to
``--client-procs`` client processes (one Python client saturates before the server does). The table
gives keystrokes/s and end-to-end latency percentiles per level, and the first level whose p99
passes 25 ms. Results go to ``bench/replay.json`` and ``bench/replay.md`` (aggregates only).

``--reload-every S`` measures hot reloads instead (:mod:`bench.reload`): the server serves a
``current`` symlink, swapped every ``S`` seconds to a new model folder while the sessions are
replayed at ``--reload-concurrency``; the latency of keystrokes answered during a swap is
compared with the steady ones, and a damaged folder is offered last. Results go to
``bench/reload.json`` and ``bench/reload.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import uuid
from pathlib import Path
from typing import Any

from autocomplete.evaluation.replay import run_replay
from autocomplete.evaluation.replay_plan import plan_replay
from autocomplete.evaluation.server_process import ServerProcess, drop_redis_keys
from indexer.config import load_train_config
from indexer.querylog import read_query_log

P99_BUDGET_MS = 25.0
SERVER_ENV = {
    "AUTOCOMPLETE_MAX_INPUTS_PER_SECOND": "1000000",  # the per-connection limit would throttle full speed
    # every session comes from 127.0.0.1: the per-address limits would throttle or refuse them
    "AUTOCOMPLETE_MAX_INPUTS_PER_SECOND_PER_IP": "1000000",
    "AUTOCOMPLETE_MAX_CONNECTIONS_PER_IP": "100000",
    "AUTOCOMPLETE_LOG_LEVEL": "warning",
    "AUTOCOMPLETE_LIVE": "false",  # scored as eval: the model as trained (bench/streaming measures live)
    "AUTOCOMPLETE_HISTORY_ENABLED": "false",  # and without the replayed people's histories (eval --history)
}


def bench(args: argparse.Namespace) -> dict[str, Any]:
    config = load_train_config(args.config)
    log = read_query_log(args.log, config.log)
    everything = plan_replay(log, args.split, "keystroke", config.eval.seed)
    runs = []
    for workers in args.workers:
        prefix = f"bench-replay-{uuid.uuid4().hex}:"
        env = dict(SERVER_ENV, AUTOCOMPLETE_REDIS_PREFIX=prefix)
        print(f"bench-replay: {workers} worker(s), Redis sessions", flush=True)
        with ServerProcess(
            args.model, config=args.serve_config, redis_url=args.redis_url, workers=workers, env=env
        ) as server:
            run_replay(server.ws_url, plan_replay(log, args.split, "keystroke", sessions=8), concurrency=4)
            for level in args.levels:
                sessions = min(len(everything.sessions), max(2 * level, args.min_sessions))
                plan = plan_replay(log, args.split, "keystroke", config.eval.seed, sessions)
                report, _ = run_replay(
                    server.ws_url,
                    plan,
                    concurrency=level,
                    speed="max",
                    k=config.eval.k,
                    processes=args.client_procs,
                )
                row = _row(workers, level, report)
                runs.append(row)
                print(
                    f"  concurrency {level:>4}: {row['keystrokes_per_second']:8.1f} keys/s  "
                    f"p50 {row['p50_ms']} ms  p99 {row['p99_ms']} ms  violations {row['violations']}",
                    flush=True,
                )
        drop_redis_keys(args.redis_url, prefix)
    return {
        "model": {
            "folder": str(args.model),
            "kind": json.loads((Path(args.model) / "params.json").read_text()).get("kind"),
        },
        "log": Path(args.log).name,
        "split": args.split,
        "setup": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "server_env": SERVER_ENV,
            "client_processes": args.client_procs,
            "protocol": "keystroke",
            "speed": "max",
        },
        "p99_budget_ms": P99_BUDGET_MS,
        "runs": runs,
        "p99_passes_budget_at": {
            str(w): next(
                (r["concurrency"] for r in runs if r["workers"] == w and r["p99_ms"] > P99_BUDGET_MS), None
            )
            for w in args.workers
        },
    }


def _row(workers: int, level: int, report: dict[str, Any]) -> dict[str, Any]:
    latency = report["latency_ms"]
    return {
        "workers": workers,
        "concurrency": level,
        "sessions": report["sessions"]["done"],
        "keystrokes": report["inputs"]["sent"],
        "seconds": report["seconds"],
        "keystrokes_per_second": report["keystrokes_per_second"],
        "p50_ms": latency["p50"],
        "p90_ms": latency["p90"],
        "p99_ms": latency["p99"],
        "max_ms": latency["max"],
        "server_p99_ms": report["server_ms"]["p99"],
        "mrr": round(report["quality"]["mrr"], 4),
        "errors": sum(report["inputs"]["errors"].values()),
        "violations": sum(report["violations"].values()),
        "submits_not_stored": report["submits"]["not_stored"],
    }


def markdown(report: dict[str, Any]) -> str:
    setup = report["setup"]
    lines = [
        "# Replay under load (`make bench-replay`)",
        "",
        f"Model: `{report['model']['folder']}` ({report['model']['kind']}); the {report['split']} split of"
        f" `{report['log']}`, keystroke protocol, full speed (next keystroke when the answer came), one"
        " websocket per session, sessions in Redis.",
        f"Loopback; {setup['cpus']} CPUs shared by the server and {setup['client_processes']} client"
        " process(es) (the sessions of a level dealt out to them).",
        "Latency: the client's round trip of a keystroke (end to end); server: the model's compute time.",
        "",
        "| workers | concurrency | sessions | keystrokes | keystrokes/s | p50 ms | p90 ms | p99 ms | max ms |"
        " server p99 ms | MRR | errors | violations |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["runs"]:
        lines.append(
            f"| {r['workers']} | {r['concurrency']} | {r['sessions']} | {r['keystrokes']} |"
            f" {r['keystrokes_per_second']} | {r['p50_ms']} | {r['p90_ms']} | {r['p99_ms']} | {r['max_ms']} |"
            f" {r['server_p99_ms']} | {r['mrr']} | {r['errors']} | {r['violations']} |"
        )
    lines.append("")
    for workers, level in report["p99_passes_budget_at"].items():
        where = f"at concurrency {level}" if level is not None else "at none of the levels"
        lines.append(f"- {workers} worker(s): p99 passes {report['p99_budget_ms']:g} ms {where}.")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replay", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model folder")
    parser.add_argument("--log", required=True, help="query log whose sessions are replayed")
    parser.add_argument("--config", default="configs/aol.toml", help="how to read the log")
    parser.add_argument("--serve-config", default="configs/serve.toml")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--split", default="test", choices=["test", "valid", "train"])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--min-sessions", type=int, default=48)
    parser.add_argument("--client-procs", type=int, default=2, help="client processes per level")
    parser.add_argument("--out", default="bench")
    parser.add_argument(
        "--reload-every", type=float, default=0.0, help="seconds between hot reloads (bench.reload; 0: off)"
    )
    parser.add_argument("--reload-concurrency", type=int, default=16)
    parser.add_argument("--reload-sessions", type=int, default=1500, help="sessions replayed while reloading")
    args = parser.parse_args(argv)
    if args.reload_every > 0:
        from bench import reload

        return reload.main(args)
    report = bench(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "replay.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "replay.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
