import dataclasses
import gzip
from pathlib import Path

import pytest

from indexer.params import ConfigError, LogParams
from indexer.querylog import LogFormatError, read_query_log

HEADER = "AnonID\tQuery\tQueryTime\n"
# The benchmark's split dates (configs/aol.toml); small logs here fill only some splits.
AOL = LogParams(
    train=("2006-03-01", "2006-05-15"), valid=("2006-05-16", "2006-05-23"), test=("2006-05-24", "2006-05-31")
)


def write(tmp_path: Path, rows: list[str], name: str = "log.tsv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def queries(log, split="train"):
    return [s.queries for s in log.sessions[split]]


def test_a_gap_of_exactly_1800_seconds_stays_in_the_session_and_1801_cuts_it(tmp_path):
    path = write(
        tmp_path,
        [
            "1\talpha\t2006-03-02 10:00:00",
            "1\tbeta\t2006-03-02 10:30:00",  # +1800 s: same session
            "1\tgamma\t2006-03-02 11:00:01",  # +1801 s: new session
            "1\tdelta\t2006-03-02 11:01:00",
        ],
    )
    log = read_query_log(path, AOL, require=())
    assert queries(log) == [("alpha", "beta"), ("gamma", "delta")]
    pairs = log.pairs("train")
    assert list(zip(pairs.previous, pairs.next)) == [("alpha", "beta"), ("gamma", "delta")]


def test_consecutive_duplicates_are_dropped_after_normalization(tmp_path):
    path = write(
        tmp_path,
        [
            "1\tRose Bush\t2006-03-02 10:00:00",
            "1\trose  bush!\t2006-03-02 10:01:00",
            "1\troses\t2006-03-02 10:02:00",
            "1\trose bush\t2006-03-02 10:03:00",
        ],
    )
    log = read_query_log(path, AOL, require=())
    assert queries(log) == [("rose bush", "roses", "rose bush")]
    assert log.stats.consecutive_duplicates == 1


def test_sessions_go_to_splits_by_their_start_date(tmp_path):
    path = write(
        tmp_path,
        [
            "1\ta\t2006-05-15 23:50:00",  # starts in train, runs past midnight: stays train
            "1\tb\t2006-05-16 00:10:00",
            "2\tc\t2006-05-16 00:00:00",  # valid
            "2\td\t2006-05-16 00:01:00",
            "3\te\t2006-05-31 23:59:59",  # test, last second
            "3\tf\t2006-06-01 00:00:01",
            "4\tg\t2006-06-01 00:00:00",  # after every split
            "5\th\t2006-02-28 23:59:59",  # before every split
        ],
    )
    log = read_query_log(path, AOL, require=())
    assert queries(log, "train") == [("a", "b")]
    assert queries(log, "valid") == [("c", "d")]
    assert queries(log, "test") == [("e", "f")]
    assert log.stats.outside_splits == 2


def test_malformed_rows_are_counted_and_skipped_without_touching_good_rows(tmp_path):
    path = tmp_path / "bad.tsv.gz"
    body = (
        (
            HEADER + "1\tgood one\t2006-03-02 10:00:00\n"
            "1\ttoo\tmany\tcolumns\n"
            "1\tbad time\t2006-13-45 10:00:00\n"
            "1\tno time\t2006-03-02\n"
        ).encode()
        + b"1\t\xff\xfe broken\t2006-03-02 10:02:00\n"
        + b"1\tgood two\t2006-03-02 10:03:00\n"
    )
    path.write_bytes(gzip.compress(body))
    log = read_query_log(path, AOL, require=())
    assert queries(log) == [("good one", "good two")]
    assert log.stats.rows == 6
    assert dict(log.stats.malformed) == {"column_count": 1, "bad_time": 2, "undecodable": 1}


def test_queries_that_normalize_to_nothing_are_dropped(tmp_path):
    path = write(
        tmp_path, ["1\t...\t2006-03-02 10:00:00", "1\tx\t2006-03-02 10:01:00", "1\ty\t2006-03-02 10:02:00"]
    )
    log = read_query_log(path, AOL, require=())
    assert queries(log) == [("x", "y")]
    assert log.stats.empty_after_normalization == 1


def test_a_header_without_the_configured_columns_says_which_are_needed(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_text("user\tq\twhen\n1\ta\t2006-03-02 10:00:00\n")
    with pytest.raises(LogFormatError, match="AnonID"):
        read_query_log(path, AOL, require=())
    params = dataclasses.replace(AOL, user_column="user", query_column="q", time_column="when")
    log = read_query_log(path, params, require=())
    assert queries(log) == [("a",)]


def test_custom_time_formats_are_parsed(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_text(HEADER + "1\ta\t02/03/2006 10:00\n1\tb\t02/03/2006 10:20\n")
    log = read_query_log(path, dataclasses.replace(AOL, time_format="%d/%m/%Y %H:%M"), require=())
    assert queries(log) == [("a", "b")]


def test_one_query_per_line_logs_are_split_by_position(tmp_path):
    path = tmp_path / "q.txt"
    lines = ["Query"] + [f"q{i % 7}" for i in range(100)]
    path.write_text("\n".join(lines) + "\n")
    log = read_query_log(path, LogParams(format="lines", split_fractions=(0.8, 0.1, 0.1)))
    sizes = [sum(len(s.queries) for s in log.sessions[split]) for split in ("train", "valid", "test")]
    assert sizes == [80, 10, 10]
    assert log.pairs("train").next[:3] == ["q1", "q2", "q3"]


# ---------------------------------------------------------------- formats

CSV = LogParams(format="csv", user_column="user_id", query_column="query", time_column="timestamp")
EXPECTED = [("rock band", "rock band lyrics"), ("rose bush", "rose bush pruning")]  # sorted


def session_queries(log):
    return sorted(s.queries for split in ("train", "valid", "test") for s in log.sessions[split])


def test_csv_reads_quoted_fields_with_delimiters_quotes_and_line_breaks(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(
        "user_id,query,timestamp\n"
        'u1,"rose bush",2024-05-01T10:00:00Z\n'
        'u1,"rose bush, pruning",2024-05-01T10:01:00Z\n'
        'u2,"say ""hello""\nworld",2024-05-01T10:00:00Z\n'
        "u2,hello world,2024-05-01T10:02:00Z\n",
        encoding="utf-8",
    )
    log = read_query_log(path, dataclasses.replace(CSV, normalization="unicode"), require=())
    assert session_queries(log) == [("rose bush", "rose bush, pruning"), ('say "hello" world', "hello world")]
    assert log.stats.rows == 4 and not log.stats.malformed


def test_csv_delimiter_and_quote_are_configurable_and_a_bom_is_ignored(tmp_path):
    path = tmp_path / "log.csv"
    path.write_bytes(
        "\ufeffuser_id;query;timestamp\n"
        "u1;'rose; bush';2024-05-01 10:00:00\nu1;rose bush pruning;2024-05-01 10:01:00\n"
        "u2;rock band;2024-05-01 10:00:00\nu2;rock band lyrics;2024-05-01 10:05:00\n".encode()
    )
    log = read_query_log(path, dataclasses.replace(CSV, delimiter=";", quote="'"), require=())
    assert session_queries(log) == EXPECTED
    no_quoting = read_query_log(path, dataclasses.replace(CSV, delimiter=";", quote=""), require=())
    assert no_quoting.stats.malformed == {"column_count": 1}


def test_jsonl_objects_are_read_by_key_and_bad_lines_counted(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text(
        '{"user_id": 1, "query": "rose bush", "timestamp": "2024-05-01T10:00:00Z", "extra": true}\n'
        '{"user_id": 1, "query": "rose bush pruning", "timestamp": 1714557660}\n'
        "\n"
        '{"user_id": 2, "query": "rock band", "timestamp": 1714557600000}\n'
        '{"user_id": 2, "query": "rock band lyrics", "timestamp": "2024-05-01T12:05:00+02:00"}\n'
        "not json\n"
        '["a", "list"]\n'
        '{"user_id": 3, "query": "no time"}\n'
        '{"user_id": 3, "query": 17, "timestamp": 1714557600}\n'
    )
    log = read_query_log(path, dataclasses.replace(CSV, format="jsonl"), require=())
    assert session_queries(log) == EXPECTED
    assert log.stats.malformed == {"bad_json": 2, "missing_field": 1, "bad_query": 1}


def test_parquet_logs_read_strings_epochs_and_timestamp_columns(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    import datetime as dt

    times = [dt.datetime(2024, 5, 1, 10, m, tzinfo=dt.UTC) for m in (0, 1, 0, 5)]
    table = pa.table(
        {
            "user_id": ["u1", "u1", "u2", "u2"],
            "query": ["rose bush", "rose bush pruning", "rock band", "rock band lyrics"],
            "timestamp": pa.array(times, pa.timestamp("ms", tz="UTC")),
            "clicked": [1, 0, 0, 1],
        }
    )
    pq.write_table(table, tmp_path / "typed.parquet")
    log = read_query_log(tmp_path / "typed.parquet", dataclasses.replace(CSV, format="parquet"), require=())
    assert session_queries(log) == EXPECTED
    assert log.sessions["train"][0].start == times[0].timestamp()
    as_text = table.set_column(2, "timestamp", pa.array([t.isoformat() for t in times]))
    pq.write_table(as_text, tmp_path / "text.parquet")
    log = read_query_log(tmp_path / "text.parquet", dataclasses.replace(CSV, format="parquet"), require=())
    assert session_queries(log) == EXPECTED


def test_a_parquet_log_without_pyarrow_says_what_to_install(tmp_path, monkeypatch):
    path = tmp_path / "log.parquet"
    path.write_bytes(b"PAR1")
    monkeypatch.setitem(__import__("sys").modules, "pyarrow", None)
    with pytest.raises(LogFormatError, match="pip install pyarrow"):
        read_query_log(path, dataclasses.replace(CSV, format="parquet"))


@pytest.mark.parametrize(
    "written",
    [
        "2024-05-01T10:00:00Z",
        "2024-05-01T10:00:00",
        "2024-05-01 10:00:00",
        "2024-05-01T12:00:00+02:00",
        "2024-05-01T05:30:00-04:30",
        "2024-05-01T10:00:00.000Z",
        "2024-05-01t10:00:00z",
        "1714557600",
        "1714557600.0",
        "1714557600000",
        " 2024-05-01T10:00:00Z ",
        " 1714557600",
    ],
)
def test_timestamps_are_detected_without_configuration(tmp_path, written):
    path = tmp_path / "log.csv"
    path.write_text(f"user_id,query,timestamp\nu1,rose bush,{written}\nu1,rose bush pruning,1714557630\n")
    log = read_query_log(path, CSV, require=())
    (session,) = log.sessions["train"]
    assert session.start == 1714557600.0  # 2024-05-01T10:00:00Z
    assert session.queries == ("rose bush", "rose bush pruning")  # 30 s later: one session


def test_fractional_seconds_are_kept(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,query,timestamp\nu1,a,2024-05-01T10:00:00.250Z\nu1,b,2024-05-01T10:00:01Z\n")
    assert read_query_log(path, CSV, require=()).sessions["train"][0].start == 1714557600.25


def test_a_log_sorted_by_time_sessionizes_like_one_grouped_by_user(tmp_path):
    rows = [
        ("u1", "rose bush", "2024-05-01T10:00:00Z"),
        ("u2", "rock band", "2024-05-01T10:00:10Z"),
        ("u1", "rose bush pruning", "2024-05-01T10:01:00Z"),
        ("u2", "rock band lyrics", "2024-05-01T10:02:00Z"),
        ("u1", "roses", "2024-05-01T12:00:00Z"),  # after a 2 h gap: a new session
        ("u1", "roses climbing", "2024-05-01T12:01:00Z"),
    ]
    by_time = tmp_path / "by_time.csv"
    by_user = tmp_path / "by_user.csv"
    by_time.write_text("user_id,query,timestamp\n" + "".join(",".join(r) + "\n" for r in rows))
    by_user.write_text("user_id,query,timestamp\n" + "".join(",".join(r) + "\n" for r in sorted(rows)))
    a, b = read_query_log(by_time, CSV, require=()), read_query_log(by_user, CSV, require=())
    assert session_queries(a) == session_queries(b)
    assert session_queries(a) == [*EXPECTED, ("roses", "roses climbing")]


# ---------------------------------------------------------------- splits


def daily_log(tmp_path, days: int, start: str = "2024-05-01") -> Path:
    """One two-query session per user per day, one user a day."""
    import datetime as dt

    first = dt.date.fromisoformat(start)
    lines = ["user_id,query,timestamp"]
    for d in range(days):
        day = first + dt.timedelta(days=d)
        lines += [f"u{d},query {d},{day}T10:00:00Z", f"u{d},query {d} more,{day}T10:01:00Z"]
    path = tmp_path / "daily.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_without_dates_the_log_s_own_time_span_is_cut_by_split_fractions(tmp_path):
    log = read_query_log(daily_log(tmp_path, 61), CSV)  # 2024-05-01 .. 2024-06-30, one session a day
    sizes = {split: len(log.sessions[split]) for split in ("train", "valid", "test")}
    # the span is 60 days and a minute: cuts 48 and 54 days (and a few seconds) after the first query
    assert sizes == {"train": 49, "valid": 6, "test": 6}
    assert log.summary()["split_train"].startswith("2024-05-01 10:00:00..2024-06-18")
    halves = read_query_log(
        daily_log(tmp_path, 61), dataclasses.replace(CSV, split_fractions=(0.5, 0.25, 0.25))
    )
    assert [len(halves.sessions[s]) for s in ("train", "valid", "test")] == [31, 15, 15]


def test_an_empty_split_names_its_dates_the_log_s_span_and_the_fix(tmp_path):
    path = daily_log(tmp_path, 61)
    with pytest.raises(LogFormatError) as caught:
        read_query_log(
            path,
            dataclasses.replace(
                AOL, **{k: getattr(CSV, k) for k in ("format", "user_column", "query_column", "time_column")}
            ),
        )
    assert str(caught.value) == (
        "train 2006-03-01..2006-05-15 holds no rows; the log spans 2024-05-01..2024-06-30: set [log] "
        "train/valid/test to dates inside it or remove them to split by split_fractions"
    )


def test_a_log_too_short_for_three_splits_says_so(tmp_path):
    with pytest.raises(
        LogFormatError, match=r"valid .* holds no sessions; the log spans 2024-05-01..2024-05-02"
    ):
        read_query_log(daily_log(tmp_path, 2), CSV)


def test_a_split_of_single_query_sessions_names_the_session_settings(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(
        "user_id,query,timestamp\n" + "".join(f"u{i},q{i},2024-05-0{i}T10:00:00Z\n" for i in range(1, 10))
    )
    with pytest.raises(
        LogFormatError, match=r"train .* holds 7 sessions but none with two queries.*user_column"
    ):
        read_query_log(path, CSV)


def test_every_row_rejected_gives_the_reason_counts_an_example_and_the_fix(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,query,timestamp\nu1,a,01.05.2024 10:00\nu1,b,01.05.2024 10:01\nu1,c\n")
    with pytest.raises(LogFormatError) as caught:
        read_query_log(path, CSV)
    message = str(caught.value)
    assert message.startswith("all 3 rows of ")
    assert "bad_time 2 (e.g. '01.05.2024 10:00'; set [log] time_format" in message
    assert "column_count 1" in message
    fixed = dataclasses.replace(CSV, time_format="%d.%m.%Y %H:%M")
    assert read_query_log(path, fixed, require=()).sessions["train"][0].queries == ("a", "b")


def test_a_missing_column_is_named_with_the_columns_the_file_has(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user,query,timestamp\nu1,a,2024-05-01T10:00:00Z\n")
    with pytest.raises(
        LogFormatError,
        match=r"no column 'user_id' \(\[log\] user_column\); the file's columns are "
        r"\['user', 'query', 'timestamp'\]",
    ):
        read_query_log(path, CSV)
    jsonl = tmp_path / "log.jsonl"
    jsonl.write_text('{"user_id": 1, "q": "a", "timestamp": 1}\n')
    with pytest.raises(LogFormatError, match=r"no column 'query' \(\[log\] query_column\)"):
        read_query_log(jsonl, dataclasses.replace(CSV, format="jsonl"))


def test_a_log_of_only_a_header_or_only_empty_queries_is_refused(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,query,timestamp\n")
    with pytest.raises(LogFormatError, match="holds no rows"):
        read_query_log(path, CSV)
    path.write_text("user_id,query,timestamp\nu1,...,2024-05-01T10:00:00Z\n")
    with pytest.raises(LogFormatError, match="empty after \\[log\\] normalization = 'aol'.*query_column"):
        read_query_log(path, CSV)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"format": "xlsx"}, "log.format must be one of tsv, csv, jsonl, parquet, lines"),
        ({"train": ("2024-05-01", "2024-05-20")}, "sets split dates but not valid, test"),
        ({"split_fractions": (0.8, 0.3, 0.1)}, "summing to 1"),
        (
            {"train": ("2024-05-01",), "valid": ("a", "b"), "test": ("a", "b")},
            "log.train must be two YYYY-MM-DD",
        ),
    ],
)
def test_a_log_table_that_cannot_work_is_refused_before_reading(tmp_path, changes, message):
    with pytest.raises(ConfigError, match=message):
        read_query_log(tmp_path / "never-opened.csv", dataclasses.replace(CSV, **changes))


def test_dates_on_a_log_without_times_are_refused(tmp_path):
    params = dataclasses.replace(AOL, format="lines")
    with pytest.raises(ConfigError, match="the lines format has none"):
        read_query_log(tmp_path / "q.txt", params)


def test_the_config_saved_in_an_older_model_folder_still_loads():
    from indexer.config import train_config_from_mapping

    saved = {
        "log": {
            "format": "lines",
            "untimed_fractions": [0.98, 0.01, 0.01],
            "time_format": "%Y-%m-%d %H:%M:%S",
        }
    }
    assert train_config_from_mapping(saved).log.split_fractions == (0.98, 0.01, 0.01)


def test_a_zero_fraction_leaves_that_split_empty_on_purpose(tmp_path):
    path = daily_log(tmp_path, 10)
    with open(path, "a") as fh:
        fh.write("late,a last query,2024-05-10T12:00:00Z\n")  # a session starting at the log's last instant
    log = read_query_log(path, dataclasses.replace(CSV, split_fractions=(1.0, 0.0, 0.0)))
    assert [len(log.sessions[s]) for s in ("train", "valid", "test")] == [11, 0, 0]
    with pytest.raises(LogFormatError, match="train .* holds no sessions"):
        read_query_log(daily_log(tmp_path, 10), dataclasses.replace(CSV, split_fractions=(0.0, 0.5, 0.5)))
