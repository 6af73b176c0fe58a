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
import re
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from indexer.histories import NO_PAST_QUERIES, PastQueries, past_queries
from indexer.labels import LabelSet, encode, prefix_range


class Source(enum.StrEnum):
    """Which link of the chain proposed a completion (the protocol's ``source`` field)."""

    EXACT = "model"  # a logged query that starts with the prefix, ranked by the XMR model
    FOLLOWED = "followed"  # a logged query that followed the session's previous query in training
    TAIL = "tail"  # typed head + a logged query that starts with the prefix's longest known tail
    GENERATED = "generated"  # the typed words + a completed word and further words from the word LM
    FUZZY = "fuzzy"  # a logged query whose prefix is a few edits from the typed text (a typo corrected)
    HISTORY = "history"  # one of the person's own past queries
    RELATED = "related"  # a logged query sharing a word with (or linked by many people to) the previous query
    POPULAR = "popular"  # most popular logged queries that start with the prefix
    LIVE = "live"  # a query submitted by enough distinct sessions since training (a live label)
    REFORMULATED = "reformulated"  # the previous query with a word left out, replaced or put in


class Feature(enum.IntEnum):
    """The columns of a candidate's feature row. A generator fills its own; the ranking step fills
    the ones every candidate has (label, counts, lengths, context). Duplicates merge by maximum."""

    MODEL_LOG_SCORE = 0  # log of the XMR path score (MISSING_LOG when the model did not score it)
    LOG_COUNT = 1  # log(1 + training count) when the text is a logged query
    HEAD_CHARS = 2  # characters kept from the typed text in front of a logged query (tails)
    IS_LABEL = 3  # the text is a logged query
    LM_LOGPROB = 4  # log P(added part | typed words) under the word LM (MISSING_LOG if not generated)
    LM_END_LOGPROB = 5  # log P(end of query | the text)
    WORDS_ADDED = 6  # whole words the LM added after the typed ones
    COMPLETED_COUNT = 7  # log(1 + training count) of the completed last word
    BACKOFF_STEPS = 8  # generated steps not seen after their full context
    PAIR_LOG_COUNT = 9  # log(1 + how often this logged query followed the previous query)
    CHARS_ADDED = 10  # characters after the typed text
    TYPED_CHARS = 11  # characters typed
    HAS_CONTEXT = 12  # the session has a previous query
    FROM_EXACT = 13
    FROM_FOLLOWED = 14
    FROM_TAIL = 15
    FROM_GENERATED = 16
    FROM_POPULAR = 17
    SOURCE_RANK = 18  # 1 / (1 + position in its generator's own order)
    ECHO = 19  # the text is exactly what was typed
    FROM_FUZZY = 20
    EDIT_COST = 21  # edits between the typed text and the matched prefix (fuzzy candidates)
    FROM_HISTORY = 22
    HISTORY_LOG_COUNT = 23  # log(1 + times the person submitted the text)
    HISTORY_RECENCY = 24  # 1 / (1 + days since the person last submitted it); 0 if never
    FROM_RELATED = 25
    PREV_SHARE = 26  # idf-weighted share of the candidate's words that are in the previous query
    PREV_COVER = 27  # idf-weighted share of the previous query's words that are in the candidate
    LINK_LIFT = 28  # best lift of a candidate word after a previous-query word, over many people
    LINK_PROB = 29  # best P(candidate word in the next query | previous-query word)
    LM_CACHED = 30  # generated with the previous query's words mixed into the word LM
    LIVE_SHORT = 31  # log(1 + submits since training, decayed with the short half-life)
    LIVE_LONG = 32  # log(1 + submits since training, decayed with the long half-life)
    LIVE_TREND = 33  # LIVE_SHORT - LIVE_LONG: rising (short over long)
    LIVE_SESSIONS = 34  # distinct sessions that submitted it within the live window
    FROM_LIVE = 35  # proposed by the live labels
    FROM_REFORMULATED = 36
    REFORM_DROPPED = 37  # words of the previous query a reformulation left out
    REFORM_ADDED = 38  # new words in a reformulation (0: it only leaves words out)


N_FEATURES = len(Feature)
MISSING_LOG = -50.0  # a log-probability or log-score column with no value
FROM = {
    Source.EXACT: Feature.FROM_EXACT,
    Source.FOLLOWED: Feature.FROM_FOLLOWED,
    Source.TAIL: Feature.FROM_TAIL,
    Source.GENERATED: Feature.FROM_GENERATED,
    Source.POPULAR: Feature.FROM_POPULAR,
    Source.FUZZY: Feature.FROM_FUZZY,
    Source.HISTORY: Feature.FROM_HISTORY,
    Source.RELATED: Feature.FROM_RELATED,
    Source.LIVE: Feature.FROM_LIVE,
    Source.REFORMULATED: Feature.FROM_REFORMULATED,
}


History = Mapping[str, tuple[int, float]]  # a person's past query -> (times submitted, days since last)
NO_HISTORY: History = {}


@dataclasses.dataclass(slots=True)
class Request:
    """One keystroke: the normalized typed text, the context, the answer size, the label range
    and the person's history (normalized past queries, see :data:`History`)."""

    typed: str
    context: str
    k: int
    lo: int
    hi: int
    history: PastQueries = dataclasses.field(default_factory=lambda: NO_PAST_QUERIES)

    def __post_init__(self) -> None:
        self.history = past_queries(self.history)  # a plain mapping is indexed once, here


NOT_A_LABEL = -2  # a label id: the generator looked the text up, and it is no logged query


def looked_up(labels: LabelSet, texts: Sequence[str]) -> np.ndarray:
    """The label id of each text, :data:`NOT_A_LABEL` for a text that is none (int64)."""
    ids = np.fromiter(map(labels.id_of, texts), dtype=np.int64, count=len(texts))
    ids[ids < 0] = NOT_A_LABEL
    return ids


@dataclasses.dataclass(slots=True)
class CandidateBatch:
    """What one generator adds: ``texts[i]`` with ``sources[i]``, ``scores[i]``, ``features[i]``,
    ``label_ids[i]`` (the logged query's label id; for a text the generator made, -1, or
    :data:`NOT_A_LABEL` when it looked the text up already) and, for a text that does not start
    with the typed text, ``matched[i]``: how many of its leading characters correspond to what was
    typed (-1: it starts with the typed text)."""

    texts: list[str]
    sources: list[Source]
    scores: np.ndarray  # float64, shape (n,): the generator's own score, higher is better
    features: np.ndarray  # float32, shape (n, N_FEATURES)
    label_ids: np.ndarray  # int64, shape (n,)
    matched: np.ndarray | None = None  # int32, shape (n,), or None: every text starts with the typed text

    def matched_or_default(self) -> np.ndarray:
        return np.full(len(self.texts), -1, dtype=np.int32) if self.matched is None else self.matched

    def __len__(self) -> int:
        return len(self.texts)


_TEMPLATE_ROWS = 256  # candidates of one source in one batch, beyond which rows are built, not copied


def _template(source: Source | None) -> np.ndarray:
    """Rows with no values yet: log columns at MISSING_LOG, the source set, SOURCE_RANK by position."""
    rows = np.zeros((_TEMPLATE_ROWS, N_FEATURES), dtype=np.float32)
    rows[:, [Feature.MODEL_LOG_SCORE, Feature.LM_LOGPROB, Feature.LM_END_LOGPROB]] = MISSING_LOG
    if source is not None:
        rows[:, FROM[source]] = 1.0
        rows[:, Feature.SOURCE_RANK] = 1.0 / (1.0 + np.arange(_TEMPLATE_ROWS))
    return rows


_TEMPLATES = {source: _template(source) for source in (None, *FROM)}  # per keystroke: copied, not built


def empty_features(n: int, source: Source | None = None) -> np.ndarray:
    """Feature rows of ``n`` candidates: no values yet, log columns at MISSING_LOG, the source set,
    and SOURCE_RANK from their order."""
    template = _TEMPLATES[source]
    if n <= _TEMPLATE_ROWS:
        return template[:n].copy()
    rows = np.empty((n, N_FEATURES), dtype=np.float32)
    rows[:] = template[0]
    if source is not None:
        rows[:, Feature.SOURCE_RANK] = 1.0 / (1.0 + np.arange(n))
    return rows


def concatenate(batches: Sequence[CandidateBatch]) -> CandidateBatch:
    """One batch holding ``batches`` in order."""
    if not batches:
        return CandidateBatch([], [], np.empty(0), empty_features(0), np.empty(0, dtype=np.int64))
    matched = None
    if any(b.matched is not None for b in batches):
        matched = np.concatenate([b.matched_or_default() for b in batches])
    return CandidateBatch(
        [t for b in batches for t in b.texts],
        [s for b in batches for s in b.sources],
        np.concatenate([b.scores for b in batches]),
        np.concatenate([b.features for b in batches]),
        np.concatenate([b.label_ids for b in batches]),
        matched,
    )


class CandidateGenerator(Protocol):
    """One link: (request, batches so far) -> a batch, or ``None`` when it has nothing to add."""

    def generate(self, request: Request, found: Sequence[CandidateBatch]) -> CandidateBatch | None: ...

    def warm_up(self) -> None: ...


@runtime_checkable
class PreparesContext(Protocol):
    """A link (or ranker) with work that depends on the previous query only: done once when a
    query is submitted (:meth:`CandidateChain.prepare`), not at every keystroke after it."""

    def prepare(self, context: str) -> None: ...


_PUNCTUATION = re.compile(r"[^\w\s]+")


def variant_key(text: str) -> str:
    """What two spellings of one query share: case, punctuation and spacing folded away
    ("House plants?" and "house  plants" are one query)."""
    return " ".join(_PUNCTUATION.sub(" ", text.casefold()).split())


Ranked = tuple[str, float, Source, int]  # text, score, source, matched (-1: starts with the typed text)


class Ranker(Protocol):
    """The ranking step: every batch of the chain in, the best ``k`` :data:`Ranked` out."""

    def rank(self, request: Request, batches: Sequence[CandidateBatch]) -> list[Ranked]: ...

    def warm_up(self) -> None: ...


class ChainOrderRanker:
    """Candidates in the order the chain found them (each generator's batch already sorted by its
    own score), each query once. The ranking every generator's own score defines; no learned part.

    ``fold_variants``: spellings that differ only in case, punctuation or spacing count as one
    query, shown as its first (for a popularity-ordered chain: its most popular) spelling.
    """

    def __init__(self, fold_variants: bool = False) -> None:
        self.fold_variants = fold_variants

    def rank(self, request: Request, batches: Sequence[CandidateBatch]) -> list[Ranked]:
        out: list[Ranked] = []
        seen: set[str] = set()
        for batch in batches:
            matched = batch.matched_or_default().tolist()
            for text, source, score, m in zip(batch.texts, batch.sources, batch.scores, matched):
                key = variant_key(text) if self.fold_variants else text
                if key not in seen:
                    seen.add(key)
                    out.append((text, float(score), source, m))
                    if len(out) == request.k:
                        return out
        return out

    def warm_up(self) -> None:
        return None


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
        # found once: isinstance against a runtime-checkable Protocol costs ~35 us a part
        self._preparers = [p for p in (*self.generators, ranker) if isinstance(p, PreparesContext)]

    def request(self, typed: str, context: str, k: int, history: History = NO_HISTORY) -> Request:
        lo, hi = prefix_range(self.labels.indptr, self.labels.chars, encode(typed))
        return Request(typed, context, k, int(lo), int(hi), past_queries(history))

    def batches(self, request: Request) -> list[CandidateBatch]:
        """What every link adds, in chain order (empty batches left out)."""
        batches: list[CandidateBatch] = []
        for generator in self.generators:
            batch = generator.generate(request, batches)
            if batch is not None and len(batch):
                batches.append(batch)
        return batches

    def run(self, request: Request) -> list[Ranked]:
        return self.ranker.rank(request, self.batches(request))

    def prepare(self, context: str) -> None:
        """Do the work of the keystrokes after ``context`` (a normalized submitted query) that
        depends on it alone; each part keeps it in a bounded cache of its own."""
        if context:
            for part in self._preparers:
                part.prepare(context)

    def warm_up(self) -> None:
        for generator in self.generators:
            generator.warm_up()
        self.ranker.warm_up()
