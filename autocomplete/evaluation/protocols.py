"""Evaluation protocols: (previous, next) pairs -> (previous, prefix, next) examples.

``sampled`` draws one prefix length per pair uniformly from 1..len(next) with
``random.Random(seed)`` in file order (comparable with the published PECOS results);
``keystroke`` takes every prefix length (what a person experiences). Each example remembers the
pair it came from (``pair``), so per-query figures (accepted@5, saved@5) can be told apart, and,
in the history protocol (:func:`pair_histories`), the person's history at that moment.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence

from indexer.histories import History, histories_before
from indexer.querylog import SPLITS, Pairs, QueryLog

BUCKETS = ("1", "2", "3", "4-6", "7+")
PROTOCOLS = ("sampled", "keystroke")


@dataclasses.dataclass(frozen=True)
class Examples:
    """Parallel lists, one entry per example; ``pair`` is the index of the example's (previous,
    next) pair (empty: every example is its own pair)."""

    previous: list[str]
    prefix: list[str]
    target: list[str]
    pair: list[int] = dataclasses.field(default_factory=list)
    history: list[History] = dataclasses.field(default_factory=list)  # empty: no history protocol

    def __len__(self) -> int:
        return len(self.target)

    def pair_ids(self) -> list[int]:
        return self.pair if self.pair else list(range(len(self)))

    def subset(self, indices: Sequence[int]) -> Examples:
        """The examples at ``indices``, in that order, keeping their pair ids."""
        pairs = self.pair_ids()
        return Examples(
            [self.previous[j] for j in indices],
            [self.prefix[j] for j in indices],
            [self.target[j] for j in indices],
            [pairs[j] for j in indices],
            [self.history[j] for j in indices] if self.history else [],
        )

    def history_of(self, j: int) -> History | None:
        """Example ``j``'s history in the history protocol, else None."""
        return self.history[j] if self.history else None

    def head(self, n: int) -> Examples:
        return self.subset(range(min(n, len(self))))


def pair_histories(log: QueryLog, split: str, max_queries: int) -> list[History]:
    """Each pair of ``log.pairs(split)``: the person's history just before its next query, as a
    deployed service would have it (their queries of the splits before ``split`` and of
    ``split`` up to that moment; :func:`indexer.histories.histories_before`)."""
    prior = [s for name in SPLITS[: SPLITS.index(split)] for s in log.sessions[name]]
    return histories_before(prior, log.sessions[split], max_queries)


def make_examples(
    pairs: Pairs, protocol: str, seed: int = 0, histories: Sequence[History] | None = None
) -> Examples:
    """The protocol's examples of ``pairs`` (each with its pair's history, when given)."""
    if protocol == "sampled":
        rng = random.Random(seed)
        prefixes = [nxt[: rng.randint(1, len(nxt))] for nxt in pairs.next]
        history = list(histories) if histories is not None else []
        return Examples(list(pairs.previous), prefixes, list(pairs.next), list(range(len(pairs))), history)
    if protocol == "keystroke":
        prev, pre, tgt, ids, hist = [], [], [], [], []
        for i, (p, nxt) in enumerate(zip(pairs.previous, pairs.next)):
            for n in range(1, len(nxt) + 1):
                prev.append(p)
                pre.append(nxt[:n])
                tgt.append(nxt)
                ids.append(i)
                if histories is not None:
                    hist.append(histories[i])
        return Examples(prev, pre, tgt, ids, hist)
    raise ValueError(f"unknown protocol {protocol!r}; choose one of {PROTOCOLS}")


def bucket(prefix_length: int) -> str:
    if prefix_length <= 3:
        return str(prefix_length)
    return "4-6" if prefix_length <= 6 else "7+"
