"""The previous query, edited: candidates for a person rephrasing what they just searched for.

Consecutive queries are often one edit apart at the word level: a word left out ("cheap flights
to paris" -> "flights to paris"), one word replaced ("... to paris" -> "... to rome", or the first:
"discount flights to paris") or one word put in ("cheap direct flights to paris"). On
``aol1k-dev`` such edits are about 10% of the new users' next queries (valid split), and most of
them are no logged query at all. :class:`Reformulations` proposes, for the typed text, the edits
of the previous query that start with it:

- **drops**: every span of the previous query's words, and the query with one span of words
  left out;
- **replace / insert**: where the typed words follow the previous query and first differ from it
  at word ``j``, the typed word ``j`` (or, while it is unfinished, its likeliest completions under
  the word language model) replaces the previous query's word ``j`` or goes in front of it, and
  the rest of the previous query carries over.

Each candidate gets the language model's log probability of its text (``LM_LOGPROB`` of the part
after the typed words, ``LM_END_LOGPROB``) and how many previous-query words it left out and how
many new words it holds, so the ranker can weigh an edit against what the model proposes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from autocomplete.candidates import CandidateBatch, Feature, Request, Source, empty_features, looked_up
from autocomplete.generation import Generator
from indexer.caches import through_cache
from indexer.labels import LabelSet

MAX_WORDS = 8  # a longer previous query is edited in its first 8 words only (spans grow as n^2)


CompleteWord = Callable[[list[str], str, str], list[tuple[str, float]]]  # (words, partial, exclude)


def drops(previous: str) -> list[tuple[str, int]]:
    """Every span of the previous query's words and the query with one span of words left out,
    as (text, previous words left out), spans first, without repeats and never ``previous``
    itself. They depend on the previous query alone: the link keeps them, scored, per context."""
    prev = previous.split(" ")[:MAX_WORDS]
    n = len(prev)
    starts, ends, at = [], [], 0  # character offsets of the words in the edited text
    for word in prev:
        starts.append(at)
        at += len(word)
        ends.append(at)
        at += 1
    text = previous[: ends[-1]]
    out: dict[str, int] = {}
    for i in range(n):  # the spans of words i..j-1
        for j in range(i + 1, n + 1):
            out.setdefault(text[starts[i] : ends[j - 1]], n - (j - i))
    for i in range(1, n):  # words i..j-1 left out (from the first word on, that is a span)
        for j in range(i + 1, n + 1):
            out.setdefault(text[: ends[i - 1]] + text[ends[j - 1] :], j - i)
    out.pop(previous, None)
    return list(out.items())


def new_words(
    previous: str, typed: str, complete_word: CompleteWord | None = None
) -> list[tuple[str, int, int, float]]:
    """The reformulations of ``previous`` with one new word, as (text, previous words left out,
    new words, log P of the new word or 0): where the typed words first differ from the previous
    query at word ``j``, the typed word ``j`` (or, while it is unfinished, the completions
    ``complete_word(words, partial, exclude)`` gives; None: none) replaces word ``j`` or goes in
    front of it, and the rest of the previous query carries over."""
    prev = previous.split(" ")[:MAX_WORDS]
    n = len(prev)
    typed_words = typed.split(" ")
    done, partial = typed_words[:-1], typed_words[-1]
    out: dict[str, tuple[int, int, float]] = {}

    def add(words: list[str], dropped: int, added: int, logp: float = 0.0) -> None:
        text = " ".join(words)
        if text != previous and text not in out and text.startswith(typed):
            out[text] = (dropped, added, logp)

    d = 0  # the first typed word that differs from the previous query's
    while d < len(done) and d < n and done[d] == prev[d]:
        d += 1
    if d < len(done):  # the new word is typed whole: the rest of the previous query follows it
        if d < n:
            add(done[: d + 1] + prev[d + 1 :], 1, 1)
            add(done[: d + 1] + prev[d:], 0, 1)
    elif d < n and partial and complete_word is not None:  # the new word is being typed
        for word, logp in complete_word(done, partial, prev[d]):
            add(done + [word] + prev[d + 1 :], 1, 1, logp)
            add(done + [word] + prev[d:], 0, 1, logp)
    return [(text, *values) for text, values in out.items()]


def edits(
    previous: str, typed: str, complete_word: CompleteWord | None = None
) -> list[tuple[str, int, int, float]]:
    """The one-edit reformulations of ``previous`` that start with ``typed`` (both normalized),
    as (text, previous words left out, new words, log P of the new word or 0), without repeats
    and never ``previous`` itself: the :func:`drops` that start with it, then the :func:`new_words`."""
    out = [(text, dropped, 0, 0.0) for text, dropped in drops(previous) if text.startswith(typed)]
    kept = {m[0] for m in out}
    return out + [m for m in new_words(previous, typed, complete_word) if m[0] not in kept]


class _Drops(NamedTuple):
    """A previous query's :func:`drops` the blocklist lets through, with their LM scores."""

    texts: list[str]
    dropped: np.ndarray  # float32
    logp: np.ndarray  # float64, log P(words | <s>); zeros without a language model
    end: np.ndarray  # float64, log P(</s> | words)
    label_ids: np.ndarray  # int64: label ids, NOT_A_LABEL (-1 without a label set)


_DROPS_KEPT = 1024  # previous queries whose scored drops a worker keeps


class Reformulations:
    """Up to ``n`` one-edit reformulations of the previous query that start with the typed text,
    the likeliest first under the word language model (``generator``; None: drops only, in the
    order found). ``words``: completions of an unfinished word tried for replace / insert.
    ``labels``: the drops that are logged queries are found once per previous query, not by the
    ranker at every keystroke."""

    def __init__(
        self, generator: Generator | None, n: int = 10, words: int = 3, labels: LabelSet | None = None
    ) -> None:
        self.generator = generator
        self.n = n
        self.words = words
        self.labels = labels
        self._drops: dict[str, _Drops] = {}

    def _complete(self, done: list[str], partial: str, exclude: str) -> list[tuple[str, float]]:
        assert self.generator is not None
        return self.generator.complete_word(done, partial, self.words, exclude)

    def prepare(self, context: str) -> None:
        self._drops_of(context)

    def _drops_of(self, context: str) -> _Drops:
        return through_cache(self._drops, [context], self._score_drops, _DROPS_KEPT)[0]

    def _score_drops(self, contexts: list[str]) -> list[_Drops]:
        out = []
        for context in contexts:
            made = [m for m in drops(context) if not self._blocked(m[0])]
            texts = [m[0] for m in made]
            dropped = np.array([m[1] for m in made], dtype=np.float32)
            if self.generator is not None and texts:
                logp, end = self.generator.score(texts)
            else:
                logp = end = np.zeros(len(texts))
            if self.labels is not None:
                ids = looked_up(self.labels, texts)
            else:
                ids = np.full(len(texts), -1, dtype=np.int64)
            out.append(_Drops(texts, dropped, logp, end, ids))
        return out

    def _blocked(self, text: str) -> bool:
        blocklist = self.generator.blocklist if self.generator is not None else None
        return (
            blocklist is not None and bool(blocklist.words or blocklist.patterns) and blocklist.blocks(text)
        )

    def generate(self, request: Request, found: Sequence[CandidateBatch]) -> CandidateBatch | None:
        typed = request.typed
        if self.n <= 0 or not request.context or not typed.strip():
            return None
        kept = self._drops_of(request.context)
        rows = [i for i, text in enumerate(kept.texts) if text.startswith(typed)]
        texts = [kept.texts[i] for i in rows]
        use_lm = self.generator is not None and self.words > 0
        made = new_words(request.context, typed, self._complete if use_lm else None)
        made = [m for m in made if not self._blocked(m[0]) and m[0] not in texts]
        if not texts and not made:
            return None
        texts += [m[0] for m in made]
        dropped = np.concatenate((kept.dropped[rows], np.array([m[1] for m in made], dtype=np.float32)))
        added = np.array([0] * len(rows) + [m[2] for m in made], dtype=np.float32)
        label_ids = np.concatenate((kept.label_ids[rows], np.full(len(made), -1, dtype=np.int64)))
        if self.generator is not None:
            done = typed.rsplit(" ", 1)[0] if " " in typed else ""
            asked = [m[0] for m in made] + ([done] if done else [])
            logp, end = self.generator.score(asked) if asked else (np.empty(0), np.empty(0))
            typed_logp = logp[-1] if done else 0.0
            logp = np.concatenate((kept.logp[rows], logp[: len(made)]))
            end = np.concatenate((kept.end[rows], end[: len(made)]))
            scores = logp + end
        else:
            scores = -np.arange(len(texts), dtype=np.float64)
        order = np.argsort(-scores, kind="stable")[: self.n]
        features = empty_features(len(order), Source.REFORMULATED)  # SOURCE_RANK: by this order
        features[:, Feature.REFORM_DROPPED] = dropped[order]
        features[:, Feature.REFORM_ADDED] = added[order]
        if self.generator is not None:
            features[:, Feature.LM_LOGPROB] = logp[order] - typed_logp
            features[:, Feature.LM_END_LOGPROB] = end[order]
        return CandidateBatch(
            [texts[i] for i in order.tolist()],
            [Source.REFORMULATED] * len(order),
            scores[order],
            features,
            label_ids[order],
        )

    def warm_up(self) -> None:
        if self.generator is not None:
            self.generator.score(["warm up"])
            self.generator.complete_word(["warm"], "u", 1)
