"""Query logs -> sessions -> splits -> (previous query, next query) pairs.

Implements the benchmark protocol of ``shared/data/README.md`` exactly: normalize and drop empty
queries; per user in time order, a new session when the gap to the user's previous query exceeds
the session gap; consecutive duplicates dropped inside a session; splits by session start date;
pairs of consecutive queries inside a session.

Rows are streamed: memory holds the sessions, never the raw file. Malformed rows (wrong column
count, unreadable time, undecodable bytes) are counted by reason and skipped.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from tqdm import tqdm

from indexer.errors import LogFormatError
from indexer.normalize import get_normalizer
from indexer.params import ConfigError, LogParams

SPLITS = ("train", "valid", "test")


@dataclasses.dataclass(frozen=True, slots=True)
class Row:
    user: str
    query: str
    time: float


@dataclasses.dataclass(frozen=True, slots=True)
class Session:
    user: str
    start: float
    queries: tuple[str, ...]


@dataclasses.dataclass
class LogStats:
    rows: int = 0
    malformed: Counter = dataclasses.field(default_factory=Counter)
    empty_after_normalization: int = 0
    consecutive_duplicates: int = 0
    outside_splits: int = 0

    def to_dict(self) -> dict:
        return {
            "rows": self.rows,
            "malformed": dict(self.malformed),
            "malformed_total": sum(self.malformed.values()),
            "empty_after_normalization": self.empty_after_normalization,
            "consecutive_duplicates": self.consecutive_duplicates,
            "sessions_outside_splits": self.outside_splits,
        }


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
    """A log cut into sessions per split."""

    sessions: dict[str, list[Session]]
    stats: LogStats

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

    def summary(self) -> dict:
        out = self.stats.to_dict()
        for split in SPLITS:
            out[f"sessions_{split}"] = len(self.sessions[split])
            out[f"pairs_{split}"] = sum(len(s.queries) - 1 for s in self.sessions[split])
        return out


def open_text_lines(path: str | Path) -> Iterator[bytes]:
    """Raw lines of a plain or gzip file (detected by its magic bytes), without line ends."""
    path = Path(path)
    if not path.is_file():
        raise LogFormatError(f"query log {path} does not exist or is not a file: check the --log path")
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    with gzip.open(path, "rb") if gzipped else open(path, "rb") as fh:
        for line in fh:
            yield line.rstrip(b"\r\n")


def read_rows(path: str | Path, params: LogParams, stats: LogStats, progress: bool = False) -> Iterator[Row]:
    """Stream the rows of a log, counting malformed ones in ``stats``."""
    if params.format == "lines":
        yield from _read_lines(path, params, stats, progress)
    elif params.format == "tsv":
        yield from _read_tsv(path, params, stats, progress)
    else:
        raise ConfigError(f"log.format must be 'tsv' or 'lines', got {params.format!r}")


def _progress(lines: Iterable[bytes], path: str | Path, enabled: bool) -> Iterable[bytes]:
    return tqdm(lines, desc=f"reading {Path(path).name}", unit=" rows", unit_scale=True, disable=not enabled)


def _read_tsv(path: str | Path, params: LogParams, stats: LogStats, progress: bool) -> Iterator[Row]:
    lines = iter(_progress(open_text_lines(path), path, progress))
    try:
        header = next(lines).decode("utf-8").split("\t")
    except StopIteration:
        raise LogFormatError(f"{path} is empty: expected a header row") from None
    except UnicodeDecodeError as exc:
        raise LogFormatError(f"{path}: the header row is not UTF-8 ({exc})") from exc
    try:
        cols = [
            header.index(params.user_column),
            header.index(params.query_column),
            header.index(params.time_column),
        ]
    except ValueError:
        raise LogFormatError(
            f"{path}: header {header} lacks one of the columns {params.user_column!r}, "
            f"{params.query_column!r}, {params.time_column!r} (set them in the [log] config)"
        ) from None
    width = len(header)
    parse_time = _time_parser(params.time_format)
    for raw in lines:
        stats.rows += 1
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            stats.malformed["undecodable"] += 1
            continue
        fields = line.split("\t")
        if len(fields) != width:
            stats.malformed["column_count"] += 1
            continue
        user, query, when = (fields[c] for c in cols)
        try:
            timestamp = parse_time(when).replace(tzinfo=dt.UTC).timestamp()
        except ValueError:
            stats.malformed["bad_time"] += 1
            continue
        yield Row(user, query, timestamp)


def _time_parser(time_format: str):  # type: ignore[no-untyped-def]
    """strptime, or the much faster ISO parser when the format is the ISO one."""
    if time_format == "%Y-%m-%d %H:%M:%S":
        return _parse_iso_seconds
    return lambda text: dt.datetime.strptime(text, time_format)


def _parse_iso_seconds(text: str) -> dt.datetime:
    if len(text) != 19 or text[10] != " ":
        raise ValueError(f"not YYYY-MM-DD HH:MM:SS: {text!r}")
    return dt.datetime.fromisoformat(text)


def _read_lines(path: str | Path, params: LogParams, stats: LogStats, progress: bool) -> Iterator[Row]:
    for i, raw in enumerate(_progress(open_text_lines(path), path, progress)):
        if i == 0 and raw.decode("utf-8", "replace") == params.query_column:
            continue
        stats.rows += 1
        try:
            query = raw.decode("utf-8")
        except UnicodeDecodeError:
            stats.malformed["undecodable"] += 1
            continue
        if "\t" in query:
            stats.malformed["column_count"] += 1
            continue
        yield Row("", query, float(stats.rows))


def sessionize(rows: Iterable[Row], params: LogParams, stats: LogStats) -> Iterator[Session]:
    """Cut normalized rows into sessions (rows of one user are consecutive, as in the logs)."""
    normalize = get_normalizer(params.normalization)
    gap = params.session_gap_seconds if params.format == "tsv" else float("inf")
    user: str | None = None
    batch: list[tuple[float, str]] = []
    for row in rows:
        query = normalize(row.query)
        if not query or (params.max_query_chars and len(query) > params.max_query_chars):
            stats.empty_after_normalization += 1
            continue
        if row.user != user:
            yield from _cut(user or "", batch, gap, stats)
            user, batch = row.user, []
        batch.append((row.time, query))
    yield from _cut(user or "", batch, gap, stats)


def _cut(user: str, batch: list[tuple[float, str]], gap: float, stats: LogStats) -> Iterator[Session]:
    if not batch:
        return
    batch.sort(key=lambda tq: tq[0])  # stable: equal times keep file order
    start, last_time = batch[0][0], batch[0][0]
    queries: list[str] = []
    for when, query in batch:
        if when - last_time > gap:
            yield Session(user, start, tuple(queries))
            start, queries = when, []
        last_time = when
        if queries and queries[-1] == query:
            stats.consecutive_duplicates += 1
            continue
        queries.append(query)
    yield Session(user, start, tuple(queries))


def _date_bounds(params: LogParams) -> dict[str, tuple[float, float]]:
    bounds = {}
    for split in SPLITS:
        first, last = getattr(params, split)
        try:
            lo = dt.datetime.fromisoformat(first).replace(tzinfo=dt.UTC)
            hi = dt.datetime.fromisoformat(last).replace(tzinfo=dt.UTC) + dt.timedelta(days=1)
        except ValueError as exc:
            raise ConfigError(f"log.{split} must be two YYYY-MM-DD dates, got {[first, last]}") from exc
        bounds[split] = (lo.timestamp(), hi.timestamp())
    return bounds


def read_query_log(path: str | Path, params: LogParams, progress: bool = False) -> QueryLog:
    """Read, normalize, sessionize and split a log."""
    stats = LogStats()
    sessions: dict[str, list[Session]] = {split: [] for split in SPLITS}
    all_sessions = sessionize(read_rows(path, params, stats, progress), params, stats)
    if params.format == "lines":
        _split_by_position(list(all_sessions), params, sessions)
        return QueryLog(sessions, stats)
    bounds = _date_bounds(params)
    for session in all_sessions:
        for split, (lo, hi) in bounds.items():
            if lo <= session.start < hi:
                sessions[split].append(session)
                break
        else:
            stats.outside_splits += 1
    return QueryLog(sessions, stats)


def _split_by_position(all_sessions: list[Session], params: LogParams, out: dict[str, list[Session]]) -> None:
    """An untimed log is one stream of queries: cut it into train/valid/test by position."""
    queries = [q for s in all_sessions for q in s.queries]
    fractions = params.untimed_fractions
    if any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ConfigError(
            f"log.untimed_fractions must be three non-negative numbers summing to 1, got {fractions}"
        )
    n = len(queries)
    cut1 = round(n * fractions[0])
    cut2 = cut1 + round(n * fractions[1])
    for split, (lo, hi) in zip(SPLITS, [(0, cut1), (cut1, cut2), (cut2, n)]):
        if hi - lo >= 1:
            out[split].append(Session("", float(lo), tuple(queries[lo:hi])))
