"""The measuring stick: metrics exactly as ``shared/data/README.md`` defines them.

Over the top k: MRR, success@1/@k, rank-weighted sentence BLEU (NLTK, smoothing method1), overall
and by prefix length, plus empty answers and single-query latency.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Sequence

import numpy as np
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from tqdm import tqdm

from autocomplete.completer import Completer
from autocomplete.evaluation.protocols import BUCKETS, Examples, bucket

_SMOOTH = SmoothingFunction().method1


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


@dataclasses.dataclass
class _Sums:
    examples: int = 0
    rr: float = 0.0
    bleu: float = 0.0
    s1: int = 0
    sk: int = 0
    empty: int = 0

    def add(self, candidates: Sequence[str], reference: str, k: int) -> None:
        rr = reciprocal_rank(candidates, reference)
        self.examples += 1
        self.rr += rr
        self.bleu += weighted_bleu(candidates, reference)
        self.s1 += rr == 1.0
        self.sk += reference in candidates[:k]
        self.empty += not candidates

    def report(self, k: int) -> dict:
        n = max(self.examples, 1)
        return {
            "examples": self.examples,
            "mrr": self.rr / n,
            "bleu": self.bleu / n,
            "success_at_1": self.s1 / n,
            f"success_at_{k}": self.sk / n,
            "empty_rate": self.empty / n,
        }


def score_answers(examples: Examples, answers: Sequence[Sequence[str]], k: int = 10) -> dict:
    """Metrics of given answer lists (one per example), overall and by prefix length."""
    total = _Sums()
    by_length = {b: _Sums() for b in BUCKETS}
    for prefix, target, answer in zip(examples.prefix, examples.target, answers):
        answer = list(answer[:k])
        total.add(answer, target, k)
        by_length[bucket(len(prefix))].add(answer, target, k)
    out = total.report(k)
    out["by_prefix_length"] = {b: s.report(k) for b, s in by_length.items()}
    return out


def evaluate(
    completer: Completer,
    examples: Examples,
    k: int = 10,
    progress: bool = False,
    latency_warmup: int = 1000,
    latency_calls: int = 6000,
) -> dict:
    """Run the completer on every example and score it; then time single queries."""
    answers = [
        [c.text for c in completer.complete(prefix, [prev] if prev else [], k)]
        for prev, prefix in tqdm(
            zip(examples.previous, examples.prefix),
            total=len(examples),
            desc="evaluating",
            disable=not progress,
        )
    ]
    report = score_answers(examples, answers, k)
    report["latency_ms"] = measure_latency(completer.complete, examples, k, latency_warmup, latency_calls)
    return report


def measure_latency(
    complete: Callable[..., object], examples: Examples, k: int, warmup: int, calls: int
) -> dict[str, float | None]:
    """Single-query latency: one call at a time over the examples, after a warm-up."""
    n = len(examples)
    if n == 0 or calls <= 0:
        return latency_summary([])
    for i in range(warmup):
        j = i % n
        complete(examples.prefix[j], [examples.previous[j]], k)
    timings = np.empty(calls)
    clock = time.perf_counter_ns
    for i in range(calls):
        j = (i * 7919) % n  # a fixed stride, so the timed inputs spread over the whole split
        prev = [examples.previous[j]] if examples.previous[j] else []
        t0 = clock()
        complete(examples.prefix[j], prev, k)
        timings[i] = clock() - t0
    return latency_summary(timings / 1e9)


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
