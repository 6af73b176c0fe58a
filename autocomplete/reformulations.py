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

import numpy as np

from autocomplete.candidates import CandidateBatch, Feature, Request, Source, empty_features
from autocomplete.generation import Generator

MAX_WORDS = 8  # a longer previous query is edited in its first 8 words only (spans grow as n^2)


CompleteWord = Callable[[list[str], str, str], list[tuple[str, float]]]  # (words, partial, exclude)


def edits(
    previous: str, typed: str, complete_word: CompleteWord | None = None
) -> list[tuple[str, int, int, float]]:
    """The one-edit reformulations of ``previous`` that start with ``typed`` (both normalized),
    as (text, previous words left out, new words, log P of the new word or 0), without repeats
    and never ``previous`` itself. ``complete_word(words, partial, exclude)`` gives the likely
    (word, log P) completions of an unfinished word; None: no replace / insert of one."""
    prev = previous.split(" ")[:MAX_WORDS]
    n = len(prev)
    typed_words = typed.split(" ")
    done, partial = typed_words[:-1], typed_words[-1]
    out: dict[str, tuple[int, int, float]] = {}

    def add_text(text: str, dropped: int, added: int, logp: float = 0.0) -> None:
        if text != previous and text not in out and text.startswith(typed):
            out[text] = (dropped, added, logp)

    def add(words: list[str], dropped: int, added: int, logp: float = 0.0) -> None:
        add_text(" ".join(words), dropped, added, logp)

    starts, ends, at = [], [], 0  # character offsets of the words in the edited text
    for word in prev:
        starts.append(at)
        at += len(word)
        ends.append(at)
        at += 1
    text = previous[: ends[-1]]
    size = len(typed)
    for i in range(n):  # the spans of words i..j-1
        if text.startswith(typed, starts[i]):
            for j in range(i + 1, n + 1):
                if ends[j - 1] - starts[i] >= size:
                    add_text(text[starts[i] : ends[j - 1]], n - (j - i), 0)
    for i in range(1, n):  # words i..j-1 left out (from the first word on, that is a span)
        cut = ends[i - 1]
        if cut >= size:
            if not text.startswith(typed):
                break
            for j in range(i + 1, n + 1):
                add_text(text[:cut] + text[ends[j - 1] :], j - i, 0)
        elif text.startswith(typed[:cut]):
            for j in range(i + 1, n + 1):
                if text.startswith(typed[cut:], ends[j - 1]):
                    add_text(text[:cut] + text[ends[j - 1] :], j - i, 0)
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


class Reformulations:
    """Up to ``n`` one-edit reformulations of the previous query that start with the typed text,
    the likeliest first under the word language model (``generator``; None: drops only, in the
    order found). ``words``: completions of an unfinished word tried for replace / insert."""

    def __init__(self, generator: Generator | None, n: int = 10, words: int = 3) -> None:
        self.generator = generator
        self.n = n
        self.words = words

    def _complete(self, done: list[str], partial: str, exclude: str) -> list[tuple[str, float]]:
        assert self.generator is not None
        return self.generator.complete_word(done, partial, self.words, exclude)

    def generate(self, request: Request, found: Sequence[CandidateBatch]) -> CandidateBatch | None:
        if self.n <= 0 or not request.context or not request.typed.strip():
            return None
        use_lm = self.generator is not None and self.words > 0
        made = edits(request.context, request.typed, self._complete if use_lm else None)
        if not made:
            return None
        texts = [m[0] for m in made]
        features = empty_features(len(texts), Source.REFORMULATED)
        features[:, Feature.REFORM_DROPPED] = [m[1] for m in made]
        features[:, Feature.REFORM_ADDED] = [m[2] for m in made]
        if self.generator is not None:
            if self.generator.blocklist.words or self.generator.blocklist.patterns:
                keep = [i for i, t in enumerate(texts) if not self.generator.blocklist.blocks(t)]
                texts, features = [texts[i] for i in keep], features[keep]
                if not texts:
                    return None
            done = request.typed.rsplit(" ", 1)[0] if " " in request.typed else ""
            logp, end = self.generator.score([*texts, done] if done else texts)
            typed_logp = logp[-1] if done else 0.0
            logp, end = logp[: len(texts)], end[: len(texts)]
            features[:, Feature.LM_LOGPROB] = logp - typed_logp
            features[:, Feature.LM_END_LOGPROB] = end
            scores = logp + end
        else:
            scores = -np.arange(len(texts), dtype=np.float64)
        order = np.argsort(-scores, kind="stable")[: self.n]
        features = features[order]
        features[:, Feature.SOURCE_RANK] = 1.0 / (1.0 + np.arange(len(order)))
        return CandidateBatch(
            [texts[i] for i in order.tolist()],
            [Source.REFORMULATED] * len(order),
            scores[order],
            features,
            np.full(len(order), -1),
        )

    def warm_up(self) -> None:
        if self.generator is not None:
            self.generator.score(["warm up"])
            self.generator.complete_word(["warm"], "u", 1)
