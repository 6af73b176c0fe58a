"""Query logs -> sessions -> splits -> (previous query, next query) pairs.

Implements the benchmark protocol of ``shared/data/README.md`` exactly: normalize and drop empty
queries; per user in time order, a new session when the gap to the user's previous query exceeds
the session gap; consecutive duplicates dropped inside a session; splits by session start date;
pairs of consecutive queries inside a session. Logs of other products are split by fractions of
their own time span instead (``[log] split_fractions``) unless dates are set.

Rows are streamed from the file (:mod:`indexer.logreaders`: every format, time detection);
malformed rows are counted by reason and skipped. :func:`read_query_log` then checks that the
log can be trained and evaluated on, and raises :class:`LogFormatError` naming what is wrong
and the ``[log]`` key that fixes it (every row rejected, an empty split), before any model work.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from indexer.logreaders import FORMATS, LogStats, Row, open_text_lines, read_rows
from indexer.normalize import get_normalizer
from indexer.params import ConfigError, LogFormatError, LogParams

__all__ = [
    "SPLITS",
    "LogFormatError",
    "LogStats",
    "Pairs",
    "QueryLog",
    "Row",
    "Session",
    "is_new_user",
    "open_text_lines",
    "read_query_log",
    "read_rows",
    "sessionize",
]

SPLITS = ("train", "valid", "test")


@dataclasses.dataclass(frozen=True, slots=True)
class Session:
    """One user's queries in time order; ``times``: when each was issued (empty for a log
    without times, or a session built by hand)."""

    user: str
    start: float
    queries: tuple[str, ...]
    times: tuple[float, ...] = ()

    def time_of(self, i: int) -> float:
        """When query ``i`` was issued (without times: the start plus ``i`` seconds)."""
        return self.times[i] if i < len(self.times) else self.start + i


@dataclasses.dataclass(frozen=True)
class Pairs:
    """Consecutive (previous, next) queries of one split, in file order, with their users."""

    previous: list[str]
    next: list[str]
    users: list[str]

    def __len__(self) -> int:
        return len(self.next)


@dataclasses.dataclass
class QueryLog:
    """A log cut into sessions per split; ``bounds`` says how (``"2024-05-01..2024-06-18"``)."""

    sessions: dict[str, list[Session]]
    stats: LogStats
    bounds: dict[str, str] = dataclasses.field(default_factory=dict)

    def pairs(self, split: str) -> Pairs:
        if split not in self.sessions:
            raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
        previous: list[str] = []
        following: list[str] = []
        users: list[str] = []
        for session in self.sessions[split]:
            q = session.queries
            previous.extend(q[:-1])
            following.extend(q[1:])
            users.extend([session.user] * (len(q) - 1))
        return Pairs(previous, following, users)

    def only_users(self, keep: Callable[[str], bool]) -> QueryLog:
        """The same log with only the sessions of the users ``keep(user)`` is true for."""
        sessions = {split: [s for s in v if keep(s.user)] for split, v in self.sessions.items()}
        return QueryLog(sessions, self.stats, dict(self.bounds))

    def summary(self) -> dict:
        out = self.stats.to_dict()
        for split in SPLITS:
            out[f"sessions_{split}"] = len(self.sessions[split])
            out[f"pairs_{split}"] = sum(len(s.queries) - 1 for s in self.sessions[split])
        out.update({f"split_{split}": bound for split, bound in self.bounds.items()})
        return out


def is_new_user(user: str, fraction: float, salt: str = "") -> bool:
    """Is ``user`` one of the new users of the new-users protocol? A stable hash of the salted
    id (BLAKE2b, the same in every process and run) falls below ``fraction`` of its range, so
    about that share of the users are new, and the split never depends on the log's order."""
    digest = hashlib.blake2b(f"{salt}\x00{user}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < fraction * 2.0**64


def without_new_users(log: QueryLog, fraction: float, salt: str = "") -> QueryLog:
    """The log without the new users' sessions (``[log] holdout_new_users``: train on the others)."""
    return log.only_users(lambda user: not is_new_user(user, fraction, salt))


def sessionize(rows: Iterable[Row], params: LogParams, stats: LogStats) -> Iterator[Session]:
    """Cut normalized rows into sessions, per user in order of first appearance.

    A user's rows need not be consecutive in the file (a log sorted by time interleaves users);
    each user's rows are put in time order (stable: equal times keep file order) before cutting.
    """
    normalize = get_normalizer(params.normalization)
    gap = float("inf") if params.format == "lines" else params.session_gap_seconds
    by_user: dict[str, list[tuple[float, str]]] = {}
    first, last = stats.first_time, stats.last_time
    for row in rows:
        query = normalize(row.query)
        if not query or (params.max_query_chars and len(query) > params.max_query_chars):
            stats.empty_after_normalization += 1
            continue
        batch = by_user.get(row.user)
        if batch is None:
            batch = by_user[row.user] = []
        batch.append((row.time, query))
        first, last = min(first, row.time), max(last, row.time)
    stats.first_time, stats.last_time = first, last
    for user, batch in by_user.items():
        yield from _cut(user, batch, gap, stats)


def _cut(user: str, batch: list[tuple[float, str]], gap: float, stats: LogStats) -> Iterator[Session]:
    if not batch:
        return
    batch.sort(key=lambda tq: tq[0])  # stable: equal times keep file order
    start, last_time = batch[0][0], batch[0][0]
    queries: list[str] = []
    times: list[float] = []
    for when, query in batch:
        if when - last_time > gap:
            yield Session(user, start, tuple(queries), tuple(times))
            start, queries, times = when, [], []
        last_time = when
        if queries and queries[-1] == query:
            stats.consecutive_duplicates += 1
            continue
        queries.append(query)
        times.append(when)
    yield Session(user, start, tuple(queries), tuple(times))


def check_params(params: LogParams) -> None:
    """Refuse a ``[log]`` table that cannot work, before the file is opened."""
    if params.format not in FORMATS:
        raise ConfigError(f"log.format must be one of {', '.join(FORMATS)}; got {params.format!r}")
    dates = {split: getattr(params, split) for split in SPLITS}
    if any(dates.values()) and not all(dates.values()):
        unset = [split for split, value in dates.items() if not value]
        raise ConfigError(
            f"[log] sets split dates but not {', '.join(unset)}: set all of train, valid and test "
            f"(two YYYY-MM-DD dates each), or none to split by split_fractions"
        )
    if any(dates.values()) and params.format == "lines":
        raise ConfigError(
            "[log] train/valid/test dates need times, and the lines format has none: "
            "remove them and use split_fractions"
        )
    if any(dates.values()):
        _date_bounds(params)
    fractions = params.split_fractions
    if any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ConfigError(
            f"log.split_fractions must be three non-negative numbers summing to 1, got {fractions}"
        )


def _date_bounds(params: LogParams) -> dict[str, tuple[float, float]]:
    bounds = {}
    for split in SPLITS:
        dates = getattr(params, split)
        try:
            if len(dates) != 2:
                raise ValueError(dates)
            lo = dt.datetime.fromisoformat(dates[0]).replace(tzinfo=dt.UTC)
            hi = dt.datetime.fromisoformat(dates[1]).replace(tzinfo=dt.UTC) + dt.timedelta(days=1)
        except ValueError as exc:
            raise ConfigError(f"log.{split} must be two YYYY-MM-DD dates, got {list(dates)}") from exc
        bounds[split] = (lo.timestamp(), hi.timestamp())
    return bounds


def _fraction_bounds(first: float, last: float, fractions: Sequence[float]) -> dict[str, tuple[float, float]]:
    """The log's span [first, last] cut at the fractions; the last split given a share ends
    after ``last``, so that every session lands in a split."""
    span = last - first
    edges = [first, first + span * fractions[0], first + span * (fractions[0] + fractions[1]), last]
    final = max(i for i, f in enumerate(fractions) if f > 0) if any(fractions) else 2
    edges[final + 1 :] = [last + 1.0] * (3 - final)
    return {split: (edges[i], edges[i + 1]) for i, split in enumerate(SPLITS)}


def read_query_log(
    path: str | Path | Sequence[str | Path],
    params: LogParams,
    progress: bool = False,
    require: Sequence[str] = SPLITS,
) -> QueryLog:
    """Read, normalize, sessionize and split a log (or several logs of one format, read as one:
    the original log and an exported stream, ``autocomplete train --log A --log B``).

    Every split named in ``require`` must hold at least one (previous, next) pair, else a
    :class:`LogFormatError` says why it is empty and what to set (training needs train, the
    benchmark valid and test): the check runs here, before any model work. A valid or test
    split given the fraction 0 is empty by request and not checked.
    """
    check_params(params)
    stats = LogStats()
    sessions: dict[str, list[Session]] = {split: [] for split in SPLITS}
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    if not paths:
        raise LogFormatError("no query log given: pass --log at least once")
    rows = itertools.chain.from_iterable(read_rows(p, params, stats, progress) for p in paths)
    all_sessions = list(sessionize(rows, params, stats))
    path = ", ".join(str(p) for p in paths)
    _check_rows(path, params, stats, all_sessions)
    if params.format == "lines":
        _split_by_position(all_sessions, params, sessions)
        log = QueryLog(
            sessions,
            stats,
            {s: f"fraction {f:g} by position" for s, f in zip(SPLITS, params.split_fractions)},
        )
    else:
        bounds = (
            _date_bounds(params)
            if params.train
            else _fraction_bounds(stats.first_time, stats.last_time, params.split_fractions)
        )
        for session in all_sessions:
            for split, (lo, hi) in bounds.items():
                if lo <= session.start < hi:
                    sessions[split].append(session)
                    break
            else:
                stats.outside_splits += 1
        log = QueryLog(
            sessions,
            stats,
            {split: _describe(lo, hi, bool(params.train)) for split, (lo, hi) in bounds.items()},
        )
    _check_splits(path, params, log, require)
    return log


def _day(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).date().isoformat()


def _moment(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _describe(lo: float, hi: float, dates: bool) -> str:
    if dates:  # inclusive dates: the bound is midnight after the last day
        return f"{_day(lo)}..{_day(hi - 86400)}"
    return f"{_moment(lo)}..{_moment(hi)}"


_HINTS = {
    "bad_time": "set [log] time_format (a strptime format such as '%d/%m/%Y %H:%M') or write the times as "
    "ISO 8601 (2024-05-01T10:00:00Z) or epoch seconds; check [log] time_column",
    "column_count": "check [log] format (tsv splits on tabs only; csv has delimiter and quote)",
    "bad_quoting": "check [log] quote and delimiter",
    "undecodable": "the file must be UTF-8",
    "bad_json": "each line must be one JSON object",
    "missing_field": "every JSON object needs the user, query and time keys named in [log]",
    "bad_query": "the query column must hold text",
}


def _check_rows(path: str | Path, params: LogParams, stats: LogStats, sessions: list[Session]) -> None:
    if any(session.queries for session in sessions):
        return
    if stats.rows == 0:
        raise LogFormatError(
            f"{path} holds no rows (only a header, or nothing): there is nothing to train on"
        )
    rejected = sum(stats.malformed.values())
    if rejected:
        reasons = ", ".join(
            f"{reason} {count} (e.g. {stats.examples.get(reason, '?')}; {_HINTS.get(reason, 'fix the file')})"
            for reason, count in stats.malformed.most_common()
        )
        raise LogFormatError(f"all {stats.rows} rows of {path} were rejected: {reasons}")
    raise LogFormatError(
        f"all {stats.rows} queries of {path} are empty after [log] normalization = "
        f"{params.normalization!r}"
        + (f" or longer than max_query_chars = {params.max_query_chars}" if params.max_query_chars else "")
        + f": check [log] query_column ({params.query_column!r})"
    )


def _check_splits(path: str | Path, params: LogParams, log: QueryLog, require: Sequence[str]) -> None:
    stats = log.stats
    for split in require:
        if split != "train" and not params.train and params.split_fractions[SPLITS.index(split)] == 0:
            continue  # asked for empty: [1, 0, 0] trains on the whole log, eval has nothing to score
        sessions = log.sessions[split]
        if any(len(s.queries) > 1 for s in sessions):
            continue
        if params.format == "lines":
            raise LogFormatError(
                f"{split} ({log.bounds[split]}) holds {'one query' if sessions else 'no queries'} of the "
                f"log's {sum(len(s.queries) for v in log.sessions.values() for s in v)}, so no pair of "
                f"consecutive queries: use a longer log or change [log] split_fractions"
            )
        span = f"the log spans {_day(stats.first_time)}..{_day(stats.last_time)}"
        if not sessions and params.train:
            raise LogFormatError(
                f"{split} {log.bounds[split]} holds no rows; {span}: set [log] train/valid/test "
                f"to dates inside it or remove them to split by split_fractions"
            )
        if not sessions:
            raise LogFormatError(
                f"{split} ({log.bounds[split]}, split_fractions {list(params.split_fractions)}) holds no "
                f"sessions; {span}: the log is too short for three splits, change [log] split_fractions "
                f"or set train/valid/test dates"
            )
        raise LogFormatError(
            f"{split} {log.bounds[split]} holds {len(sessions)} sessions but none with two queries, so no "
            f"(previous, next) pair to learn or test on: check [log] user_column ({params.user_column!r}) "
            f"and session_gap_seconds ({params.session_gap_seconds})"
        )


def _split_by_position(all_sessions: list[Session], params: LogParams, out: dict[str, list[Session]]) -> None:
    """An untimed log is one stream of queries: cut it into train/valid/test by position."""
    queries = [q for s in all_sessions for q in s.queries]
    fractions = params.split_fractions
    n = len(queries)
    cut1 = round(n * fractions[0])
    cut2 = cut1 + round(n * fractions[1])
    for split, (lo, hi) in zip(SPLITS, [(0, cut1), (cut1, cut2), (cut2, n)]):
        if hi - lo >= 1:
            out[split].append(Session("", float(lo), tuple(queries[lo:hi])))
