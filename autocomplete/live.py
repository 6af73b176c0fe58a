"""Live counts and live labels in the chain: what the submits since training add, read per keystroke.

:class:`LiveView` is a worker's copy of the shared live counts (:mod:`sessions.livecounts`),
brought up to date between keystrokes (:mod:`autocomplete.livefeed` polls the store every second
or so; an in-process caller applies every submit at once), so a keystroke never waits for Redis.
It holds, per tracked query, the log2 of its two decayed counts and its distinct recent sessions,
and the **live labels**: the queries submitted by at least ``min_sessions`` distinct sessions
within the window and not blocklisted, as one sorted list (bounded by ``max_labels``: the least
popular go first), so that the live labels of a prefix are one range found by bisection.

Links of the chain that read it:

- :class:`LiveLabels`: the most popular live labels that start with the typed text and are no
  model label (``source: "live"``), with their language-model probability;
- :class:`LivePopularFill` / :class:`LivePopularRange`: the popular fill and the most-popular
  baseline, ordered by training count plus live count (MPC: live labels merged in by the same rule).

The ranking step fills every candidate's live features (:meth:`LiveView.fill`).
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Sequence

import numpy as np

from autocomplete.candidates import CandidateBatch, Feature, Request, Source, concatenate, empty_features
from autocomplete.generators import PopularFill, PopularRange, label_batch
from indexer.labels import LabelSet
from indexer.language import WordLanguageModel
from indexer.params import LiveParams, PrivacyParams
from indexer.popularity import PopularityIndex
from indexer.privacy import Blocklist
from sessions.livecounts import LiveChanges

_AFTER_EVERY = "\U0010ffff"  # sorts after any character a label may hold next


class LiveView:
    """The live counts as this worker last read them, and the live labels they admit.

    Parameters
    ----------
    params : LiveParams
        Half-lives (the decayed values are read at :attr:`now`), ``max_labels``.
    min_sessions : int
        Distinct sessions a query needs (within the store's window) to become a live label.
    blocklist : Blocklist, optional
        No blocklisted query ever becomes a live label (:meth:`set_blocklist` applies a new one).
    """

    def __init__(
        self,
        params: LiveParams,
        min_sessions: int,
        blocklist: Blocklist | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.params = params
        self.min_sessions = max(1, int(min_sessions))
        self.blocklist = blocklist if blocklist is not None else Blocklist(frozenset(), ())
        self.now = clock()
        self.seq = 0
        self._short_rate = 1.0 / params.short_half_life_seconds
        self._long_rate = 1.0 / params.long_half_life_seconds
        self._entries: dict[str, tuple[float, float, int]] = {}  # query -> (short L, long L, sessions)
        self.labels: list[str] = []  # sorted
        self._label_long = np.empty(0, dtype=np.float64)  # long L of labels[i]
        self.admitted = 0  # live labels ever admitted (a figure for /metrics and the evaluation)

    def __len__(self) -> int:
        return len(self._entries)

    # ------------------------------------------------------------ updates (between keystrokes)

    def apply(self, changes: LiveChanges, now: float | None = None) -> None:
        """Bring the view up to ``changes`` (the store's answer to :attr:`seq`)."""
        if changes.reset:
            self._entries.clear()
            self.labels, self._label_long = [], np.empty(0, dtype=np.float64)
        admitted: dict[str, float] = {}
        for entry in changes.entries:
            self._entries[entry.query] = (entry.short, entry.long, entry.sessions)
            at = bisect.bisect_left(self.labels, entry.query)
            if at < len(self.labels) and self.labels[at] == entry.query:
                self._label_long[at] = entry.long
            elif self._admits(entry.query, entry.sessions):
                admitted[entry.query] = entry.long
        for query in changes.removed:
            self._entries.pop(query, None)
            self._drop_label(query)
        self.admitted += len(admitted)
        if len(admitted) <= 32:  # the usual refresh: a few insertions into the sorted list
            for query, long in admitted.items():
                at = bisect.bisect_left(self.labels, query)
                self.labels.insert(at, query)
                self._label_long = np.insert(self._label_long, at, long)
        else:  # a burst (a reset, a worker that fell behind): one merge
            merged = dict(zip(self.labels, self._label_long.tolist()))
            merged.update(admitted)
            self.labels = sorted(merged)
            self._label_long = np.array([merged[q] for q in self.labels], dtype=np.float64)
        excess = len(self.labels) - self.params.max_labels
        if 0 < excess <= 32:  # the usual refresh: the least popular few go, one at a time
            for _ in range(excess):
                self._drop_at(int(np.argmin(self._label_long)))
        elif excess > 0:  # the least popular go, in one pass
            keep = np.sort(
                np.argpartition(-self._label_long, self.params.max_labels - 1)[: self.params.max_labels]
            )
            self.labels = [self.labels[i] for i in keep.tolist()]
            self._label_long = self._label_long[keep]
        self.seq = changes.seq
        if now is not None:
            self.now = now

    def set_blocklist(self, blocklist: Blocklist) -> None:
        """Apply a new blocklist at once: blocked live labels go, none is admitted again."""
        self.blocklist = blocklist
        for query in [q for q in self.labels if blocklist.blocks(q)]:
            self._drop_label(query)

    def _admits(self, query: str, sessions: int) -> bool:
        return (
            sessions >= self.min_sessions and self.params.max_labels > 0 and not self.blocklist.blocks(query)
        )

    def _drop_label(self, query: str) -> None:
        at = bisect.bisect_left(self.labels, query)
        if at < len(self.labels) and self.labels[at] == query:
            self._drop_at(at)

    def _drop_at(self, at: int) -> None:
        del self.labels[at]
        self._label_long = np.delete(self._label_long, at)

    # ------------------------------------------------------------ reads (per keystroke)

    def is_label(self, query: str) -> bool:
        at = bisect.bisect_left(self.labels, query)
        return at < len(self.labels) and self.labels[at] == query

    def long_counts(self, texts: Sequence[str]) -> np.ndarray:
        """Each text's live count (long half-life) at :attr:`now`; 0 for an untracked one."""
        out = np.zeros(len(texts))
        entries, shift = self._entries, self.now * self._long_rate
        for i, text in enumerate(texts):
            entry = entries.get(text)
            if entry is not None:
                out[i] = 2.0 ** (entry[1] - shift)
        return out

    def fill(self, texts: Sequence[str], X: np.ndarray) -> None:
        """The live feature columns of the candidate rows ``X`` (``texts[i]`` is row i)."""
        if not self._entries:
            return
        entries = self._entries
        found = [(i, entries[t]) for i, t in enumerate(texts) if t in entries]
        if not found:
            return
        rows = np.fromiter((i for i, _ in found), dtype=np.int64, count=len(found))
        values = np.array([e for _, e in found], dtype=np.float64)
        short = np.log1p(np.exp2(values[:, 0] - self.now * self._short_rate))
        long = np.log1p(np.exp2(values[:, 1] - self.now * self._long_rate))
        X[rows, Feature.LIVE_SHORT] = short
        X[rows, Feature.LIVE_LONG] = long
        X[rows, Feature.LIVE_TREND] = short - long
        X[rows, Feature.LIVE_SESSIONS] = values[:, 2]

    def top_labels(self, prefix: str, n: int, skip: Callable[[str], bool] | None = None) -> list[str]:
        """The ``n`` most popular live labels starting with ``prefix`` (``skip``: left out)."""
        if n <= 0 or not self.labels:
            return []
        lo = bisect.bisect_left(self.labels, prefix)
        hi = bisect.bisect_left(self.labels, prefix + _AFTER_EVERY, lo)
        if lo >= hi:
            return []
        scores = self._label_long[lo:hi]
        want = min(hi - lo, 4 * n)
        best = np.argpartition(-scores, want - 1)[:want] if want < hi - lo else np.arange(hi - lo)
        best = best[np.argsort(-scores[best], kind="stable")]
        out: list[str] = []
        for i in best.tolist():
            text = self.labels[lo + i]
            if skip is None or not skip(text):
                out.append(text)
                if len(out) == n:
                    break
        return out


class LiveLabels:
    """The chain's link to the live labels: the ``limit`` most popular live labels of the typed
    text that the model does not already know, each with its language-model log probability."""

    def __init__(
        self, view: LiveView, labels: LabelSet, limit: int, language: WordLanguageModel | None = None
    ) -> None:
        self.view = view
        self.labels = labels
        self.limit = limit
        self.language = language
        self._logprob: dict[str, float] = {}

    def _is_model_label(self, text: str) -> bool:
        return self.labels.id_of(text) >= 0

    def _lm(self, text: str) -> float:
        found = self._logprob.get(text)
        if found is None:
            if len(self._logprob) > 4 * max(self.view.params.max_labels, 1):
                self._logprob.clear()
            value = self.language.log_probability(text) if self.language is not None else -math.inf
            found = self._logprob[text] = max(value, -50.0)
        return found

    def generate(self, request: Request, found: Sequence[CandidateBatch]) -> CandidateBatch | None:
        if self.limit <= 0 or not self.view.labels or request.k <= 0:
            return None
        if len(request.typed) < self.view.params.min_prefix_chars:
            return None
        texts = self.view.top_labels(request.typed, self.limit, self._is_model_label)
        if not texts:
            return None
        n = len(texts)
        features = empty_features(n, Source.LIVE)
        if self.language is not None:
            features[:, Feature.LM_LOGPROB] = [self._lm(t) for t in texts]
        scores = self.view.long_counts(texts)
        return CandidateBatch(texts, [Source.LIVE] * n, scores, features, np.full(n, -1, dtype=np.int64))

    def warm_up(self) -> None:
        self.view.top_labels("a", 1)


class LivePopularFill(PopularFill):
    """The popular fill, ordered by training count plus live count (of a pool four times its room)."""

    def __init__(self, popularity: PopularityIndex, view: LiveView) -> None:
        super().__init__(popularity)
        self.view = view

    def generate(self, request: Request, found: Sequence[CandidateBatch]) -> CandidateBatch | None:
        want = min(request.k, request.hi - request.lo)
        have = sum(len(b) for b in found)
        if have >= want:
            return None
        seen = {text for b in found for text in b.texts}
        labels = self.popularity.labels
        ids = np.asarray(self.popularity.top_ids(request.typed, 4 * (request.k + have)), dtype=np.int64)
        texts = labels.texts_of(ids)
        counts = labels.counts[ids] + self.view.long_counts(texts)
        order = np.argsort(-counts, kind="stable")
        kept = [int(ids[i]) for i in order.tolist() if texts[i] not in seen][: want - have]
        return label_batch(labels, np.array(kept, dtype=np.int64), np.zeros(len(kept)), Source.POPULAR)


class LivePopularRange(PopularRange):
    """Most-popular completion with live counts: training count plus live count, the live labels
    of the prefix merged in by their live count (the rule that needs no learned scorer)."""

    def __init__(self, popularity: PopularityIndex, view: LiveView) -> None:
        super().__init__(popularity)
        self.view = view
        self._total = float(max(int(np.asarray(popularity.labels.counts).sum()), 1))

    def generate(self, request: Request, found: Sequence[CandidateBatch]) -> CandidateBatch | None:
        if request.k <= 0:
            return None
        labels = self.popularity.labels
        ids = np.asarray(self.popularity.top_ids(request.typed, 4 * request.k), dtype=np.int64)
        batch = label_batch(labels, ids, np.zeros(len(ids)), Source.POPULAR)
        batch.scores = (labels.counts[ids] + self.view.long_counts(batch.texts)) / self._total
        live: list[str] = []
        if len(request.typed) >= self.view.params.min_prefix_chars:
            live = self.view.top_labels(request.typed, request.k, lambda t: labels.id_of(t) >= 0)
        if live:
            n = len(live)
            extra = CandidateBatch(
                live,
                [Source.LIVE] * n,
                self.view.long_counts(live) / self._total,
                empty_features(n, Source.LIVE),
                np.full(n, -1, dtype=np.int64),
            )
            batch = concatenate([batch, extra])
        order = np.argsort(-batch.scores, kind="stable")[: 2 * request.k]
        return CandidateBatch(
            [batch.texts[i] for i in order],
            [batch.sources[i] for i in order],
            batch.scores[order],
            batch.features[order],
            batch.label_ids[order],
        )


def view_for(live: LiveParams, privacy: PrivacyParams, clock: Callable[[], float] = time.time) -> LiveView:
    """The live view a model's configuration asks for: its ``[live]`` settings, its threshold
    (``[live] min_users``, else ``[privacy] min_users``) and its ``[privacy] blocklist``."""
    return LiveView(live, live.threshold(privacy.min_users), Blocklist.read(privacy.blocklist), clock)
