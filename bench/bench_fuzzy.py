"""Time the fuzzy prefix walk on synthetic word-like label sets (run by hand).

    .venv/bin/python -m bench.bench_fuzzy --labels 60000 350000 --calls 20000 --repeats 3

Labels are one to four words drawn Zipf-like from a seeded vocabulary of syllable words, so that
they share prefixes the way queries do ("cheap flights", "cheap flights to rome", ...); counts
are Zipf-like too. Typed texts follow the ``sampled`` protocol (a label drawn by popularity, a
prefix length uniform over its length), each once clean and once with a variant A typo from
:mod:`autocomplete.evaluation.typos` (prefixes of three or more characters). Every call is timed alone
with ``perf_counter_ns`` after a warm-up: :func:`autocomplete.fuzzy.fuzzy_ranges` from the typed
string to the sorted ranges, then :func:`autocomplete.fuzzy.top_in_ranges` for the top 10 by
cost then popularity. "target in top 10" asks whether the label the prefix was cut from is
among them (and among the top 10 by popularity alone over the union); the first rows give the
same for exact prefix matching (MPC). "top 10 as unbounded": the share of calls whose top 10 is
the same as with no node bound. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import itertools
import random
import time

import numpy as np

from autocomplete.fuzzy import FuzzyParams, fuzzy_ranges, top_in_ranges, trie_top
from indexer.labels import LabelSet, encode, prefix_range
from indexer.popularity import build_sparse_table, top_k_in_range
from indexer.typos import apply_typo

_ONSETS = "b c d f g h j k l m n p r s t v w y z br ch cl cr dr fl fr gr pl pr sh st th tr".split()
_VOWELS = "a e i o u ai ea ee oo ou".split()
_CODAS = [""] * 6 + "n r s t l m nd st ng ck".split()


def vocabulary(n_words: int, rng: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < n_words:
        syllables = rng.choices([1, 2, 3, 4], weights=[3, 5, 3, 1])[0]
        words.add(
            "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables))
        )
    return sorted(words, key=lambda w: (rng.random(), w))


def word_labels(n_labels: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """``n_labels`` distinct word-like labels and their Zipf-like counts."""
    rng = random.Random(seed)
    words = vocabulary(max(2000, n_labels // 4), rng)
    cum_weights = list(itertools.accumulate(1.0 / (rank + 1) ** 1.05 for rank in range(len(words))))
    labels: set[str] = set()
    while len(labels) < n_labels:
        n_words = rng.choices([1, 2, 3, 4], weights=[2, 4, 3, 1])[0]
        labels.add(" ".join(rng.choices(words, cum_weights=cum_weights, k=n_words)))
    texts = sorted(labels)
    np_rng = np.random.default_rng(seed)
    counts = np.maximum(1, (1e5 / np.arange(1, n_labels + 1) ** 1.1).astype(np.int64))
    return texts, counts[np_rng.permutation(n_labels)]


def typed_texts(labels: list[str], counts: np.ndarray, n: int, seed: int) -> tuple[list[str], list[str]]:
    """``n`` sampled-protocol prefixes and the labels they were cut from."""
    rng = random.Random(seed)
    targets = rng.choices(labels, weights=counts.tolist(), k=n)
    return [t[: rng.randint(1, len(t))] for t in targets], targets


def percentiles(times_ns: list[int]) -> tuple[float, float]:
    a = np.asarray(times_ns) / 1000.0
    return float(np.median(a)), float(np.percentile(a, 99))


def time_calls(
    label_set: LabelSet, table: np.ndarray, texts: list[str], params: FuzzyParams, repeats: int
) -> dict:
    walk_ns, top_ns, nodes, tops, popular, found, truncated = [], [], [], [], [], 0, 0
    indptr, chars, counts = label_set.indptr, label_set.chars, label_set.counts
    top_runs = trie_top(indptr, chars)
    for text in texts:
        best_walk = best_top = 1 << 62
        for _ in range(repeats):
            t0 = time.perf_counter_ns()
            r = fuzzy_ranges(indptr, chars, top_runs, text, params)
            t1 = time.perf_counter_ns()
            ids, _, _ = top_in_ranges(table, counts, r.lo, r.hi, r.cost, r.matched_len, 10, True)
            t2 = time.perf_counter_ns()
            best_walk, best_top = min(best_walk, t1 - t0), min(best_top, t2 - t1)
        walk_ns.append(best_walk)
        top_ns.append(best_top)
        nodes.append(r.nodes_visited)
        tops.append(ids.tolist())
        popular.append(top_in_ranges(table, counts, r.lo, r.hi, r.cost, r.matched_len, 10)[0].tolist())
        found += len(r.lo) > 0
        truncated += r.truncated
    return {
        "walk": percentiles(walk_ns),
        "top": percentiles(top_ns),
        "nodes": (float(np.median(nodes)), float(np.percentile(nodes, 99))),
        "found": found / len(texts),
        "truncated": truncated / len(texts),
        "tops": tops,
        "popular": popular,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, nargs="+", default=[60000, 350000])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--configs",
        nargs="+",
        default=["20000:0", "2000:0", "20000:10"],
        help="max_nodes:enough_labels settings to time",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="time each call this many times and keep the fastest (on a shared machine, 3 removes "
        "the scheduler's preemptions from the tail)",
    )
    args = parser.parse_args()
    print(f"{FuzzyParams()}; each call timed {args.repeats}x, the fastest kept\n")
    print(
        "| labels | typed | d | max nodes, enough | calls | walk p50 µs | walk p99 µs | top-10 p50 µs "
        "| top-10 p99 µs | nodes p50 | nodes p99 | bound hit | found | target in top 10 "
        "| target in top 10, by popularity only | top 10 as unbounded |"
    )
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.labels:
        texts, counts = word_labels(n, args.seed)
        label_set = LabelSet(texts, counts)
        table = build_sparse_table(label_set.counts)
        clean, targets = typed_texts(texts, label_set.counts, args.calls, args.seed + 1)
        rng = random.Random(0)
        typo = [apply_typo(t, rng, "A")[0] for t in clean]
        time_calls(label_set, table, clean[: args.warmup] + typo[: args.warmup], FuzzyParams(), 1)
        target_ids = [label_set.id_of(t) for t in targets]
        for name, group in (("clean", clean), ("typo A", typo)):
            exact_ns, hits = [], []
            for i, text in enumerate(group):
                t0 = time.perf_counter_ns()
                lo, hi = prefix_range(label_set.indptr, label_set.chars, encode(text))
                ids = top_k_in_range(table, label_set.counts, lo, hi, 10)
                exact_ns.append(time.perf_counter_ns() - t0)
                hits.append(target_ids[i] in ids)
            p50, p99 = percentiles(exact_ns)
            print(
                f"| {n} | {name}: exact range + MPC top 10, no fuzzy | 0 | | {len(group)} | {p50:.1f} "
                f"| {p99:.1f} |" + " |" * 6 + f" {np.mean(hits):.1%} | | |"
            )
        unbounded = FuzzyParams(max_nodes=10**9)
        for name, group in (("clean", clean), ("typo A", typo)):
            for d in ("all", 1, 2):
                keep = [i for i, t in enumerate(group) if d == "all" or unbounded.max_distance(len(t)) == d]
                subset = [group[i] for i in keep]
                reference = time_calls(label_set, table, subset, unbounded, 1)["tops"]
                for config in args.configs if d != 1 else args.configs[:1]:
                    bound, enough = (int(x) for x in config.split(":"))
                    params = FuzzyParams(max_nodes=bound, enough_labels=enough)
                    s = time_calls(label_set, table, subset, params, args.repeats)
                    hit = np.mean([target_ids[i] in top for i, top in zip(keep, s["tops"])])
                    hit_popular = np.mean([target_ids[i] in top for i, top in zip(keep, s["popular"])])
                    same = np.mean([a == b for a, b in zip(s["tops"], reference)])
                    print(
                        f"| {n} | {name} | {d} | {bound}, {enough} | {len(subset)} | {s['walk'][0]:.1f} "
                        f"| {s['walk'][1]:.1f} | {s['top'][0]:.1f} | {s['top'][1]:.1f} "
                        f"| {s['nodes'][0]:.0f} | {s['nodes'][1]:.0f} | {s['truncated']:.2%} "
                        f"| {s['found']:.1%} | {hit:.1%} | {hit_popular:.1%} | {same:.1%} |"
                    )


if __name__ == "__main__":
    main()
