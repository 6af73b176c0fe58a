"""What a replay types and what it saw: the plan of sessions, the tally, and the report.

The plan takes the split's sessions and the prefixes of
:func:`~autocomplete.evaluation.protocols.make_examples` for the same split and seed, so replay and
``autocomplete eval`` score the same examples. The report
holds aggregate figures only, never query text.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

from autocomplete.evaluation.metrics import Seen, latency_summary, score_answers, score_keystrokes
from autocomplete.evaluation.protocols import BUCKETS, Examples, make_examples
from indexer.querylog import QueryLog


@dataclasses.dataclass(frozen=True)
class ReplaySession:
    """One session to replay: its queries, and for each query after the first the prefixes to type.

    ``first_example`` is the index, in the plan's examples, of the first prefix typed; the others
    follow in typing order.
    """

    queries: tuple[str, ...]
    prefixes: tuple[tuple[str, ...], ...]
    first_example: int


@dataclasses.dataclass(frozen=True)
class ReplayPlan:
    sessions: list[ReplaySession]
    examples: Examples
    protocol: str
    split: str

    @property
    def inputs(self) -> int:
        return len(self.examples)


def plan_replay(log: QueryLog, split: str, protocol: str, seed: int = 0, sessions: int = 0) -> ReplayPlan:
    """The sessions of ``split`` with at least two queries (the first ``sessions``, 0 = all) and
    the evaluation examples they type, in the order ``make_examples`` draws them."""
    examples = make_examples(log.pairs(split), protocol, seed)
    planned: list[ReplaySession] = []
    offset = 0
    for session in log.sessions[split]:
        if len(session.queries) < 2:
            continue
        if sessions and len(planned) == sessions:
            break
        start = offset
        per_query = []
        for query in session.queries[1:]:
            count = 1 if protocol == "sampled" else len(query)
            typed = tuple(examples.prefix[offset : offset + count])
            if any(examples.target[j] != query for j in range(offset, offset + count)):
                raise AssertionError("replay plan and make_examples disagree on the example order")
            per_query.append(typed)
            offset += count
        planned.append(ReplaySession(tuple(session.queries), tuple(per_query), start))
    kept = examples.head(offset)
    return ReplayPlan(planned, kept, protocol, split)


@dataclasses.dataclass
class ReplayTally:
    """Raw observations of a replay; tallies of several client processes add up with ``merge``."""

    answers: dict[int, list[str]] = dataclasses.field(default_factory=dict)  # example -> completions
    latencies: list[float] = dataclasses.field(default_factory=list)  # seconds, completions only
    answered_at: list[float] = dataclasses.field(default_factory=list)  # time.perf_counter(), same order
    server_ms: list[float] = dataclasses.field(default_factory=list)
    sessions_done: int = 0
    sessions_failed: int = 0
    inputs_sent: int = 0
    submits_sent: int = 0
    completions: int = 0
    superseded: int = 0
    submits_not_stored: int = 0
    reconnects: int = 0
    frames_resent: int = 0
    sessions_not_resumed: int = 0
    errors: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    violations: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    violation_samples: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def violation(self, kind: str, session: int, seq: int | None) -> None:
        self.violations[kind] += 1
        if len(self.violation_samples) < 20:
            self.violation_samples.append({"kind": kind, "session": session, "seq": seq})

    def merge(self, other: ReplayTally) -> None:
        self.answers.update(other.answers)
        self.latencies += other.latencies
        self.answered_at += other.answered_at
        self.server_ms += other.server_ms
        for field in (
            "sessions_done",
            "sessions_failed",
            "inputs_sent",
            "submits_sent",
            "completions",
            "superseded",
            "submits_not_stored",
            "reconnects",
            "frames_resent",
            "sessions_not_resumed",
        ):
            setattr(self, field, getattr(self, field) + getattr(other, field))
        self.errors.update(other.errors)
        self.violations.update(other.violations)
        self.violation_samples += other.violation_samples[: max(0, 20 - len(self.violation_samples))]


def build_report(
    plan: ReplayPlan,
    tally: ReplayTally,
    seconds: float,
    *,
    url: str,
    concurrency: int,
    speed: str,
    k: int,
    seen: Seen = None,
) -> dict[str, Any]:
    """Quality of the answered inputs (the ``eval`` metrics: strict, and seen/unseen when ``seen``
    is given), on the keystroke protocol accepted@5 and saved@5 per query, latency, throughput and
    violations."""
    scored = sorted(tally.answers)
    examples = plan.examples.subset(scored)
    answers = [tally.answers[j] for j in scored]
    quality = score_answers(examples, answers, k, seen)
    keystrokes = score_keystrokes(examples, answers, seen) if plan.protocol == "keystroke" else None
    return {
        "url": url,
        "split": plan.split,
        "protocol": plan.protocol,
        "speed": speed,
        "concurrency": concurrency,
        "k": k,
        "sessions": {
            "planned": len(plan.sessions),
            "done": tally.sessions_done,
            "failed": tally.sessions_failed,
        },
        "inputs": {
            "planned": plan.inputs,
            "sent": tally.inputs_sent,
            "answered_with_completions": tally.completions,
            "scored": len(scored),
            "superseded": tally.superseded,
            "errors": dict(tally.errors),
        },
        "submits": {"sent": tally.submits_sent, "not_stored": tally.submits_not_stored},
        "seconds": round(seconds, 3),
        "keystrokes_per_second": round(tally.inputs_sent / seconds, 1) if seconds > 0 else 0.0,
        "latency_ms": latency_summary(tally.latencies),
        "server_ms": latency_summary([ms / 1000.0 for ms in tally.server_ms]),
        "quality": quality,
        "keystrokes": keystrokes,
        "connections": {
            "reconnects": tally.reconnects,
            "frames_resent": tally.frames_resent,
            "sessions_not_resumed": tally.sessions_not_resumed,
        },
        "violations": dict(tally.violations),
        "violation_samples": tally.violation_samples,
    }


def markdown(report: dict[str, Any]) -> str:
    q = report["quality"]
    lat = report["latency_ms"]
    k = report["k"]
    lines = [
        f"# Replay: {report['split']} split, {report['protocol']} protocol, {report['speed']} speed,"
        f" concurrency {report['concurrency']}",
        "",
        f"{report['sessions']['done']} of {report['sessions']['planned']} sessions,"
        f" {report['inputs']['sent']} inputs and {report['submits']['sent']} submits in {report['seconds']} s"
        f" ({report['keystrokes_per_second']} keystrokes/s).",
        "",
        f"Strict MRR {q['strict_mrr']:.4f} (prefix shorter than the next query).",
        "",
        f"| examples | count | MRR | BLEU | success@1 | success@{k} |",
        "|---|---|---|---|---|---|",
    ]
    rows = [("all", q), ("strict", q["strict"])]
    rows += [(name, q[name]) for name in ("seen", "unseen") if name in q]
    rows += [(b, q["by_prefix_length"][b]) for b in BUCKETS]
    for name, m in rows:
        lines.append(
            f"| {name} | {m['examples']} | {m['mrr']:.4f} | {m['bleu']:.4f} |"
            f" {m['success_at_1']:.4f} | {m[f'success_at_{k}']:.4f} |"
        )
    keys = report.get("keystrokes")
    if keys:
        lines += [
            "",
            f"Per query ({keys['queries']}): accepted@5 {keys['accepted_at_5']:.4f},"
            f" saved@5 {keys['saved_at_5']:.4f}.",
        ]
    lines += [
        "",
        "| latency (ms, end to end) | p50 | p90 | p99 | max |",
        "|---|---|---|---|---|",
        f"| completions | {lat['p50']} | {lat['p90']} | {lat['p99']} | {lat['max']} |",
        "",
        f"Superseded: {report['inputs']['superseded']}. Errors: {report['inputs']['errors'] or 'none'}."
        f" Submits not stored: {report['submits']['not_stored']}."
        f" Reconnects: {report['connections']['reconnects']}"
        f" (sessions not resumed: {report['connections']['sessions_not_resumed']}).",
        f"Protocol violations: {report['violations'] or 'none'}.",
        "",
    ]
    return "\n".join(lines)
