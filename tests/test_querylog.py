import gzip
from pathlib import Path

import pytest

from indexer.params import LogParams
from indexer.querylog import LogFormatError, read_query_log

HEADER = "AnonID\tQuery\tQueryTime\n"


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
    log = read_query_log(path, LogParams())
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
    log = read_query_log(path, LogParams())
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
    log = read_query_log(path, LogParams())
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
    log = read_query_log(path, LogParams())
    assert queries(log) == [("good one", "good two")]
    assert log.stats.rows == 6
    assert dict(log.stats.malformed) == {"column_count": 1, "bad_time": 2, "undecodable": 1}


def test_queries_that_normalize_to_nothing_are_dropped(tmp_path):
    path = write(
        tmp_path, ["1\t...\t2006-03-02 10:00:00", "1\tx\t2006-03-02 10:01:00", "1\ty\t2006-03-02 10:02:00"]
    )
    log = read_query_log(path, LogParams())
    assert queries(log) == [("x", "y")]
    assert log.stats.empty_after_normalization == 1


def test_a_header_without_the_configured_columns_says_which_are_needed(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_text("user\tq\twhen\n1\ta\t2006-03-02 10:00:00\n")
    with pytest.raises(LogFormatError, match="AnonID"):
        read_query_log(path, LogParams())
    log = read_query_log(path, LogParams(user_column="user", query_column="q", time_column="when"))
    assert queries(log) == [("a",)]


def test_custom_time_formats_are_parsed(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_text(HEADER + "1\ta\t02/03/2006 10:00\n1\tb\t02/03/2006 10:20\n")
    log = read_query_log(path, LogParams(time_format="%d/%m/%Y %H:%M"))
    assert queries(log) == [("a", "b")]


def test_one_query_per_line_logs_are_split_by_position(tmp_path):
    path = tmp_path / "q.txt"
    lines = ["Query"] + [f"q{i % 7}" for i in range(100)]
    path.write_text("\n".join(lines) + "\n")
    log = read_query_log(path, LogParams(format="lines", untimed_fractions=(0.8, 0.1, 0.1)))
    sizes = [sum(len(s.queries) for s in log.sessions[split]) for split in ("train", "valid", "test")]
    assert sizes == [80, 10, 10]
    assert log.pairs("train").next[:3] == ["q1", "q2", "q3"]
