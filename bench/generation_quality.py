"""How often the language-model generators find a next query nobody typed whole in training.

Trains :class:`~indexer.language.WordLanguageModel` on the train split's queries (with their
users), then for every test-split next query that is not a training query cuts a prefix of
random length (1 .. all of its characters, seeded) and asks ``Generator.generate(prefix, 10)``.
Reported: success@10 and MRR of the full generator (word completion + continuation) against the
completed-word-only baseline (the same call with ``max_new_words=0``), overall and split by
whether the rest of the query lies inside the word being typed; ``--cache-weight`` compares
weights of the previous-query cache (the session's previous query is passed along). Only aggregate numbers are
printed, never a query.

    PYTHONPATH=$PWD .venv/bin/python bench/generation_quality.py              # synthetic log
    PYTHONPATH=$PWD .venv/bin/python bench/generation_quality.py --log LOG --config configs/aol.toml
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autocomplete.generation import Generator  # noqa: E402
from indexer.config import load_train_config  # noqa: E402
from indexer.language import WordLanguageModel  # noqa: E402
from indexer.querylog import read_query_log  # noqa: E402
from indexer.synthetic import generate_log  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def rank_of(target: str, texts: list[str]) -> int:
    """1-based rank of ``target`` in ``texts``, 0 when absent."""
    try:
        return texts.index(target) + 1
    except ValueError:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", help="a query log (default: a synthetic one of --users users)")
    parser.add_argument("--config", default=str(ROOT / "configs" / "aol.toml"), help="its [log] settings")
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--min-users", type=int, default=None, help="default: the config's privacy.min_users")
    parser.add_argument("--order", type=int, default=3)
    parser.add_argument("--max-examples", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--split", default="test", choices=("valid", "test"), help="settings are chosen on valid"
    )
    parser.add_argument(
        "--min-end-fraction", type=float, nargs="+", default=[0.02], help="one or more to compare"
    )
    parser.add_argument("--expand", type=int, nargs="+", default=[8], help="one or more to compare")
    parser.add_argument("--discount", type=float, default=0.75)
    parser.add_argument(
        "--cache-weight", type=float, nargs="+", default=[0.0], help="previous-query cache weights to compare"
    )
    args = parser.parse_args()
    config = load_train_config(args.config)
    with tempfile.TemporaryDirectory() as tmp:
        log_path = args.log or generate_log(Path(tmp) / "synthetic.tsv", n_users=args.users, seed=args.seed)
        log = read_query_log(log_path, config.log)
    train_queries = [q for s in log.sessions["train"] for q in s.queries]
    train_users = [s.user for s in log.sessions["train"] for _ in s.queries]
    min_users = config.privacy.min_users if args.min_users is None else args.min_users
    start = time.perf_counter()
    model = WordLanguageModel(order=args.order, min_users=min_users, discount=args.discount).fit(
        train_queries, train_users
    )
    print(
        f"train: {len(train_queries)} queries, {len(set(train_queries))} distinct; order {args.order}, "
        f"min_users {min_users}: {model.summary_['n_words']} words, n-grams per order "
        f"{model.summary_['ngrams_per_order']} (fit {time.perf_counter() - start:.1f} s)"
    )
    seen = set(train_queries)
    pairs = log.pairs(args.split)
    unseen = [(before, query) for before, query in zip(pairs.previous, pairs.next) if query not in seen]
    share = len(unseen) / max(len(pairs), 1)
    print(f"{args.split}: {len(pairs)} next queries, {len(unseen)} ({share:.1%}) not in training")
    rng = random.Random(args.seed)
    if len(unseen) > args.max_examples:
        unseen = rng.sample(unseen, args.max_examples)
    generators = {"completed word only": (Generator(model), 0)}
    for fraction in args.min_end_fraction:
        for expand in args.expand:
            for weight in args.cache_weight:
                name = f"lm (end >= {fraction:g}, expand {expand}, cache {weight:g})"
                generator = Generator(model, min_end_fraction=fraction, expand=expand, cache_weight=weight)
                generators[name] = (generator, None)
    for generator, _ in generators.values():
        generator.warm_up()
    tally: dict[str, dict[str, float]] = {}
    for before, query in unseen:
        cut = rng.randint(1, len(query))
        prefix = query[:cut]
        if prefix.endswith(" ") and cut < len(query):
            group = "rest is whole words"
        elif " " in query[cut:]:
            group = "rest spans words"
        else:
            group = "rest inside the typed word"
        for name, (generator, max_new) in generators.items():
            out = generator.generate(prefix, 10, max_new_words=max_new, previous=before)
            rank = rank_of(query, out.text)
            for key in (f"{name} | all", f"{name} | {group}"):
                row = tally.setdefault(key, {"n": 0, "hits": 0, "rr": 0.0})
                row["n"] += 1
                row["hits"] += rank > 0
                row["rr"] += 1.0 / rank if rank else 0.0
    print(f"{'generator | examples':64s} {'n':>6s} {'success@10':>10s} {'MRR':>7s}")
    for key in sorted(tally, key=lambda k: (k.split(" | ")[1] != "all", k.split(" | ")[1], k)):
        row = tally[key]
        print(f"{key:64s} {row['n']:6d} {row['hits'] / row['n']:10.3f} {row['rr'] / row['n']:7.3f}")


if __name__ == "__main__":
    main()
