"""Reading query logs of every ``[log] format`` into one stream of ``(user, query, time)`` rows.

Formats: ``tsv`` (a header row, tab-separated, no quoting: the benchmark logs), ``csv`` (a
header row, ``delimiter`` and ``quote`` configurable), ``jsonl`` (one JSON object per line),
``parquet`` (needs pyarrow, imported only for such a log) and ``lines`` (one query per line, no
users or times). Columns are found by name (``user_column``, ``query_column``, ``time_column``);
a missing one is a :class:`LogFormatError` that names it and lists the columns the file has.

Times are detected per value, without configuration: ISO 8601 date-times (``T`` or a space
between date and time, optional fractional seconds, ``Z`` or a ``+HH:MM`` offset; no offset means
UTC), which includes ``%Y-%m-%d %H:%M:%S``, or epoch seconds or milliseconds (told apart by
magnitude: from 10^11 on, a number is milliseconds). ``time_format`` (a strptime format) replaces
the detection for logs in another notation.

Rows are streamed; a malformed row is counted in ``LogStats.malformed`` by reason (with the first
offending value kept as an example for the error message) and skipped.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import gzip
import io
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
from tqdm import tqdm

from indexer.params import LogFormatError, LogParams

FORMATS = ("tsv", "csv", "jsonl", "parquet", "lines")
EPOCH_MILLISECONDS_FROM = 1e11  # 1e11 s is the year 5138; 1e11 ms is 1973-03-03
_EPOCH = re.compile(r"\d+(\.\d*)?")
_NAIVE_EPOCH = dt.datetime(1970, 1, 1)
_PARQUET_BATCH = 65_536


@dataclasses.dataclass(frozen=True, slots=True)
class Row:
    user: str
    query: str
    time: float


@dataclasses.dataclass
class LogStats:
    """What reading a log met: rows, the malformed ones by reason, what normalization dropped."""

    rows: int = 0
    malformed: Counter = dataclasses.field(default_factory=Counter)
    examples: dict[str, str] = dataclasses.field(default_factory=dict)
    empty_after_normalization: int = 0
    consecutive_duplicates: int = 0
    outside_splits: int = 0
    first_time: float = float("inf")
    last_time: float = float("-inf")

    def reject(self, reason: str, example: object) -> None:
        self.malformed[reason] += 1
        if reason not in self.examples:
            self.examples[reason] = repr(example)[:80]

    def to_dict(self) -> dict:
        return {
            "rows": self.rows,
            "malformed": dict(self.malformed),
            "malformed_total": sum(self.malformed.values()),
            "empty_after_normalization": self.empty_after_normalization,
            "consecutive_duplicates": self.consecutive_duplicates,
            "sessions_outside_splits": self.outside_splits,
        }


# ---------------------------------------------------------------- times


def parse_time(value: object) -> float:
    """Epoch seconds (UTC) of an ISO 8601 date-time or an epoch number; ValueError otherwise."""
    if type(value) is str:  # the common case first: one call per row of a text log
        try:
            return _parse_text(value)
        except ValueError:
            stripped = value.strip()
            if stripped and stripped != value:  # surrounding spaces: rare, so tried second
                return _parse_text(stripped)
            raise
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, (int, float)):
        return _epoch(float(value))
    if isinstance(value, dt.datetime):
        return _utc(value).timestamp()
    raise ValueError(f"not a time: {value!r}")


def _parse_text(text: str) -> float:
    if len(text) >= 16 and text[4] == "-" and text[10] in "Tt ":
        if text[-1] == "z":  # RFC 3339 allows a lower-case Z; fromisoformat does not
            text = text[:-1] + "Z"
        when = dt.datetime.fromisoformat(text)
        if when.tzinfo is None:  # UTC; the same number as when.replace(tzinfo=UTC).timestamp()
            return (when - _NAIVE_EPOCH).total_seconds()
        return when.timestamp()
    if _EPOCH.fullmatch(text):
        return _epoch(float(text))
    raise ValueError(f"not an ISO 8601 date-time or epoch number: {text!r}")


def _epoch(number: float) -> float:
    if not number >= 0 or number == float("inf"):
        raise ValueError(f"not an epoch time: {number!r}")
    return number / 1000.0 if number >= EPOCH_MILLISECONDS_FROM else number


def _utc(when: dt.datetime) -> dt.datetime:
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when


def time_parser(time_format: str):  # type: ignore[no-untyped-def]
    """``parse_time``, or strptime with ``time_format`` (naive results are UTC) when one is set."""
    if not time_format:
        return parse_time

    def parse(value: object) -> float:
        if isinstance(value, dt.datetime):  # a typed column (Parquet timestamps) needs no format
            return _utc(value).timestamp()
        if not isinstance(value, str):
            raise ValueError(f"not a string: {value!r}")
        return _utc(dt.datetime.strptime(value, time_format)).timestamp()

    return parse


# ---------------------------------------------------------------- files


def open_text_lines(path: str | Path) -> Iterator[bytes]:
    """Raw lines of a plain or gzip file (detected by its magic bytes), without line ends."""
    path = Path(path)
    with _open_binary(path) as fh:
        for line in fh:
            yield line.rstrip(b"\r\n")


def _open_binary(path: Path):  # type: ignore[no-untyped-def]
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def _progress(items: Iterable[Any], path: str | Path, enabled: bool) -> Iterable[Any]:
    return tqdm(items, desc=f"reading {Path(path).name}", unit=" rows", unit_scale=True, disable=not enabled)


def read_rows(path: str | Path, params: LogParams, stats: LogStats, progress: bool = False) -> Iterator[Row]:
    """Stream the rows of a log, counting malformed ones in ``stats``."""
    readers = {"tsv": _read_tsv, "csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet}
    if not Path(path).is_file():
        raise LogFormatError(f"query log {path} does not exist or is not a file: check the --log path")
    if params.format == "lines":
        return _read_lines(path, params, stats, progress)
    if params.format not in readers:
        raise LogFormatError(f"log.format must be one of {', '.join(FORMATS)}; got {params.format!r}")
    return readers[params.format](path, params, stats, progress)


def _columns(header: Sequence[str], params: LogParams, path: str | Path) -> list[int]:
    wanted = [("user_column", params.user_column), ("query_column", params.query_column)]
    wanted.append(("time_column", params.time_column))
    missing = [(key, name) for key, name in wanted if name not in header]
    if missing:
        named = ", ".join(f"{name!r} ([log] {key})" for key, name in missing)
        raise LogFormatError(
            f"{path}: no column {named}; the file's columns are {list(header)}. Set [log] "
            f"user_column, query_column and time_column to the names of its user, query and time columns"
        )
    return [list(header).index(name) for _, name in wanted]


def _rows_of(records: Iterable[Sequence[Any]], params: LogParams, stats: LogStats) -> Iterator[Row]:
    """(user, query, time) triples -> rows; a query that is not text or a bad time is a rejection."""
    parse = time_parser(params.time_format)
    for user, query, when in records:
        if not isinstance(query, str):
            stats.reject("bad_query", query)
            continue
        try:
            timestamp = parse(when)
        except (ValueError, OverflowError, OSError):
            stats.reject("bad_time", when)
            continue
        yield Row("" if user is None else str(user), query, timestamp)


def _read_tsv(path: str | Path, params: LogParams, stats: LogStats, progress: bool) -> Iterator[Row]:
    lines = iter(_progress(open_text_lines(path), path, progress))
    try:
        header = next(lines).decode("utf-8").removeprefix("\ufeff").split("\t")
    except StopIteration:
        raise LogFormatError(f"{path} is empty: expected a header row") from None
    except UnicodeDecodeError as exc:
        raise LogFormatError(f"{path}: the header row is not UTF-8 ({exc})") from exc
    cols = _columns(header, params, path)
    width = len(header)

    def records() -> Iterator[tuple[str, str, str]]:
        for raw in lines:
            stats.rows += 1
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                stats.reject("undecodable", raw)
                continue
            fields = line.split("\t")
            if len(fields) != width:
                stats.reject("column_count", line)
                continue
            yield fields[cols[0]], fields[cols[1]], fields[cols[2]]

    return _rows_of(records(), params, stats)


def _read_csv(path: str | Path, params: LogParams, stats: LogStats, progress: bool) -> Iterator[Row]:
    if len(params.delimiter) != 1 or len(params.quote) > 1:
        raise LogFormatError(
            f"log.delimiter must be one character and log.quote one character or empty (no quoting); "
            f"got {params.delimiter!r} and {params.quote!r}"
        )
    text = io.TextIOWrapper(_open_binary(Path(path)), encoding="utf-8", errors="surrogateescape", newline="")
    quoting = {"quotechar": params.quote} if params.quote else {"quoting": csv.QUOTE_NONE}
    reader = csv.reader(text, delimiter=params.delimiter, **quoting)  # type: ignore[call-overload]
    try:
        header = next(reader)
    except StopIteration:
        text.close()
        raise LogFormatError(f"{path} is empty: expected a header row") from None
    if header:
        header[0] = header[0].removeprefix("\ufeff")
    if any(_undecodable(h) for h in header):
        text.close()
        raise LogFormatError(f"{path}: the header row is not UTF-8")
    cols = _columns(header, params, path)
    width = len(header)

    def records() -> Iterator[tuple[str, str, str]]:
        with text:
            for fields in _progress(_tolerant(reader, stats), path, progress):
                if not fields:  # a blank line
                    continue
                stats.rows += 1
                if len(fields) != width:
                    stats.reject("column_count", params.delimiter.join(fields))
                    continue
                user, query, when = fields[cols[0]], fields[cols[1]], fields[cols[2]]
                if _undecodable(user) or _undecodable(query) or _undecodable(when):
                    stats.reject("undecodable", query)
                    continue
                yield user, query, when

    return _rows_of(records(), params, stats)


def _tolerant(reader: Iterator[list[str]], stats: LogStats) -> Iterator[list[str]]:
    """The csv reader's rows; a row it cannot parse (an over-long quoted field) is a rejection."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            stats.rows += 1
            stats.reject("bad_quoting", str(exc))


def _undecodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _read_jsonl(path: str | Path, params: LogParams, stats: LogStats, progress: bool) -> Iterator[Row]:
    keys = (params.user_column, params.query_column, params.time_column)

    def records() -> Iterator[tuple[Any, Any, Any]]:
        checked = False
        for raw in _progress(open_text_lines(path), path, progress):
            if not raw.strip():
                continue
            stats.rows += 1
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError:
                stats.reject("bad_json", raw)
                continue
            if not isinstance(record, dict):
                stats.reject("bad_json", raw)
                continue
            if not checked:  # the first object names the columns, as a header does
                _columns(list(record), params, path)
                checked = True
            if any(key not in record for key in keys):
                stats.reject("missing_field", raw)
                continue
            yield record[keys[0]], record[keys[1]], record[keys[2]]

    return _rows_of(records(), params, stats)


def _read_parquet(path: str | Path, params: LogParams, stats: LogStats, progress: bool) -> Iterator[Row]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise LogFormatError(
            "reading a Parquet log needs pyarrow: pip install pyarrow (or pip install -e '.[logs]')"
        ) from None
    try:
        table = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise LogFormatError(f"{path} is not a readable Parquet file ({exc})") from exc
    schema = table.schema_arrow
    cols = _columns(schema.names, params, path)
    names = [schema.names[c] for c in cols]
    time_type = schema.field(names[2]).type

    def records() -> Iterator[tuple[Any, Any, Any]]:
        for batch in _progress(table.iter_batches(batch_size=_PARQUET_BATCH, columns=names), path, progress):
            users, queries, times = (batch.column(i) for i in range(3))
            if pa.types.is_timestamp(time_type):  # datetimes (naive ones are taken as UTC)
                times = times.cast(pa.timestamp("us", tz=time_type.tz))
            stats.rows += batch.num_rows
            yield from zip(users.to_pylist(), queries.to_pylist(), times.to_pylist())

    return _rows_of(records(), params, stats)


def _read_lines(path: str | Path, params: LogParams, stats: LogStats, progress: bool) -> Iterator[Row]:
    for i, raw in enumerate(_progress(open_text_lines(path), path, progress)):
        if i == 0 and raw.decode("utf-8", "replace") == params.query_column:
            continue
        stats.rows += 1
        try:
            query = raw.decode("utf-8")
        except UnicodeDecodeError:
            stats.reject("undecodable", raw)
            continue
        if "\t" in query:
            stats.reject("column_count", query)
            continue
        yield Row("", query, float(stats.rows))
