"""Streaming evaluation: frozen vs live (counts + labels) on a split replayed in time order.

Settings of the live part (``[live] min_users``, ``candidates``, ``min_prefix_chars``) are chosen
on the valid split (``--choose``: the best valid MRR among those not worse than frozen overall nor
in any prefix-length bucket), then the test split is run once with them. Also the single-call
latency of both completers (the live one with all the live labels the split left). Writes
``streaming.json`` and ``streaming.md``; aggregates only, never a query.

    python -m bench.streaming --model models/aol --log ../shared/data/aol1k-dev.tsv.gz --choose --out bench
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
from pathlib import Path

from autocomplete.evaluation.protocols import BUCKETS
from autocomplete.evaluation.streaming import evaluate_stream
from indexer.config import load_train_config, read_toml, train_config_from_mapping
from indexer.model import load_model
from indexer.modelio import read_params
from indexer.querylog import read_query_log

GRID = {"min_users": (1, 2), "candidates": (3, 5, 10), "min_prefix_chars": (1, 2)}


def _rows(report: dict) -> list[tuple[str, float, float, float, list[float]]]:
    """(subset, frozen MRR, live MRR, gain, CI) for overall, strict and every bucket."""
    gain = report["live_gain"]
    rows = [("all", report["frozen"]["mrr"], report["live"]["mrr"], gain["gain"], gain["ci95"])]
    rows.append(
        ("strict", report["frozen"]["strict_mrr"], report["live"]["strict_mrr"], gain["strict"]["gain"],
         gain["strict"]["ci95"])
    )  # fmt: skip
    for b in BUCKETS:
        g = gain["by_prefix_length"][b]
        rows.append((b, g["mrr_without"], g["mrr_with"], g["gain"], g["ci95"]))
    return rows


def not_worse(report: dict) -> bool:
    """Live is not worse than frozen overall nor in any prefix-length bucket."""
    return all(gain >= 0.0 for _, _, _, gain, _ in _rows(report))


def markdown(results: dict) -> str:
    lines = ["# Streaming evaluation: frozen vs live", ""]
    lines.append(f"Model `{results['model']}`, `[live]` settings: {results['live']}.")
    if "choice" in results:
        lines += ["", "Chosen on valid (MRR; ok: live not worse overall nor in any bucket):", ""]
        lines.append("| " + " | ".join(GRID) + " | valid MRR frozen | valid MRR live | ok |")
        lines.append("|---" * (len(GRID) + 3) + "|")
        for row in results["choice"]:
            settings = " | ".join(str(row[key]) for key in GRID)
            ok = "yes" if row["not_worse"] else "no"
            lines.append(f"| {settings} | {row['frozen_mrr']:.4f} | {row['live_mrr']:.4f} | {ok} |")
    for split, report in results["splits"].items():
        lines += ["", f"## {split} ({report['pairs']} pairs, sampled prefixes)", ""]
        lines.append("| prefix | MRR frozen | MRR live | gain | 95% CI |")
        lines.append("|---|---|---|---|---|")
        for name, frozen, live, gain, ci in _rows(report):
            interval = f"[{ci[0]:+.4f}, {ci[1]:+.4f}]"
            lines.append(f"| {name} | {frozen:.4f} | {live:.4f} | {gain:+.4f} | {interval} |")
        if "keystrokes" in report:
            ks = report["keystrokes"]
            lines += ["", "| keystrokes (5 shown) | frozen | live |", "|---|---|---|"]
            for figure in ("saved_at_5", "accepted_at_5"):
                lines.append(f"| {figure} | {ks['frozen'][figure]:.4f} | {ks['live'][figure]:.4f} |")
        if "latency_ms" in report:
            ms = report["latency_ms"]
            lines += ["", "| one completion, ms | p50 | p99 |", "|---|---|---|"]
            for name in ("frozen", "live"):
                lines.append(f"| {name} | {ms[name]['p50']:.3f} | {ms[name]['p99']:.3f} |")
        ll = report["live_labels"]
        lines.append("")
        lines.append(
            f"Live labels: {ll['unseen_queries_live_before_asked_again']} of {ll['unseen_queries']} "
            "asked-for queries the model does not know were live labels before they were asked for "
            f"again ({ll['unseen_pairs_asked_when_live']} of {ll['unseen_pairs']} pairs); "
            f"{ll['admitted']} admitted, {ll['held_at_end']} held at the end (at least "
            f"{ll['min_sessions']} sessions each)."
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.streaming", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a model folder (autocomplete train)")
    parser.add_argument("--log", required=True)
    parser.add_argument("--config", help="default: the config saved in the model folder")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--splits", nargs="+", default=["valid", "test"])
    parser.add_argument("--choose", action="store_true", help="choose [live] settings on valid first")
    parser.add_argument("--keystrokes", action="store_true", help="also accepted@5 and saved@5 (slower)")
    parser.add_argument("--out", default="bench")
    args = parser.parse_args(argv)
    if args.config:
        config = load_train_config(args.config, args.set)
    else:  # the model's own config, with the --set overrides
        saved = read_params(args.model)["summary"]["config"]
        for table, values in read_toml(None, args.set).items():
            saved[table] = {**saved.get(table, {}), **values}
        config = train_config_from_mapping(saved)
    log = read_query_log(args.log, config.log)
    model = load_model(args.model)
    results: dict = {"model": Path(args.model).name, "log": Path(args.log).name}
    if args.choose:
        choice = []
        for values in itertools.product(*GRID.values()):
            setting = dict(zip(GRID, values))
            trial = dataclasses.replace(config, live=dataclasses.replace(config.live, **setting))
            report = evaluate_stream(
                model, log.sessions["valid"], trial, seed=config.eval.seed, resamples=200
            )
            frozen, live = report["frozen"]["mrr"], report["live"]["mrr"]
            choice.append({**setting, "frozen_mrr": frozen, "live_mrr": live, "not_worse": not_worse(report)})
            print(choice[-1], flush=True)
        best = max([c for c in choice if c["not_worse"]] or choice, key=lambda c: c["live_mrr"])
        chosen = {key: best[key] for key in GRID}
        config = dataclasses.replace(config, live=dataclasses.replace(config.live, **chosen))
        results["choice"] = choice
    results["live"] = {
        **dataclasses.asdict(config.live),
        "threshold": config.live.threshold(config.privacy.min_users),
    }
    results["splits"] = {}
    for split in args.splits:
        results["splits"][split] = evaluate_stream(
            model,
            log.sessions[split],
            config,
            k=config.eval.k,
            seed=config.eval.seed,
            keystrokes=args.keystrokes,
            progress=True,
            resamples=config.eval.bootstrap_resamples,
            latency_calls=config.eval.latency_calls,
        )
        print(json.dumps({split: [r[:4] for r in _rows(results["splits"][split])]}), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "streaming.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (out / "streaming.md").write_text(markdown(results), encoding="utf-8")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
