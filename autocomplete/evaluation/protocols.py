"""Evaluation protocols: (previous, next) pairs -> (previous, prefix, next) examples.

``sampled`` draws one prefix length per pair uniformly from 1..len(next) with
``random.Random(seed)`` in file order (comparable with the published PECOS results);
``keystroke`` takes every prefix length (what a person experiences). Each example remembers the
pair it came from (``pair``), so per-query figures (accepted@5, saved@5) can be told apart.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence

from indexer.querylog import Pairs

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
        )

    def head(self, n: int) -> Examples:
        return self.subset(range(min(n, len(self))))


def make_examples(pairs: Pairs, protocol: str, seed: int = 0) -> Examples:
    if protocol == "sampled":
        rng = random.Random(seed)
        prefixes = [nxt[: rng.randint(1, len(nxt))] for nxt in pairs.next]
        return Examples(list(pairs.previous), prefixes, list(pairs.next), list(range(len(pairs))))
    if protocol == "keystroke":
        prev, pre, tgt, ids = [], [], [], []
        for i, (p, nxt) in enumerate(zip(pairs.previous, pairs.next)):
            for n in range(1, len(nxt) + 1):
                prev.append(p)
                pre.append(nxt[:n])
                tgt.append(nxt)
                ids.append(i)
        return Examples(prev, pre, tgt, ids)
    raise ValueError(f"unknown protocol {protocol!r}; choose one of {PROTOCOLS}")


def bucket(prefix_length: int) -> str:
    if prefix_length <= 3:
        return str(prefix_length)
    return "4-6" if prefix_length <= 6 else "7+"
