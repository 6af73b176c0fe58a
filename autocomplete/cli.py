"""``autocomplete``: train | eval | serve | export-stream | replay | demo.

A domain error (:class:`indexer.errors.AutocompleteError`: config, log, model file, replay target)
is printed as one line and exits with code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from indexer.errors import AutocompleteError, ConfigError


def _train(args: argparse.Namespace) -> int:
    from autocomplete.completer import candidate_rows
    from indexer.config import load_train_config
    from indexer.pipeline import build_model

    config = load_train_config(args.config, args.set)
    if args.model:
        config = dataclasses.replace(config, model=args.model)
    logs = args.log[0] if len(args.log) == 1 else args.log
    if args.scheduler:  # Dask: log files and trie shards as tasks (docs/scaling.md)
        from indexer.distributed import build_model_distributed

        if len(args.log) > 1:
            raise ConfigError("--scheduler takes one --log (a glob or a folder of log files)")
        summary = build_model_distributed(
            logs,
            config,
            args.out,
            args.scheduler,
            shards=args.shards,
            workers=args.workers,
            candidate_rows=candidate_rows,
        )
    else:
        summary = build_model(logs, config, args.out, progress=not args.quiet, candidate_rows=candidate_rows)
    print(json.dumps(summary, indent=2, default=str))
    return 0


def _eval(args: argparse.Namespace) -> int:
    """``autocomplete eval``: the sampled protocol's metrics (overall, strict, seen/unseen, by prefix
    length, context gain with its bootstrap CI) or, with ``--protocol keystroke``, accepted@5 and
    saved@5 per test query; ``--users new`` scores only the new users of the new-users protocol."""
    from autocomplete.completer import load_completer
    from autocomplete.evaluation.metrics import evaluate, evaluate_keystrokes, training_labels
    from autocomplete.evaluation.protocols import make_examples, pair_histories
    from autocomplete.evaluation.report import with_typos
    from autocomplete.evaluation.report import write as write_report
    from indexer.config import load_train_config, train_config_from_mapping
    from indexer.modelio import read_params
    from indexer.querylog import Pairs, is_new_user, read_query_log

    saved_config = read_params(args.model)["summary"].get("config")
    if args.config:
        config = load_train_config(args.config, args.set)
    elif saved_config is None:
        raise ConfigError(f"{args.model}/params.json has no saved config: pass --config")
    else:
        config = train_config_from_mapping(saved_config)
    split = args.split or config.eval.split
    protocol = args.protocol or config.eval.protocol
    completer = load_completer(args.model)
    log = read_query_log(args.log, config.log, progress=not args.quiet)
    if args.users == "new":
        trained = train_config_from_mapping(saved_config) if saved_config else None
        if trained is None or not trained.log.holdout_new_users:
            raise ConfigError(
                f"{args.model} was trained with the new users: --users new needs a model trained "
                "with --set log.holdout_new_users=true"
            )
        fraction, salt = trained.eval.new_users_fraction, trained.eval.new_users_salt
        log = log.only_users(lambda user: is_new_user(user, fraction, salt))
    pairs = log.pairs(split)
    histories = pair_histories(log, split, config.context.history_length) if args.history else None
    if args.limit and protocol == "keystroke":
        pairs = Pairs(pairs.previous[: args.limit], pairs.next[: args.limit], pairs.users[: args.limit])
    seen = training_labels(args.model)
    if protocol == "keystroke":
        report = {
            "queries": len(pairs),
            "keystrokes": evaluate_keystrokes(completer, pairs, seen, not args.quiet, histories=histories),
        }
    else:
        examples = make_examples(pairs, protocol, config.eval.seed, histories)
        if args.limit:
            examples = examples.head(args.limit)
        if args.typos:
            examples = with_typos(examples, args.typos, config.eval.seed)
        report = evaluate(
            completer,
            examples,
            k=config.eval.k,
            progress=not args.quiet,
            latency_warmup=config.eval.latency_warmup,
            latency_calls=config.eval.latency_calls,
            seen=seen,
            with_context_gain=not args.no_context_gain,
            resamples=config.eval.bootstrap_resamples,
            seed=config.eval.seed,
        )
    report.update(
        {
            "model": str(args.model),
            "kind": completer.kind,
            "split": split,
            "protocol": protocol,
            "users": args.users,
            "typos": args.typos,
            "history": bool(args.history),
        }
    )
    if args.markdown and protocol != "keystroke":
        write_report(report, args.markdown)
    text = json.dumps(report, indent=2)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


def _export_stream(args: argparse.Namespace) -> int:
    """``autocomplete export-stream``: the stored submits of the service's Redis as a TSV log."""
    from autocomplete.config import load_serve_config
    from autocomplete.streamlog import export_stream
    from sessions.livecounts import LiveCountsError

    settings = load_serve_config(args.config)
    url = args.redis_url or settings.redis_url
    if not url:
        raise ConfigError(
            "export-stream reads the submits from Redis: pass --redis-url or set serve.redis_url "
            "(an in-process store lives and dies with its server)"
        )
    try:
        rows = export_stream(url, args.prefix or settings.redis_prefix, args.out)
    except LiveCountsError as exc:
        raise ConfigError(f"cannot read the submits from {url}: {exc}") from exc
    print(f"{rows} submits written to {args.out}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from autocomplete.server import run

    run(
        model=args.model,
        config=args.config,
        host=args.host,
        port=args.port,
        redis_url=args.redis_url,
        workers=args.workers,
    )
    return 0


def _replay(args: argparse.Namespace) -> int:
    """The ``autocomplete replay`` command; exits 1 when the server broke the protocol."""
    from autocomplete.evaluation.replay import run_replay
    from autocomplete.evaluation.replay_plan import markdown, plan_replay
    from indexer.config import load_train_config
    from indexer.querylog import read_query_log

    if args.concurrency < 1:
        raise ConfigError(f"--concurrency must be at least 1, got {args.concurrency}")
    config = load_train_config(args.config)
    log = read_query_log(args.log, config.log, progress=True)
    plan = plan_replay(log, args.split, args.protocol, config.eval.seed, args.sessions)
    report, _ = run_replay(
        args.url,
        plan,
        concurrency=args.concurrency,
        speed=args.speed,
        k=config.eval.k,
        seed=config.eval.seed,
        progress=True,
    )
    report["log"] = Path(args.log).name
    text = json.dumps(report, indent=2)
    for path, content in ((args.json, text + "\n"), (args.markdown, markdown(report))):
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(content, encoding="utf-8")
    print(markdown(report))
    if report["inputs"]["errors"].get("rate_limited"):
        print(
            "note: the server rate-limited this client; for --speed max start it with "
            "AUTOCOMPLETE_MAX_INPUTS_PER_SECOND=100000 AUTOCOMPLETE_MAX_INPUTS_PER_SECOND_PER_IP=100000"
        )
    return 1 if report["violations"] else 0


def _demo(args: argparse.Namespace) -> int:
    """Build the demo model from the project's own synthetic log, unless a loadable one is there."""
    from autocomplete.completer import candidate_rows, load_completer
    from indexer.config import load_train_config
    from indexer.errors import ModelFileError
    from indexer.pipeline import build_model
    from indexer.synthetic import generate_log

    out = Path(args.out)
    if out.exists():
        try:
            load_completer(out, warm_up=False)
            print(f"demo model already at {out}")
            return 0
        except ModelFileError as exc:
            print(f"rebuilding the demo model: {exc}", file=sys.stderr)
            shutil.rmtree(out)
    log = generate_log(out.parent / "demo-log.tsv", n_users=args.users, seed=args.seed)
    build_model(
        log, load_train_config(args.config), out, progress=not args.quiet, candidate_rows=candidate_rows
    )
    print(f"demo model built at {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autocomplete", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="build a model folder from a query log")
    p.add_argument("--config", required=True, help="configs/*.toml")
    p.add_argument(
        "--log",
        required=True,
        action="append",
        help="query log (.tsv, .tsv.gz, or one query per line); repeat to train on several "
        "(the original log and an exported stream)",
    )
    p.add_argument("--out", required=True, help="model folder to write")
    p.add_argument("--model", choices=["xmr", "mpc"], help="model kind (default: the config's, xmr)")
    p.add_argument(
        "--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config value"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--scheduler",
        help="train on Dask: 'local' (a LocalCluster sized to this machine) or tcp://HOST:PORT; "
        "--log may then be a glob or a folder (default: one process, no Dask)",
    )
    p.add_argument("--shards", type=int, default=0, help="trie shards (default: 4 per Dask worker)")
    p.add_argument(
        "--workers", type=int, default=0, help="LocalCluster worker processes (default: cores / 2)"
    )
    p.set_defaults(func=_train)

    p = sub.add_parser("eval", help="evaluate a model folder on a log's split")
    p.add_argument("--model", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--config", help="default: the config saved in the model folder")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p.add_argument("--split", choices=["test", "valid", "train"])
    p.add_argument("--protocol", choices=["sampled", "keystroke"])
    p.add_argument(
        "--limit", type=int, default=0, help="only the first N examples (keystroke protocol: N queries)"
    )
    p.add_argument(
        "--users",
        choices=["all", "new"],
        default="all",
        help="new: only the new users' pairs (a model trained with --set log.holdout_new_users=true)",
    )
    p.add_argument("--no-context-gain", action="store_true", help="skip the run without the previous query")
    p.add_argument(
        "--typos",
        choices=["A", "B"],
        help="one seeded keyboard typo in every prefix of 3+ characters (A: never the first character)",
    )
    p.add_argument(
        "--history",
        action="store_true",
        help="every keystroke comes with the person's history (all their earlier queries)",
    )
    p.add_argument("--markdown", help="also write a Markdown report here, and its MRR plot beside it")
    p.add_argument("--json", help="also write the report here")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_eval)

    p = sub.add_parser("serve", help="serve a model over HTTP and websockets")
    p.add_argument("--model", required=True)
    p.add_argument("--config", default=None, help="configs/serve.toml")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--redis-url",
        default=None,
        help="redis://HOST:PORT/DB, or redis+cluster://HOST:PORT,HOST:PORT,... for a Redis Cluster "
        "(default: in-process sessions)",
    )
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(func=_serve)

    p = sub.add_parser("export-stream", help="write the service's stored submits as a TSV query log")
    p.add_argument("--out", required=True, help="the log to write (.tsv, or .tsv.gz compressed)")
    p.add_argument("--config", default=None, help="configs/serve.toml (its redis_url and redis_prefix)")
    p.add_argument("--redis-url", default=None, help="redis://HOST:PORT/DB (default: serve.redis_url)")
    p.add_argument("--prefix", default=None, help="the service's key prefix (default: serve.redis_prefix)")
    p.set_defaults(func=_export_stream)

    p = sub.add_parser(
        "replay", help="replay a log's sessions keystroke by keystroke through a running server"
    )
    p.add_argument("--url", required=True, help="ws://HOST:PORT/v1/ws")
    p.add_argument("--log", required=True)
    p.add_argument("--config", default="configs/aol.toml", help="how to read the log")
    p.add_argument("--split", default="test", choices=["test", "valid", "train"])
    p.add_argument("--protocol", default="keystroke", choices=["keystroke", "sampled"])
    p.add_argument("--sessions", type=int, default=0, help="replay only the first N sessions (0: all)")
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--speed", default="max", choices=["human", "max"])
    p.add_argument("--json", help="write the report here")
    p.add_argument("--markdown", help="write a Markdown table here")
    p.set_defaults(func=_replay)

    p = sub.add_parser("demo", help="build the demo model from the synthetic log if it is missing")
    p.add_argument("--config", default="configs/demo.toml")
    p.add_argument("--out", default="models/demo")
    p.add_argument("--users", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except AutocompleteError as exc:
        print(f"autocomplete {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
