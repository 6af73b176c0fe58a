"""Latency of one ``Generator.generate`` call on a made-up log of aol1k size.

The log is made of word-like strings (syllables), not real queries: 50k words drawn by a Zipf
law, each with a few favourite next words, about 60k distinct queries of one to five words, and
250k query occurrences by 20k users with Zipf popularity. Prefixes are cut at a random character
of a random query occurrence, as a person would type them. Wall-clock time and the thread's CPU
time are both reported: on a shared machine the wall clock's tail is time spent descheduled.

    PYTHONPATH=$PWD .venv/bin/python bench/bench_generation.py [--calls 5000] [--min-users 1]
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autocomplete.generation import Generator  # noqa: E402
from indexer.language import WordLanguageModel  # noqa: E402

_CONSONANTS = "bcdfghjklmnprstvwz"
_VOWELS = "aeiou"


def made_up_words(n: int, rng: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < n:
        syllables = rng.choice((1, 2, 2, 3, 3, 4))
        words.add("".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(syllables)))
    ordered = sorted(words)  # set order depends on the hash seed
    rng.shuffle(ordered)
    return ordered


def made_up_log(
    n_queries: int = 250_000,
    n_distinct: int = 75_000,
    n_words: int = 150_000,
    n_users: int = 20_000,
    seed: int = 0,
) -> tuple[list[str], list[str]]:
    """``(queries, users)`` of a log shaped like aol1k (see the module docstring)."""
    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    words = made_up_words(n_words, rng)
    word_weights = 1.0 / np.arange(1, n_words + 1) ** 0.9
    word_weights /= word_weights.sum()
    followers = nprng.choice(n_words, size=(n_words, 6), p=word_weights)
    lengths = nprng.choice([1, 2, 3, 4, 5], size=4 * n_distinct, p=[0.2, 0.35, 0.25, 0.13, 0.07])
    starts = nprng.choice(n_words, size=4 * n_distinct, p=word_weights)
    distinct: dict[str, None] = {}
    draws = iter(nprng.choice(n_words, size=20 * n_distinct, p=word_weights).tolist())
    picks = iter(nprng.integers(0, 6, size=20 * n_distinct).tolist())
    for length, first in zip(lengths.tolist(), starts.tolist()):
        ids = [first]
        while len(ids) < length:
            nxt = int(followers[ids[-1], next(picks)]) if rng.random() < 0.6 else next(draws)
            if nxt != ids[-1]:
                ids.append(nxt)
        distinct[" ".join(words[i] for i in ids)] = None
        if len(distinct) == n_distinct:
            break
    texts = list(distinct)
    popularity = 1.0 / np.arange(1, len(texts) + 1) ** 0.8
    popularity /= popularity.sum()
    chosen = nprng.choice(len(texts), size=n_queries, p=popularity)
    activity = 1.0 / np.arange(1, n_users + 1) ** 0.7
    activity /= activity.sum()
    who = nprng.choice(n_users, size=n_queries, p=activity)
    return [texts[i] for i in chosen.tolist()], [f"u{u}" for u in who.tolist()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--min-users", type=int, default=1)
    parser.add_argument("--order", type=int, default=3)
    parser.add_argument("--expand", type=int, default=None, help="default: Generator's")
    parser.add_argument("--queries", type=int, default=250_000, help="log size (aol1k: 250k)")
    parser.add_argument("--distinct", type=int, default=75_000, help="distinct queries drawn from")
    parser.add_argument("--words", type=int, default=150_000, help="words drawn from")
    parser.add_argument("--beam", type=int, default=None, help="default: Generator's")
    args = parser.parse_args()
    queries, users = made_up_log(args.queries, args.distinct, args.words)
    print(
        f"log: {len(queries)} queries, {len(set(queries))} distinct, "
        f"{len({w for q in set(queries) for w in q.split()})} distinct words, {len(set(users))} users"
    )
    start = time.perf_counter()
    model = WordLanguageModel(order=args.order, min_users=args.min_users).fit(queries, users)
    fit_s = time.perf_counter() - start
    size = sum(np.asarray(getattr(model, f"{n}_")).nbytes for n in model.ARRAYS)
    kept = model.summary_["ngrams_per_order"]
    print(f"fit {fit_s:.1f} s; kept n-grams per order {kept}; arrays {size / 1e6:.1f} MB")
    settings = {name: value for name, value in (("expand", args.expand), ("beam", args.beam)) if value}
    generator = Generator(model, **settings)
    print(
        f"generator: beam {generator.beam}, expand {generator.expand}, "
        f"max_new_words {generator.max_new_words}"
    )
    start = time.perf_counter()
    generator.warm_up()
    print(f"warm-up {time.perf_counter() - start:.1f} s")
    rng = random.Random(1)
    prefixes = []
    for _ in range(args.calls):
        query = rng.choice(queries)
        prefixes.append(query[: rng.randint(1, len(query))])
    for prefix in prefixes[:200]:  # warm the caches
        generator.generate(prefix, args.k)
    wall = np.empty(len(prefixes))
    cpu = np.empty(len(prefixes))
    best = np.empty(len(prefixes))
    found = 0
    gc.disable()
    for i, prefix in enumerate(prefixes):
        c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
        out = generator.generate(prefix, args.k)
        wall[i] = (time.perf_counter_ns() - t0) / 1000.0
        cpu[i] = (time.thread_time_ns() - c0) / 1000.0
        found += len(out.text)
        repeats = []
        for _ in range(2):
            t0 = time.perf_counter_ns()
            generator.generate(prefix, args.k)
            repeats.append((time.perf_counter_ns() - t0) / 1000.0)
        best[i] = min(wall[i], *repeats)
    gc.enable()
    print(
        f"generate(k={args.k}) over {len(prefixes)} prefixes, "
        f"{found / len(prefixes):.1f} candidates per call:"
    )
    rows = (
        ("wall clock", wall),
        ("thread CPU time (without time spent descheduled)", cpu),
        ("best of 3 calls (the kernel's own cost)", best),
    )
    for name, values in rows:
        p50, p99 = np.percentile(values, [50, 99])
        print(f"  {name}: p50 {p50:.0f} us, p99 {p99:.0f} us, max {values.max():.0f} us")


if __name__ == "__main__":
    main()
