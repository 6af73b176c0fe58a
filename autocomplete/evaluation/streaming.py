"""Streaming evaluation: a split replayed in time order through a frozen and a live completer.

What a deployed service meets: every query of the split is submitted at its time, and every
(previous, next) pair is asked for just before its next query is submitted. Both completers are
the same model folder; the *frozen* one is the model as trained, the *live* one reads live counts
and live labels (:mod:`autocomplete.live`) fed, in process and at once, by the submits so far
(a server's view lags by its refresh interval, about a second: nothing at the scale of a log).

Per pair: the sampled protocol's prefix (one length per pair, ``random.Random(seed)`` in file
order, as :func:`autocomplete.evaluation.protocols.make_examples`) for MRR, strict MRR and the
other figures of :func:`~autocomplete.evaluation.metrics.score_answers`, overall and by prefix
length, with the paired bootstrap CI of live minus frozen; and, with ``keystrokes``, accepted@5
and saved@5 (the next query typed a character at a time, 5 suggestions shown). Beside them, how
many asked-for queries the model does not know were live labels when they were asked for.
Aggregates only: no query text leaves this module.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from autocomplete.completer import ChainCompleter, build_completer
from autocomplete.evaluation.metrics import (
    SHOWN,
    context_gain,
    example_masks,
    measure_latency,
    per_example,
    score_answers,
)
from autocomplete.evaluation.protocols import Examples
from autocomplete.live import view_for
from indexer.config import TrainConfig
from indexer.model import MpcModel, XmrModel
from indexer.querylog import Session
from sessions.livecounts import MemoryLiveCounts, session_key


def stream_events(sessions: Sequence[Session]) -> list[tuple[float, int, int]]:
    """(time, session index, query index) of every query of ``sessions``, in time order (ties:
    session, then query order)."""
    return sorted((s.time_of(i), n, i) for n, s in enumerate(sessions) for i in range(len(s.queries)))


def _accepted_at(completer: ChainCompleter, target: str, context: list[str], shown: int) -> int:
    """The shortest typed length (< len(target)) whose ``shown`` suggestions hold ``target``; 0: never."""
    for typed in range(1, len(target)):
        if any(c.text == target for c in completer.complete(target[:typed], context, shown)):
            return typed
    return 0


def _keystroke_figures(accepted_at: np.ndarray, lengths: np.ndarray) -> dict:
    accepted = accepted_at > 0
    saved = np.where(accepted, (lengths - accepted_at) / np.maximum(lengths, 1), 0.0)
    n = len(lengths)
    return {
        "queries": n,
        f"accepted_at_{SHOWN}": float(accepted.mean()) if n else 0.0,
        f"saved_at_{SHOWN}": float(saved.mean()) if n else 0.0,
    }


def evaluate_stream(
    model: MpcModel | XmrModel,
    sessions: Sequence[Session],
    config: TrainConfig,
    *,
    k: int = 10,
    seed: int = 0,
    keystrokes: bool = False,
    progress: bool = False,
    resamples: int = 1000,
    latency_calls: int = 0,
) -> dict:
    """Frozen vs live figures of ``sessions`` (one split) replayed in time order; ``config``'s
    ``[live]`` and ``[privacy]`` tables set the live counts and the live-label threshold.
    ``latency_calls``: then time single completions of both, the live one with the state the
    whole split left (its live labels at their most)."""
    live_params = config.live
    view = view_for(live_params, config.privacy, clock=lambda: 0.0)
    frozen, live = build_completer(model), build_completer(model, view)
    store = MemoryLiveCounts(
        short_half_life=live_params.short_half_life_seconds,
        long_half_life=live_params.long_half_life_seconds,
        window=live_params.window_seconds,
        max_queries=max(4 * live_params.max_labels, 1000),
        log_size=0,
    )
    rng = random.Random(seed)
    pair_of: dict[tuple[int, int], int] = {}
    previous: list[str] = []
    prefixes: list[str] = []
    targets: list[str] = []
    for n, session in enumerate(sessions):  # file order, as the sampled protocol draws
        for i in range(1, len(session.queries)):
            nxt = session.queries[i]
            pair_of[(n, i)] = len(targets)
            previous.append(session.queries[i - 1])
            targets.append(nxt)
            prefixes.append(nxt[: rng.randint(1, len(nxt))])
    m = len(targets)
    answers: dict[str, list[list[str]]] = {"frozen": [[] for _ in range(m)], "live": [[] for _ in range(m)]}
    accepted = {"frozen": np.zeros(m), "live": np.zeros(m)}
    was_live_label = np.zeros(m, dtype=bool)
    is_model_label = np.array([model.labels.id_of(t) >= 0 for t in targets], dtype=bool)
    started = time.perf_counter()
    for when, n, i in tqdm(stream_events(sessions), desc="streaming", disable=not progress):
        session = sessions[n]
        view.now = when
        if i > 0:
            j = pair_of[(n, i)]
            context = [previous[j]]
            for name, completer in (("frozen", frozen), ("live", live)):
                answers[name][j] = [c.text for c in completer.complete(prefixes[j], context, k)]
                if keystrokes:
                    accepted[name][j] = _accepted_at(completer, targets[j], context, SHOWN)
            was_live_label[j] = view.is_label(targets[j])
        store.add(session.queries[i], session_key(f"{session.user}\x00{session.start}"), when)
        view.apply(store.changes_since(view.seq, when), now=when)
    examples = Examples(previous, prefixes, targets, list(range(m)))
    seen = set(t for t, known in zip(targets, is_model_label) if known)
    report: dict = {"pairs": m, "seconds": round(time.perf_counter() - started, 1)}
    for name in ("frozen", "live"):
        report[name] = score_answers(examples, answers[name], k, seen)
    rr_live = per_example(examples, answers["live"], k)["rr"]
    rr_frozen = per_example(examples, answers["frozen"], k)["rr"]
    report["live_gain"] = context_gain(rr_live, rr_frozen, example_masks(examples, seen), resamples, seed)
    if keystrokes:
        lengths = np.array([len(t) for t in targets], dtype=np.float64)
        report["keystrokes"] = {name: _keystroke_figures(accepted[name], lengths) for name in accepted}
    if latency_calls:
        report["latency_ms"] = {
            name: measure_latency(completer.complete, examples, k, latency_calls // 4, latency_calls)
            for name, completer in (("frozen", frozen), ("live", live))
        }
    unseen = ~is_model_label
    report["live_labels"] = {
        "unseen_pairs": int(unseen.sum()),
        "unseen_pairs_asked_when_live": int((was_live_label & unseen).sum()),
        "unseen_queries": len({t for t, u in zip(targets, unseen) if u}),
        "unseen_queries_live_before_asked_again": len(
            {t for t, u, w in zip(targets, unseen, was_live_label) if u and w}
        ),
        "admitted": view.admitted,
        "held_at_end": len(view.labels),
        "min_sessions": view.min_sessions,
    }
    return report
