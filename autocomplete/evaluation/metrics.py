"""The measuring stick: metrics exactly as ``shared/data/README.md`` defines them, and the figures
that keep them honest.

Over the top k: MRR, success@1/@k, rank-weighted sentence BLEU (NLTK, smoothing method1), overall
and by prefix length, plus empty answers and single-query latency. Beside them:

- ``strict``: the same figures over the examples whose prefix is shorter than the next query (an
  answer that echoes a fully typed query helps nobody); ``strict_mrr`` is the figure quoted first.
- ``seen`` / ``unseen``: the examples whose next query is / is not a training label (``seen``
  given as a predicate or a set, e.g. :func:`training_labels` of the model folder).
- keystrokes (:func:`evaluate_keystrokes`, :func:`score_keystrokes`): per test query,
  ``accepted_at_5`` (it is among the 5 shown at some keystroke before it is fully typed) and
  ``saved_at_5`` (the share of its characters not typed when taken the first time it is shown).
- context gain (:func:`context_gain`): with minus without the previous query, per example, with a
  paired bootstrap 95% confidence interval.
"""

from __future__ import annotations

import functools
import gc
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from tqdm import tqdm

from autocomplete.completer import Completer
from autocomplete.evaluation.protocols import BUCKETS, Examples, bucket
from autocomplete.holder import freeze_heap
from indexer.histories import History
from indexer.querylog import Pairs

_SMOOTH = SmoothingFunction().method1

Seen = Callable[[str], bool] | Collection[str] | None
SHOWN = 5  # suggestions a person sees: accepted@5, saved@5


@functools.lru_cache(maxsize=1 << 20)
def bleu(candidate: str, reference: str) -> float:
    """NLTK sentence BLEU of one candidate's words against the reference's words (method1)."""
    return float(sentence_bleu([reference.split()], candidate.split(), smoothing_function=_SMOOTH))


def weighted_bleu(candidates: Sequence[str], reference: str) -> float:
    """``sum_i BLEU(c_i) / i  /  sum_i 1/i`` over the returned list; 0 for an empty list."""
    if not candidates:
        return 0.0
    num = sum(bleu(c, reference) / i for i, c in enumerate(candidates, 1))
    den = sum(1.0 / i for i in range(1, len(candidates) + 1))
    return num / den


def reciprocal_rank(candidates: Sequence[str], reference: str) -> float:
    for i, c in enumerate(candidates, 1):
        if c == reference:
            return 1.0 / i
    return 0.0


def training_labels(folder: str | Path) -> Callable[[str], bool]:
    """``seen(query)``: is ``query`` one of the labels of the model folder (its training labels)?"""
    from indexer.labels import LabelSet

    labels = LabelSet.load(folder)
    return lambda text: labels.id_of(text) >= 0


def _seen_predicate(seen: Seen) -> Callable[[str], bool] | None:
    if seen is None or callable(seen):
        return seen
    return seen.__contains__


def per_example(examples: Examples, answers: Sequence[Sequence[str]], k: int = 10) -> dict[str, np.ndarray]:
    """Per-example reciprocal rank, weighted BLEU, success@1, success@k and emptiness (float64)."""
    n = len(examples)
    out = {name: np.zeros(n) for name in ("rr", "bleu", "s1", "sk", "empty")}
    for j, (target, answer) in enumerate(zip(examples.target, answers)):
        answer = list(answer[:k])
        rr = reciprocal_rank(answer, target)
        out["rr"][j] = rr
        out["bleu"][j] = weighted_bleu(answer, target)
        out["s1"][j] = rr == 1.0
        out["sk"][j] = rr > 0.0
        out["empty"][j] = not answer
    return out


def _summary(scores: dict[str, np.ndarray], mask: np.ndarray, k: int) -> dict:
    n = int(mask.sum())

    def mean(name: str) -> float:
        return float(scores[name][mask].mean()) if n else 0.0

    return {
        "examples": n,
        "mrr": mean("rr"),
        "bleu": mean("bleu"),
        "success_at_1": mean("s1"),
        f"success_at_{k}": mean("sk"),
        "empty_rate": mean("empty"),
    }


def example_masks(examples: Examples, seen: Seen = None) -> dict[str, np.ndarray]:
    """Boolean masks of the example subsets: ``strict``, the prefix-length buckets, and with
    ``seen`` the ``seen``/``unseen`` examples."""
    lengths = np.fromiter((len(p) for p in examples.prefix), dtype=np.int64, count=len(examples))
    targets = np.fromiter((len(t) for t in examples.target), dtype=np.int64, count=len(examples))
    names = np.array([bucket(int(n)) for n in lengths], dtype=object)
    masks = {"strict": lengths < targets, **{b: names == b for b in BUCKETS}}
    is_seen = _seen_predicate(seen)
    if is_seen is not None:
        masks["seen"] = np.fromiter(
            (bool(is_seen(t)) for t in examples.target), dtype=bool, count=len(examples)
        )
        masks["unseen"] = ~masks["seen"]
    return masks


def score_answers(
    examples: Examples, answers: Sequence[Sequence[str]], k: int = 10, seen: Seen = None
) -> dict:
    """Metrics of given answer lists (one per example): overall, ``strict``, by prefix length, and
    with ``seen`` (a predicate or a set of the training labels) for ``seen``/``unseen`` examples.

    A completion equal to the typed text counts as the protocol says (in MRR, BLEU, success); the
    ``strict`` subset leaves out the examples where the prefix already is the whole next query.
    """
    scores = per_example(examples, answers, k)
    masks = example_masks(examples, seen)
    out = _summary(scores, np.ones(len(examples), dtype=bool), k)
    strict = _summary(scores, masks["strict"], k)
    out["strict_mrr"] = strict["mrr"]
    out["strict"] = strict
    if "seen" in masks:
        out["seen_rate"] = float(masks["seen"].mean()) if len(examples) else 0.0
        out["seen"] = _summary(scores, masks["seen"], k)
        out["unseen"] = _summary(scores, masks["unseen"], k)
    out["by_prefix_length"] = {b: _summary(scores, masks[b], k) for b in BUCKETS}
    return out


# ------------------------------------------------------------------ context gain, bootstrap


def bootstrap_ci(
    values: np.ndarray, resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (examples resampled with
    replacement, ``resamples`` times, ``numpy.random.default_rng(seed)``); for paired differences
    pass the per-example differences. ``(nan, nan)`` for no values."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    if n == 0 or resamples <= 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, min(resamples, 4_000_000 // n))  # at most ~32 MB of indices at a time
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = values[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


def context_gain(
    rr_with: np.ndarray,
    rr_without: np.ndarray,
    masks: dict[str, np.ndarray],
    resamples: int = 1000,
    seed: int = 0,
) -> dict:
    """MRR with the previous query minus MRR without it, on the same examples, overall and per
    subset of ``masks`` (``strict``, prefix lengths, ``short``: 1-2 characters, ...), each with a
    paired bootstrap 95% CI."""
    diff = np.asarray(rr_with, dtype=np.float64) - np.asarray(rr_without, dtype=np.float64)

    def one(mask: np.ndarray) -> dict:
        d = diff[mask]
        lo, hi = bootstrap_ci(d, resamples, seed)
        return {
            "examples": int(d.shape[0]),
            "mrr_with": float(np.asarray(rr_with)[mask].mean()) if d.shape[0] else 0.0,
            "mrr_without": float(np.asarray(rr_without)[mask].mean()) if d.shape[0] else 0.0,
            "gain": float(d.mean()) if d.shape[0] else 0.0,
            "ci95": [lo, hi],
        }

    out = one(np.ones(diff.shape[0], dtype=bool))
    out.update({"resamples": resamples, "seed": seed})
    out["strict"] = one(masks["strict"])
    for name in ("seen", "unseen"):
        if name in masks:
            out[name] = one(masks[name])
    out["by_prefix_length"] = {b: one(masks[b]) for b in BUCKETS}
    out["short"] = one(masks["1"] | masks["2"])  # one or two characters typed
    return out


# ------------------------------------------------------------------ running a completer


def ask(
    complete: Callable[..., Any], prefix: str, previous: list[str], k: int, history: History | None
) -> Any:
    """``complete(prefix, previous, k)``, with the person's history in the history protocol only
    (baselines without a history parameter still run the plain protocol)."""
    return complete(prefix, previous, k) if history is None else complete(prefix, previous, k, history)


def answer_all(
    completer: Completer, examples: Examples, k: int, context: bool = True, progress: bool = False
) -> list[list[str]]:
    """The completer's answer texts for every example, with the previous query (or without) and
    the example's history (in the history protocol)."""
    return [
        [
            c.text
            for c in ask(
                completer.complete, prefix, [prev] if prev and context else [], k, examples.history_of(j)
            )
        ]
        for j, (prev, prefix) in tqdm(
            enumerate(zip(examples.previous, examples.prefix)),
            total=len(examples),
            desc="evaluating" if context else "evaluating without context",
            disable=not progress,
        )
    ]


def evaluate(
    completer: Completer,
    examples: Examples,
    k: int = 10,
    progress: bool = False,
    latency_warmup: int = 1000,
    latency_calls: int = 6000,
    seen: Seen = None,
    with_context_gain: bool = False,
    resamples: int = 1000,
    seed: int = 0,
) -> dict:
    """Run the completer on every example and score it (:func:`score_answers`); then time single
    queries. ``with_context_gain`` runs every example again with the previous query withheld
    and adds ``context_gain`` (:func:`context_gain`, bootstrap ``resamples`` seeded by ``seed``)."""
    answers = answer_all(completer, examples, k, True, progress)
    report = score_answers(examples, answers, k, seen)
    if with_context_gain:
        blind = answer_all(completer, examples, k, False, progress)
        rr = per_example(examples, answers, k)["rr"]
        rr_blind = per_example(examples, blind, k)["rr"]
        report["context_gain"] = context_gain(rr, rr_blind, example_masks(examples, seen), resamples, seed)
    complete, prepare = completer.complete, completer.prepare
    report["latency_ms"] = measure_latency(complete, examples, k, latency_warmup, latency_calls, prepare)
    report["latency_cold_ms"] = measure_latency(complete, examples, k, 0, latency_calls)
    return report


# ------------------------------------------------------------------ keystrokes


def _keystroke_summary(
    saved: np.ndarray, accepted: np.ndarray, seen_mask: np.ndarray | None, keystrokes: int
) -> dict:
    def one(mask: np.ndarray) -> dict:
        n = int(mask.sum())
        return {
            "queries": n,
            f"accepted_at_{SHOWN}": float(accepted[mask].mean()) if n else 0.0,
            f"saved_at_{SHOWN}": float(saved[mask].mean()) if n else 0.0,
        }

    out = one(np.ones(saved.shape[0], dtype=bool))
    out["keystrokes_scored"] = keystrokes
    if seen_mask is not None:
        out["seen"] = one(seen_mask)
        out["unseen"] = one(~seen_mask)
    return out


def evaluate_keystrokes(
    completer: Completer,
    pairs: Pairs,
    seen: Seen = None,
    progress: bool = False,
    shown: int = SHOWN,
    histories: Sequence[History] | None = None,
) -> dict:
    """accepted@5 and saved@5 per test query (pair), typing its next query one character at a time
    with the previous query as context; the completer is asked for the ``shown`` (5) suggestions.

    A query is *accepted* at the first prefix shorter than it whose suggestions contain it; saved =
    (characters not typed) / (its length), 0 if it is never accepted. Once accepted, its remaining
    prefixes are skipped: they cannot change either figure. So this pass does not give an MRR over
    all keystrokes (its keystrokes stop early, which would bias it); that MRR is the keystroke
    protocol of :func:`evaluate` (every prefix, ~10x the sampled work).
    """
    n = len(pairs)
    saved = np.zeros(n)
    accepted = np.zeros(n, dtype=bool)
    keystrokes = 0
    started = time.perf_counter()
    for j in tqdm(range(n), desc="keystrokes", disable=not progress):
        prev, target = pairs.previous[j], pairs.next[j]
        context = [prev] if prev else []
        history = histories[j] if histories is not None else None
        for typed in range(1, len(target)):
            keystrokes += 1
            if any(
                c.text == target for c in ask(completer.complete, target[:typed], context, shown, history)
            ):
                accepted[j] = True
                saved[j] = (len(target) - typed) / len(target)
                break
    is_seen = _seen_predicate(seen)
    seen_mask = None if is_seen is None else np.array([bool(is_seen(t)) for t in pairs.next], dtype=bool)
    report = _keystroke_summary(saved, accepted, seen_mask, keystrokes)
    report["seconds"] = round(time.perf_counter() - started, 3)
    return report


def score_keystrokes(
    examples: Examples, answers: Sequence[Sequence[str]], seen: Seen = None, shown: int = SHOWN
) -> dict:
    """accepted@5 and saved@5 from given answers of keystroke examples (a replay's): grouped by
    ``examples.pair``; a prefix without an answer counts as showing nothing."""
    first: dict[int, int] = {}  # pair -> its index among the queries
    targets: list[str] = []
    best = []  # per query: the shortest accepted prefix length, or 0
    for pair, prefix, target, answer in zip(examples.pair_ids(), examples.prefix, examples.target, answers):
        q = first.setdefault(pair, len(first))
        if q == len(targets):
            targets.append(target)
            best.append(0)
        if len(prefix) < len(target) and target in list(answer[:shown]):
            if not best[q] or len(prefix) < best[q]:
                best[q] = len(prefix)
    lengths = np.array([len(t) for t in targets], dtype=np.float64)
    typed = np.array(best, dtype=np.float64)
    accepted = typed > 0
    saved = np.where(accepted, (lengths - typed) / np.maximum(lengths, 1.0), 0.0)
    is_seen = _seen_predicate(seen)
    seen_mask = None if is_seen is None else np.array([bool(is_seen(t)) for t in targets], dtype=bool)
    return _keystroke_summary(saved, accepted, seen_mask, len(examples))


# ------------------------------------------------------------------ latency


def measure_latency(
    complete: Callable[..., object],
    examples: Examples,
    k: int,
    warmup: int,
    calls: int,
    prepare: Callable[[list[str]], None] | None = None,
) -> dict[str, float | None]:
    """Single-query latency: one call at a time over the examples, after a warm-up. With
    ``prepare``, each timed keystroke comes after its previous query was prepared (untimed), as
    the server prepares it when the query is submitted; without, every timed keystroke is the
    first the completer sees of its context. The heap is frozen while timing, as a server worker's
    is once its model is loaded (:func:`~autocomplete.holder.freeze_heap`): otherwise a full
    cyclic collection over the libraries and the model (one in a few thousand keystrokes, about
    0.2 s) would fall on a timed keystroke the server never has."""
    return interleaved_latency(complete, {"": examples}, k, warmup, calls, prepare)[""]


def interleaved_latency(
    complete: Callable[..., object],
    sets: Mapping[str, Examples],
    k: int,
    warmup: int,
    calls: int,
    prepare: Callable[[list[str]], None] | None = None,
    block: int = 100,
) -> dict[str, dict[str, float | None]]:
    """:func:`measure_latency` of each named set of examples (``calls`` each), side by side:
    blocks of ``block`` calls of every set in turn, so that all see the same machine (on a shared
    one its speed drifts by a third within minutes, which separate runs would take for a difference)."""
    live = {name: examples for name, examples in sets.items() if len(examples)}
    out: dict[str, dict[str, float | None]] = {name: latency_summary([]) for name in sets}
    if not live or calls <= 0:
        return out
    for examples in live.values():
        n = len(examples)
        for i in range(warmup):
            j = i % n
            ask(complete, examples.prefix[j], [examples.previous[j]], k, examples.history_of(j))
    timings = {name: np.empty(calls) for name in live}
    clock = time.perf_counter_ns
    thawed = gc.get_freeze_count() == 0
    freeze_heap()
    try:
        for first in range(0, calls, block):
            for name, examples in live.items():
                n, row = len(examples), timings[name]
                for i in range(first, min(first + block, calls)):
                    j = (i * 7919) % n  # a fixed stride, so the timed inputs spread over the whole split
                    prev = [examples.previous[j]] if examples.previous[j] else []
                    history = examples.history_of(j)
                    if prepare is not None:
                        prepare(prev)
                    t0 = clock()
                    ask(complete, examples.prefix[j], prev, k, history)
                    row[i] = clock() - t0
    finally:
        if thawed:  # a heap frozen before stays frozen
            gc.unfreeze()
    out.update({name: latency_summary(row / 1e9) for name, row in timings.items()})
    return out


def latency_summary(seconds: Sequence[float] | np.ndarray) -> dict[str, float | None]:
    """p50/p90/p99/max/mean in milliseconds and the number of calls (None when there are none)."""
    if not len(seconds):
        return {"p50": None, "p90": None, "p99": None, "max": None, "mean": None, "calls": 0}
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {
        "p50": round(float(p50), 4),
        "p90": round(float(p90), 4),
        "p99": round(float(p99), 4),
        "max": round(float(ms.max()), 4),
        "mean": round(float(ms.mean()), 4),
        "calls": int(ms.size),
    }
