"""The completer every caller knows, built from a model object as a chain of candidate generators.

``complete(prefix, previous, k, history)`` takes the raw typed text, the session's previous
queries (most recent last, already normalized: the server normalizes a submitted query once,
when it stores it) and the person's longer history (:data:`~autocomplete.candidates.History`)
and returns at most ``k`` ranked completions. Each starts with the normalized prefix;
``source`` says which link of the chain produced it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from autocomplete.candidates import NO_HISTORY, CandidateChain, ChainOrderRanker, History, Ranker, Source
from autocomplete.context import ContextWords, SharedWords
from autocomplete.generation import Generator
from autocomplete.generators import (
    ExactPrefix,
    FollowedBefore,
    FromHistory,
    FuzzyPrefix,
    Generated,
    PopularFill,
    PopularRange,
    UnseenTails,
    XmrScorer,
)
from autocomplete.live import LiveLabels, LivePopularFill, LivePopularRange, LiveView, view_for
from autocomplete.ranking import LearnedRanker
from autocomplete.reformulations import Reformulations
from indexer.manifest import digest
from indexer.model import MpcModel, XmrModel, load_model
from indexer.normalize import get_normalizer, normalize_prefix
from indexer.params import LiveParams, PrivacyParams
from sessions.livecounts import MemoryLiveCounts, session_key


@dataclasses.dataclass(frozen=True, slots=True)
class Completion:
    """One suggestion. ``matched``: for a corrected completion (one that does not start with the
    typed text), how many of its leading characters stand for what was typed; -1 otherwise."""

    text: str
    score: float
    source: str = Source.EXACT
    matched: int = -1

    @property
    def corrected(self) -> bool:
        return self.matched >= 0


class Completer(Protocol):
    """What the server, the evaluation and the CLI know of a model. ``info``: its identity
    (``id``, ``kind``, ``labels``, ``trained_at``) for ``/readyz`` and ``/metrics``."""

    kind: str
    info: dict[str, Any]

    def complete(
        self, prefix: str, previous: Sequence[str] = (), k: int = 10, history: History = NO_HISTORY
    ) -> list[Completion]: ...

    def normalize_prefix(self, prefix: str) -> str: ...

    def normalize_query(self, query: str) -> str: ...

    def prepare(self, previous: Sequence[str]) -> None: ...

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
        self.info: dict[str, Any] = {"id": "", "kind": kind, "labels": len(chain.labels), "trained_at": ""}
        self.live: LiveView | None = None  # the live counts this chain reads, if any
        self._normalize = get_normalizer(normalization)

    def normalize_prefix(self, prefix: str) -> str:
        return normalize_prefix(prefix, self.normalization)

    def normalize_query(self, query: str) -> str:
        return self._normalize(query)

    def complete(
        self, prefix: str, previous: Sequence[str] = (), k: int = 10, history: History = NO_HISTORY
    ) -> list[Completion]:
        if k <= 0:
            return []
        context = previous[-1] if previous else ""
        request = self.chain.request(self.normalize_prefix(prefix), context, k, history)
        return [Completion(*ranked) for ranked in self.chain.run(request)]

    def prepare(self, previous: Sequence[str]) -> None:
        """A query was just submitted (``previous``: the session's queries, normalized, most
        recent last): do now what the next keystrokes would otherwise do first."""
        if previous:
            self.chain.prepare(previous[-1])

    def warm_up(self) -> None:
        self.chain.warm_up()
        self.complete("a", ["warm up"], 10)
        self.complete("", [], 10)


def build_completer(model: MpcModel | XmrModel, live: LiveView | None = None) -> ChainCompleter:
    """The chain of a model: MPC alone; for XMR exact prefix -> tails -> popular fill, and with a
    language model and a learned ranker also the followed-before and generated links. With
    ``live`` (the worker's live counts) also the live labels, live features and live popularity."""
    if isinstance(model, MpcModel):
        ranker = ChainOrderRanker(fold_variants=_folds(model))
        popular = (
            PopularRange(model.popularity_) if live is None else LivePopularRange(model.popularity_, live)
        )
        chain = CandidateChain(model.labels, [popular], ranker)
    else:
        chain = xmr_chain(model, model.ranker_ is not None, live)
    completer = ChainCompleter(model.kind, chain, model.normalization)
    completer.live = live
    return completer


def _fill(model: MpcModel | XmrModel, live: LiveView | None) -> PopularFill:
    return PopularFill(model.popularity_) if live is None else LivePopularFill(model.popularity_, live)


def xmr_chain(model: XmrModel, learned: bool, live: LiveView | None = None) -> CandidateChain:
    """The XMR model's chain; ``learned``: every link feeds a pool to :class:`LearnedRanker`
    (scored by ``model.ranker_``, or left in chain order while the ranker is being trained).
    ``live``: the live labels join before the popular fill, the ranker reads the live counts."""
    scorer = XmrScorer(model)
    if not learned:
        generators: list = [ExactPrefix(scorer), UnseenTails(scorer, model.search.unseen_tails)]
        if live is not None:
            generators.append(LiveLabels(live, model.labels, live.params.candidates))
        generators.append(_fill(model, live))
        return CandidateChain(model.labels, generators, ChainOrderRanker(fold_variants=_folds(model)))
    ctx = model.context
    context = ContextWords(model.links_) if model.links_ is not None else None
    generators = [FromHistory(model.labels, ctx.history), ExactPrefix(scorer, pool=model.search.candidates)]
    if model.pairs_ is not None:
        generators.append(FollowedBefore(model.pairs_, model.labels, model.search.followed))
    if context is not None:
        generators.append(SharedWords(context, model.labels, ctx.related, ctx.linked, ctx.min_idf))
    generators.append(UnseenTails(scorer, model.search.unseen_tails))
    generator = None
    if model.language_ is not None:
        lang = model.language
        generator = Generator(
            model.language_,
            max_new_words=lang.max_new_words,
            beam=lang.beam,
            expand=lang.expand,
            reserve=lang.reserve,
            min_end_fraction=lang.min_end_fraction,
            cache_weight=lang.cache_weight,
        )
        generators.append(Generated(generator, lang.candidates, lang.context_candidates, model.labels))
    generators.append(Reformulations(generator, ctx.reformulations, ctx.reformulation_words, model.labels))
    if live is not None:
        generators.append(LiveLabels(live, model.labels, live.params.candidates, model.language_))
    generators.append(FuzzyPrefix(model.popularity_, model.fuzzy))
    generators.append(_fill(model, live))
    ranker: Ranker = LearnedRanker(
        model.labels, model.pairs_, model.ranker_, fold_variants=_folds(model), context=context, live=live
    )
    return CandidateChain(model.labels, generators, ranker)


def _folds(model: MpcModel | XmrModel) -> bool:
    """Spelling variants are folded unless the normalization already does it (``aol``: lower case,
    no punctuation, single spaces)."""
    return model.normalization != "aol"


class ChainRows:
    """For training the ranker: (previous query, typed prefix, history) -> the chain's distinct
    candidate texts and their feature rows, before any learned scoring. With a live view,
    :meth:`submit` counts a submit live (in process, at once) and the rows carry the live labels
    and features."""

    def __init__(self, model: XmrModel, live: LiveView | None = None, store: MemoryLiveCounts | None = None):
        self.model = model
        self.live = live
        self.store = store
        self.chain = xmr_chain(model, learned=True, live=live)
        merge = self.chain.ranker
        assert isinstance(merge, LearnedRanker)  # the learned chain's ranking step, without a model
        self.merge = merge
        self.normalize = get_normalizer(model.normalization)

    def __call__(
        self, previous: str, prefix: str, history: History = NO_HISTORY
    ) -> tuple[list[str], np.ndarray]:
        typed = normalize_prefix(prefix, self.model.normalization)
        request = self.chain.request(typed, self.normalize(previous), 10, history)
        batches = self.chain.batches(request)
        if not batches:
            return [], np.empty((0, 0), dtype=np.float32)
        texts, _, X, _, _ = self.merge.features(request, batches)
        return texts, X

    def submit(self, query: str, session: str, when: float) -> None:
        if self.live is None or self.store is None:
            raise TypeError("ChainRows.submit() needs a chain built with live=(LiveParams, PrivacyParams)")
        self.store.add(query, session_key(session), when)
        self.live.apply(self.store.changes_since(self.live.seq, when), now=when)


def candidate_rows(model: XmrModel, live: tuple[LiveParams, PrivacyParams] | None = None) -> ChainRows:
    """:class:`ChainRows` of ``model``; ``live``: with live counts and labels, in process, from
    nothing (the ranker's training replays the late training sessions through it)."""
    if live is None:
        return ChainRows(model)
    params, privacy = live
    store = MemoryLiveCounts(
        short_half_life=params.short_half_life_seconds,
        long_half_life=params.long_half_life_seconds,
        window=params.window_seconds,
        max_queries=max(4 * params.max_labels, 1000),
        log_size=0,
    )
    return ChainRows(model, view_for(params, privacy), store)


def load_completer(
    folder: str | Path, warm_up: bool = True, snapshot: bool = False, live: LiveView | None = None
) -> ChainCompleter:
    """Load any model folder written by ``autocomplete train`` (or an ``indexer.manifest.snapshot``
    of one: checksums not read again); JIT-warm it unless told not to. ``live``: the worker's live
    view (:func:`autocomplete.live.view_for` the model's config)."""
    completer = build_completer(load_model(folder, snapshot), live)
    params = Path(folder) / "params.json"
    summary = json.loads(params.read_text(encoding="utf-8")).get("summary", {})
    completer.info.update(id=digest(params)[:12], trained_at=summary.get("trained_at", ""))
    if warm_up:
        completer.warm_up()
    return completer
