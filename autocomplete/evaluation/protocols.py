"""Evaluation protocols: (previous, next) pairs -> (previous, prefix, next) examples.

``sampled`` draws one prefix length per pair uniformly from 1..len(next) with
``random.Random(seed)`` in file order (comparable with the published PECOS results);
``keystroke`` takes every prefix length (what a person experiences).
"""

from __future__ import annotations

import dataclasses
import random

from indexer.querylog import Pairs

BUCKETS = ("1", "2", "3", "4-6", "7+")
PROTOCOLS = ("sampled", "keystroke")


@dataclasses.dataclass(frozen=True)
class Examples:
    previous: list[str]
    prefix: list[str]
    target: list[str]

    def __len__(self) -> int:
        return len(self.target)


def make_examples(pairs: Pairs, protocol: str, seed: int = 0) -> Examples:
    if protocol == "sampled":
        rng = random.Random(seed)
        prefixes = [nxt[: rng.randint(1, len(nxt))] for nxt in pairs.next]
        return Examples(list(pairs.previous), prefixes, list(pairs.next))
    if protocol == "keystroke":
        prev, pre, tgt = [], [], []
        for p, nxt in zip(pairs.previous, pairs.next):
            for n in range(1, len(nxt) + 1):
                prev.append(p)
                pre.append(nxt[:n])
                tgt.append(nxt)
        return Examples(prev, pre, tgt)
    raise ValueError(f"unknown protocol {protocol!r}; choose one of {PROTOCOLS}")


def bucket(prefix_length: int) -> str:
    if prefix_length <= 3:
        return str(prefix_length)
    return "4-6" if prefix_length <= 6 else "7+"
