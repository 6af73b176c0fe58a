"""The completer every caller knows, built from a model object as a chain of candidate generators.

``complete(prefix, previous, k)`` takes the raw typed text and the session's previous queries
(most recent last, already normalized: the server normalizes a submitted query once, when it
stores it) and returns at most ``k`` ranked completions. Each starts with the normalized prefix;
``source`` says which link of the chain produced it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from autocomplete.candidates import CandidateChain, ChainOrderRanker, Source
from autocomplete.generators import ExactPrefix, PopularFill, PopularRange, UnseenTails, XmrScorer
from indexer.model import MpcModel, XmrModel, load_model
from indexer.normalize import get_normalizer, normalize_prefix


@dataclasses.dataclass(frozen=True, slots=True)
class Completion:
    text: str
    score: float
    source: str = Source.EXACT


class Completer(Protocol):
    """What the server, the evaluation and the CLI know of a model."""

    kind: str

    def complete(self, prefix: str, previous: Sequence[str] = (), k: int = 10) -> list[Completion]: ...

    def normalize_prefix(self, prefix: str) -> str: ...

    def normalize_query(self, query: str) -> str: ...

    def warm_up(self) -> None: ...


class ChainCompleter:
    """A model's candidate chain behind the :class:`Completer` interface.

    Parameters
    ----------
    kind : str
        The model kind (``mpc``, ``xmr``), reported by ``/readyz``.
    chain : CandidateChain
    normalization : str
        The scheme the model's labels were normalized with; typed text gets the same.
    """

    def __init__(self, kind: str, chain: CandidateChain, normalization: str) -> None:
        self.kind = kind
        self.chain = chain
        self.normalization = normalization
        self._normalize = get_normalizer(normalization)

    def normalize_prefix(self, prefix: str) -> str:
        return normalize_prefix(prefix, self.normalization)

    def normalize_query(self, query: str) -> str:
        return self._normalize(query)

    def complete(self, prefix: str, previous: Sequence[str] = (), k: int = 10) -> list[Completion]:
        if k <= 0:
            return []
        request = self.chain.request(self.normalize_prefix(prefix), previous[-1] if previous else "", k)
        return [Completion(text, score, source) for text, score, source in self.chain.run(request)]

    def warm_up(self) -> None:
        self.chain.warm_up()
        self.complete("a", ["warm up"], 10)
        self.complete("", [], 10)


def build_completer(model: MpcModel | XmrModel) -> ChainCompleter:
    """The chain of a model: MPC alone, or exact prefix -> tails -> popular fill for XMR."""
    popularity = model.popularity_
    if isinstance(model, MpcModel):
        generators: list = [PopularRange(popularity)]
    else:
        scorer = XmrScorer(model)
        generators = [
            ExactPrefix(scorer),
            UnseenTails(scorer, model.search.unseen_tails),
            PopularFill(popularity),
        ]
    chain = CandidateChain(popularity.labels, generators, ChainOrderRanker())
    return ChainCompleter(model.kind, chain, model.normalization)


def load_completer(folder: str | Path, warm_up: bool = True) -> ChainCompleter:
    """Load any model folder written by ``autocomplete train``; JIT-warm it unless told not to."""
    completer = build_completer(load_model(folder))
    if warm_up:
        completer.warm_up()
    return completer
