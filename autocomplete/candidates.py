"""Completions as a chain: candidate generators in order, then one ranking step, then the top k.

A keystroke becomes one :class:`Request` (the prefix normalized once, the session's context, the
label id range of the prefix). Each :class:`CandidateGenerator` of the chain looks at the request
and at what the links before it found, and adds a :class:`CandidateBatch`: texts, their
:class:`Source`, the generator's own score and a row of :class:`Feature` values per candidate.
A generator knows nothing of the others; the ranker knows only candidate features. Every
candidate text starts with the typed text.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from indexer.labels import LabelSet, encode, prefix_range


class Source(enum.StrEnum):
    """Which link of the chain proposed a completion (the protocol's ``source`` field)."""

    EXACT = "model"  # a logged query that starts with the prefix, ranked by the XMR model
    TAIL = "tail"  # typed head + a logged query that starts with the prefix's longest known tail
    POPULAR = "popular"  # most popular logged queries that start with the prefix


class Feature(enum.IntEnum):
    """The columns of a candidate's feature row (0 where a generator has no value)."""

    MODEL_LOG_SCORE = 0  # log of the XMR path score
    LOG_COUNT = 1  # log(1 + training count) of the logged query
    HEAD_CHARS = 2  # characters kept from the typed text in front of a logged query (tails)


N_FEATURES = len(Feature)


@dataclasses.dataclass(slots=True)
class Request:
    """One keystroke: the normalized typed text, the context, the answer size and the label range."""

    typed: str
    context: str
    k: int
    lo: int
    hi: int


@dataclasses.dataclass(slots=True)
class CandidateBatch:
    """What one generator adds: ``texts[i]`` with ``sources[i]``, ``scores[i]``, ``features[i]``."""

    texts: list[str]
    sources: list[Source]
    scores: np.ndarray  # float64, shape (n,): the generator's own score, higher is better
    features: np.ndarray  # float32, shape (n, N_FEATURES)

    def __len__(self) -> int:
        return len(self.texts)


def empty_features(n: int) -> np.ndarray:
    return np.zeros((n, N_FEATURES), dtype=np.float32)


def concatenate(batches: Sequence[CandidateBatch]) -> CandidateBatch:
    """One batch holding ``batches`` in order."""
    return CandidateBatch(
        [t for b in batches for t in b.texts],
        [s for b in batches for s in b.sources],
        np.concatenate([b.scores for b in batches]) if batches else np.empty(0),
        np.concatenate([b.features for b in batches]) if batches else empty_features(0),
    )


class CandidateGenerator(Protocol):
    """One link: (request, batches so far) -> a batch, or ``None`` when it has nothing to add."""

    def generate(self, request: Request, found: Sequence[CandidateBatch]) -> CandidateBatch | None: ...

    def warm_up(self) -> None: ...


class Ranker(Protocol):
    """The ranking step: every batch of the chain in, the best ``k`` (text, score, source) out."""

    def rank(
        self, request: Request, batches: Sequence[CandidateBatch]
    ) -> list[tuple[str, float, Source]]: ...


class ChainOrderRanker:
    """Candidates in the order the chain found them (each generator's batch already sorted by its
    own score), each text once. The ranking every generator's own score defines; no learned part."""

    def rank(self, request: Request, batches: Sequence[CandidateBatch]) -> list[tuple[str, float, Source]]:
        out: list[tuple[str, float, Source]] = []
        seen: set[str] = set()
        for batch in batches:
            for text, source, score in zip(batch.texts, batch.sources, batch.scores):
                if text not in seen:
                    seen.add(text)
                    out.append((text, float(score), source))
                    if len(out) == request.k:
                        return out
        return out


class CandidateChain:
    """The generators of one model in order, then the ranker.

    Parameters
    ----------
    labels : LabelSet
        The model's labels: the chain finds the prefix's label range once for every link.
    generators : sequence of CandidateGenerator
    ranker : Ranker
    """

    def __init__(
        self,
        labels: LabelSet,
        generators: Sequence[CandidateGenerator],
        ranker: Ranker,
    ) -> None:
        self.labels = labels
        self.generators = tuple(generators)
        self.ranker = ranker

    def request(self, typed: str, context: str, k: int) -> Request:
        lo, hi = prefix_range(self.labels.indptr, self.labels.chars, encode(typed))
        return Request(typed, context, k, int(lo), int(hi))

    def run(self, request: Request) -> list[tuple[str, float, Source]]:
        batches: list[CandidateBatch] = []
        for generator in self.generators:
            batch = generator.generate(request, batches)
            if batch is not None and len(batch):
                batches.append(batch)
        return self.ranker.rank(request, batches)

    def warm_up(self) -> None:
        for generator in self.generators:
            generator.warm_up()
