import dataclasses
import gzip
import tracemalloc
from collections import Counter

import pytest

from indexer.params import LogParams
from indexer.querylog import read_query_log
from indexer.synthetic import TOPICS, ScaleLogParams, generate_log, generate_scale_rows, write_scale_log


def test_the_same_seed_writes_the_same_log_and_another_seed_another(tmp_path):
    a = generate_log(tmp_path / "a.tsv", n_users=20, seed=3).read_text()
    b = generate_log(tmp_path / "b.tsv", n_users=20, seed=3).read_text()
    c = generate_log(tmp_path / "c.tsv", n_users=20, seed=4).read_text()
    assert a == b and a != c


def test_a_gz_suffix_writes_gzip_that_reads_like_the_plain_file(tmp_path):
    plain = read_query_log(generate_log(tmp_path / "a.tsv", n_users=20, seed=3), LogParams())
    packed = read_query_log(generate_log(tmp_path / "a.tsv.gz", n_users=20, seed=3), LogParams())
    assert packed.sessions == plain.sessions


def test_the_log_reads_cleanly_into_every_split_with_refinements(tmp_path):
    log = read_query_log(generate_log(tmp_path / "s.tsv", n_users=60, seed=1), LogParams())
    assert sum(log.stats.malformed.values()) == 0
    assert all(len(log.pairs(split)) > 0 for split in ("train", "valid", "test"))
    pairs = log.pairs("train")
    refinements = sum(nxt.startswith(prev + " ") for prev, nxt in zip(pairs.previous, pairs.next))
    assert refinements > len(pairs) * 0.1


def test_topics_share_prefixes_so_the_previous_query_decides_the_completion(tmp_path):
    log = read_query_log(generate_log(tmp_path / "s.tsv", n_users=300, seed=1), LogParams())
    pairs = log.pairs("train")
    gardening, music = set(TOPICS["gardening"][0]), set(TOPICS["music"][0])
    after_gardening = [n for p, n in zip(pairs.previous, pairs.next) if p in gardening and n.startswith("ro")]
    after_music = [n for p, n in zip(pairs.previous, pairs.next) if p in music and n.startswith("ro")]
    assert after_gardening and after_music
    assert sum(n.startswith("ros") for n in after_gardening) > len(after_gardening) / 2
    assert sum(n.startswith(("rock", "roll", "rose royce")) for n in after_music) > len(after_music) / 2


def test_a_scale_log_is_seeded_and_reads_as_sessions_of_refinements(tmp_path):
    params = ScaleLogParams(sessions=3000, queries=200_000, seed=5)
    a = tmp_path / "a.tsv.gz"
    assert write_scale_log(a, params)["sessions"] == 3000
    b = write_scale_log(tmp_path / "b.tsv", params)
    write_scale_log(tmp_path / "c.tsv", dataclasses.replace(params, seed=6))
    assert gzip.open(a, "rt").read() == (tmp_path / "b.tsv").read_text() != (tmp_path / "c.tsv").read_text()
    assert b["rows"] > 2 * 3000
    log = read_query_log(a, LogParams())
    assert sum(log.stats.malformed.values()) == 0 and log.stats.empty_after_normalization == 0
    assert all(len(log.pairs(split)) > 0 for split in ("train", "valid", "test"))
    pairs = log.pairs("train")
    refinements = sum(nxt.startswith(prev + " ") for prev, nxt in zip(pairs.previous, pairs.next))
    assert refinements > len(pairs) * 0.2


def test_scale_popularity_is_zipf_like_over_many_distinct_queries_of_shared_words():
    rows = list(generate_scale_rows(ScaleLogParams(sessions=20_000, queries=2_000_000, seed=1)))
    counts = Counter(query for _, query, _ in rows)
    assert len(counts) > 0.4 * len(rows)  # most queries are rare: a long tail of distinct ones
    ranked = [n for _, n in counts.most_common()]
    assert ranked[0] > 50 * ranked[len(ranked) // 2]  # a few very popular heads
    words = Counter(word for query in counts for word in query.split())
    shared = sum(n for n in words.values() if n >= 2)
    assert shared > 0.8 * sum(words.values())  # most words of a query are in other queries too


def test_scale_rows_stream_in_bounded_memory():
    params = ScaleLogParams(sessions=60_000, queries=5_000_000, seed=2)
    tracemalloc.start()
    n = sum(1 for _ in generate_scale_rows(params))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n > 100_000 and peak < 200e6  # the text cache is bounded; no row is kept


def test_bad_scale_parameters_name_the_field():
    with pytest.raises(ValueError, match="sessions"):
        next(generate_scale_rows(ScaleLogParams(sessions=0)))
