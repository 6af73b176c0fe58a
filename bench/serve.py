"""``make bench-serve``: the service measured over loopback, as a client would see it.

For each session store (memory, Redis) and worker count (1, 2) a real server is started as a
subprocess, and websocket clients type real queries from a log keystroke by keystroke, submitting
each query at its end:

- one client, closed loop: the round trip of every keystroke (p50/p99);
- ``--sessions`` clients at human speed (open loop, a keystroke every ~``--key-interval`` s, a
  pause between queries): sustained keystrokes/s and the latency of the answers;
- ``--sessions`` clients at full speed (closed loop, next keystroke as soon as the answer came).

The load clients run in ``--client-procs`` processes (one Python client process saturates before
the server does) and offer per-message deflate as browsers do (``--client-compression``). Besides
the client's latencies, every run reports the server's CPU time per keystroke (user + system, all
its processes, from ``/proc``): a figure that other work on a shared machine barely moves. The
queries stay in memory: nothing of the log is written out. Results go to ``bench/serve.json`` and
``bench/serve.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import random
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from autocomplete.evaluation.metrics import latency_summary
from autocomplete.evaluation.server_process import ServerProcess, drop_redis_keys
from indexer.params import LogParams
from indexer.querylog import LogStats, read_rows

SERVER_ENV = {
    "AUTOCOMPLETE_MAX_INPUTS_PER_SECOND": "1000000",  # the per-connection limit would throttle full speed
    "AUTOCOMPLETE_MAX_INPUTS_PER_SECOND_PER_IP": "1000000",  # as would the per-address one (one client)
    "AUTOCOMPLETE_MAX_CONNECTIONS_PER_IP": "100000",
    "AUTOCOMPLETE_LOG_LEVEL": "warning",
}


def load_queries(path: str, limit: int, seed: int, max_chars: int = 60) -> list[str]:
    """Distinct queries of the log (TSV, or one query per line for ``*.txt*``), shuffled."""
    params = LogParams(format="lines" if ".txt" in Path(path).name else "tsv")
    seen: dict[str, None] = {}
    for row in read_rows(path, params, LogStats()):
        query = row.query.strip()
        if 2 <= len(query) <= max_chars and query != "-":
            seen.setdefault(query, None)
        if len(seen) >= limit * 5:
            break
    queries = list(seen)
    random.Random(seed).shuffle(queries)
    return queries[:limit]


def summarize(latencies: list[float], keystrokes: int, seconds: float, superseded: int = 0) -> dict[str, Any]:
    latency = latency_summary(latencies)
    return {
        "keystrokes": keystrokes,
        "seconds": round(seconds, 3),
        "keystrokes_per_second": round(keystrokes / seconds, 1) if seconds else 0.0,
        "answered_with_completions": latency["calls"],
        "superseded": superseded,
        "p50_ms": latency["p50"],
        "p99_ms": latency["p99"],
        "mean_ms": latency["mean"],
    }


# ---------------------------------------------------------------- clients (run in client processes)


def process_tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and all its descendants (Linux ``/proc``; 0.0 elsewhere)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = entry.read_text()
        except OSError:  # the process ended meanwhile
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        child = int(entry.parent.name)
        parent[child] = int(fields[1])
        cpu[child] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += cpu.get(current, 0.0)
        todo += [child for child, up in parent.items() if up == current]
    return total


def store_errors(url: str) -> float:
    """The server's ``autocomplete_session_store_errors_total`` (all ops): store calls that failed,
    were slower than the store timeout, or were skipped while the store was being left alone."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    prefix = "autocomplete_session_store_errors_total"
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


async def _closed_loop(
    url: str, queries: list[str], stop_at: float, max_keys: int, compression: str | None
) -> tuple[list[float], int]:
    """Type queries, each keystroke waiting for its answer; returns the round trips and keystroke count."""
    from websockets.asyncio.client import connect

    latencies: list[float] = []
    keys = 0
    async with connect(url, compression=compression) as ws:
        await ws.recv()
        seq = 0
        while True:
            for query in queries:
                for end in range(1, len(query) + 1):
                    if time.perf_counter() >= stop_at or keys >= max_keys:
                        return latencies, keys
                    seq += 1
                    start = time.perf_counter()
                    await ws.send(json.dumps({"type": "input", "seq": seq, "text": query[:end]}))
                    answer = await _answer(ws)
                    latencies.append(time.perf_counter() - start)
                    keys += 1
                    assert answer["seq"] == seq, "answers must come in seq order"
                await ws.send(json.dumps({"type": "submit", "text": query}))
                await _answer(ws)


async def _answer(ws: Any) -> dict[str, Any]:
    """The next answer to a frame of ours: a ``stored`` frame (what became of a pending submit)
    answers none."""
    while True:
        frame = json.loads(await ws.recv())
        if frame.get("type") != "stored":
            return frame


async def _open_loop(
    url: str,
    queries: list[str],
    stop_at: float,
    key_interval: float,
    rng: random.Random,
    compression: str | None,
) -> tuple[list[float], int, int]:
    """Type at human speed without waiting for answers; returns completion latencies, keys, superseded."""
    from websockets.asyncio.client import connect

    sent: dict[int, float] = {}
    latencies: list[float] = []
    superseded = 0
    keys = 0
    async with connect(url, compression=compression) as ws:
        await ws.recv()

        async def receive() -> None:
            nonlocal superseded
            async for raw in ws:
                answer = json.loads(raw)
                seq = answer.get("seq")
                if answer["type"] == "completions":
                    latencies.append(time.perf_counter() - sent.pop(seq))
                elif answer["type"] == "superseded":
                    sent.pop(seq, None)
                    superseded += 1

        receiver = asyncio.create_task(receive())
        await asyncio.sleep(rng.uniform(0, 1.0))  # people do not start in step
        seq = 0
        try:
            while time.perf_counter() < stop_at:
                query = rng.choice(queries)
                for end in range(1, len(query) + 1):
                    seq += 1
                    sent[seq] = time.perf_counter()
                    await ws.send(json.dumps({"type": "input", "seq": seq, "text": query[:end]}))
                    keys += 1
                    await asyncio.sleep(rng.expovariate(1.0 / key_interval))
                await ws.send(json.dumps({"type": "submit", "text": query}))
                await asyncio.sleep(rng.uniform(0.5, 2.0))
            await asyncio.sleep(0.2)  # let the last answers arrive
        finally:
            receiver.cancel()
    return latencies, keys, superseded


def _client_process(job: dict[str, Any]) -> dict[str, Any]:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    return asyncio.run(_client_main(job))


async def _client_main(job: dict[str, Any]) -> dict[str, Any]:
    rng = random.Random(job["seed"])
    queries: list[str] = job["queries"]
    start_at = time.time() + 0.5  # all processes start together
    await asyncio.sleep(max(0.0, start_at - time.time()))
    stop_at = time.perf_counter() + job["duration"]
    n = job["sessions"]
    if job["mode"] == "full":
        shards = [queries[i::n] or queries for i in range(n)]
        results = await asyncio.gather(
            *(_closed_loop(job["url"], s, stop_at, 10**9, job["compression"]) for s in shards)
        )
        return {
            "latencies": [x for r in results for x in r[0]],
            "keys": sum(r[1] for r in results),
            "superseded": 0,
        }
    results2 = await asyncio.gather(
        *(
            _open_loop(
                job["url"],
                queries,
                stop_at,
                job["key_interval"],
                random.Random(rng.random()),
                job["compression"],
            )
            for _ in range(n)
        )
    )
    return {
        "latencies": [x for r in results2 for x in r[0]],
        "keys": sum(r[1] for r in results2),
        "superseded": sum(r[2] for r in results2),
    }


def run_load(
    url: str,
    queries: list[str],
    mode: str,
    sessions: int,
    duration: float,
    procs: int,
    key_interval: float,
    seed: int,
    compression: str | None = "deflate",
) -> dict[str, Any]:
    per_proc = [sessions // procs + (1 if i < sessions % procs else 0) for i in range(procs)]
    jobs = [
        {
            "url": url,
            "queries": queries[i::procs],
            "mode": mode,
            "sessions": n,
            "duration": duration,
            "key_interval": key_interval,
            "seed": seed + i,
            "compression": compression,
        }
        for i, n in enumerate(per_proc)
        if n
    ]
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(len(jobs)) as pool:
        results = pool.map(_client_process, jobs)
    elapsed = time.perf_counter() - started - 0.5  # the synchronized start
    seconds = min(duration, elapsed) if mode == "full" else duration
    latencies = [x for r in results for x in r["latencies"]]
    out = summarize(
        latencies, sum(r["keys"] for r in results), seconds, sum(r["superseded"] for r in results)
    )
    out.update(mode=mode, sessions=sessions, client_processes=len(jobs))
    return out


def one_client(
    url: str, queries: list[str], keystrokes: int, compression: str | None = "deflate"
) -> dict[str, Any]:
    start = time.perf_counter()
    latencies, keys = asyncio.run(_closed_loop(url, queries, float("inf"), keystrokes, compression))
    return summarize(latencies, keys, time.perf_counter() - start) | {"mode": "one client", "sessions": 1}


# ---------------------------------------------------------------- driver


def bench(args: argparse.Namespace) -> dict[str, Any]:
    queries = load_queries(args.log, args.queries, args.seed)
    if not queries:
        raise SystemExit(f"bench-serve: no usable queries in {args.log}")
    stores = ["memory"] + (["redis"] if args.redis_url else [])
    compression = None if args.client_compression == "none" else args.client_compression
    runs = []
    for store in stores:
        for workers in args.workers:
            prefix = f"bench-{uuid.uuid4().hex}:"
            env = dict(SERVER_ENV, AUTOCOMPLETE_REDIS_PREFIX=prefix)
            redis_url = args.redis_url if store == "redis" else None
            print(f"bench-serve: {store} store, {workers} worker(s)", flush=True)
            with ServerProcess(
                args.model, config=args.config, redis_url=redis_url, workers=workers, env=env
            ) as server:
                one_client(server.ws_url, queries, 300, compression)  # warm up connections and caches
                run: dict[str, Any] = {"store": store, "workers": workers, "results": []}
                for mode in ("one client", "human", "full"):
                    cpu = process_tree_cpu_seconds(server.process.pid)
                    errors = store_errors(server.url)
                    if mode == "one client":
                        result = one_client(server.ws_url, queries, args.keystrokes, compression)
                    else:
                        result = run_load(
                            server.ws_url,
                            queries,
                            mode,
                            args.sessions,
                            args.duration,
                            args.client_procs,
                            args.key_interval,
                            args.seed,
                            compression,
                        )
                    cpu = process_tree_cpu_seconds(server.process.pid) - cpu
                    result["server_cpu_us_per_keystroke"] = round(1e6 * cpu / max(result["keystrokes"], 1), 1)
                    result["load_average"] = round(os.getloadavg()[0], 2)
                    result["session_store_errors"] = int(store_errors(server.url) - errors)
                    run["results"].append(result)
            if redis_url:
                drop_redis_keys(redis_url, prefix)
            runs.append(run)
            for r in run["results"]:
                print(
                    f"  {r['mode']:>10}: {r['keystrokes_per_second']:8.1f} keys/s  p50 {r['p50_ms']} ms  "
                    f"p99 {r['p99_ms']} ms  superseded {r['superseded']}  "
                    f"server CPU {r['server_cpu_us_per_keystroke']} us/key  load {r['load_average']}  "
                    f"store errors {r['session_store_errors']}",
                    flush=True,
                )
    return {
        "model": {
            "folder": str(args.model),
            "kind": json.loads((Path(args.model) / "params.json").read_text()).get("kind"),
        },
        "queries": {"log": Path(args.log).name, "distinct_queries_typed": len(queries)},
        "setup": {
            "sessions": args.sessions,
            "duration_seconds": args.duration,
            "key_interval_seconds": args.key_interval,
            "client_processes": args.client_procs,
            "client_compression": args.client_compression,
            "one_client_keystrokes": args.keystrokes,
            "server_env": SERVER_ENV,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "runs": runs,
    }


def markdown(report: dict[str, Any]) -> str:
    setup = report["setup"]
    lines = [
        "# Service benchmark (`make bench-serve`)",
        "",
        f"Model: `{report['model']['folder']}` ({report['model']['kind']}); typed: "
        f"{report['queries']['distinct_queries_typed']} distinct queries of `{report['queries']['log']}`,"
        " keystroke by keystroke, each submitted at its end.",
        f"Loopback; {setup['cpus']} CPUs shared by the server and {setup['client_processes']} client"
        f" process(es) offering compression `{setup['client_compression']}`;"
        f" {setup['duration_seconds']} s per load run.",
        f"Human speed: a keystroke every {setup['key_interval_seconds']} s on average (exponential),"
        " 0.5-2 s between queries, answers not awaited.",
        "Latency: the client's round trip of a keystroke answered with completions. Server CPU: user +"
        " system time of all server processes per keystroke. Load: the machine's 1-minute load average"
        " after the run (the machine is shared). Store errors: session store calls that failed, timed"
        " out or were skipped while the store was left alone (a failed read leaves a connection with"
        " the context it had; a failed record is a submit acknowledged `stored: false`).",
        "",
        "| store | workers | load | sessions | keystrokes/s | p50 ms | p99 ms | superseded "
        "| server CPU us/keystroke | store errors | load average |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in report["runs"]:
        for r in run["results"]:
            lines.append(
                f"| {run['store']} | {run['workers']} | {r['mode']} | {r['sessions']} | "
                f"{r['keystrokes_per_second']} | {r['p50_ms']} | {r['p99_ms']} | {r['superseded']} | "
                f"{r['server_cpu_us_per_keystroke']} | {r['session_store_errors']} | {r['load_average']} |"
            )
    lines += [
        "",
        "Targets: one client p99 < 5 ms; 64 full-speed sessions >= 3000 keystrokes/s with p99 < 25 ms.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model folder")
    parser.add_argument("--log", required=True, help="query log whose queries are typed")
    parser.add_argument("--config", default="configs/serve.toml")
    parser.add_argument("--redis-url", default="", help="also measure the Redis store (empty: memory only)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--sessions", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--keystrokes", type=int, default=3000, help="one-client keystrokes")
    parser.add_argument("--key-interval", type=float, default=0.15)
    parser.add_argument("--client-procs", type=int, default=2, help="processes the load clients run in")
    parser.add_argument(
        "--client-compression",
        choices=["deflate", "none"],
        default="deflate",
        help="what the clients offer (browsers offer deflate; the server may decline)",
    )
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bench")
    args = parser.parse_args(argv)
    report = bench(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "serve.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "serve.md").write_text(markdown(report))
    print(f"bench-serve: wrote {out / 'serve.json'} and {out / 'serve.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
