from pathlib import Path

import numpy as np

from indexer.config import load_train_config
from indexer.cooccurrence import PairCounts
from indexer.language import WordLanguageModel
from indexer.params import RankerParams
from indexer.pipeline import fit_beside, prepare, ranker_stream_examples, split_late
from indexer.querylog import QueryLog, Session, read_query_log
from indexer.wordlinks import WordLinks

ROOT = Path(__file__).resolve().parent.parent


def log_of(sessions):
    return QueryLog({"train": sessions, "valid": [], "test": []}, None)


def test_the_late_slice_is_the_last_sessions_by_start_time():
    sessions = [Session("u", float(t), ("a", "b", "c")) for t in (5, 1, 9, 3, 7)]
    early, late = split_late(log_of(sessions), 0.2)
    assert [s.start for s in late] == [9.0]
    assert sorted(s.start for s in early.sessions["train"]) == [1.0, 3.0, 5.0, 7.0]


def test_a_single_long_session_is_cut_at_the_share_of_its_pairs():
    early, late = split_late(log_of([Session("u", 0.0, tuple("abcdefghijk"))]), 0.2)
    assert early.sessions["train"][0].queries == tuple("abcdefghi")  # 8 of the 10 pairs
    assert late[0].queries == ("i", "j", "k")  # the 2 last pairs, the cut query shared


def test_a_cut_session_keeps_each_querys_time_on_both_sides():
    session = Session("u", 0.0, tuple("abcdefghijk"), tuple(float(10 * i) for i in range(11)))
    early, late = split_late(log_of([session]), 0.2)
    assert early.sessions["train"][0].times == tuple(float(10 * i) for i in range(9))
    assert late[0].times == (80.0, 90.0, 100.0) and late[0].time_of(0) == 80.0


class RecordingRows:
    """A chain stub that remembers what it was asked and submitted, in order."""

    def __init__(self):
        self.events = []

    def __call__(self, previous, prefix, history=None):
        self.events.append(("ask", prefix))
        return ["x", prefix], np.zeros((2, 3), dtype=np.float32)

    def submit(self, query, session, when):
        self.events.append(("submit", query, when))


def test_the_stream_examples_ask_each_pair_before_its_query_is_submitted_in_time_order():
    sessions = [
        Session("u1", 0.0, ("aa", "bb"), (0.0, 30.0)),
        Session("u2", 10.0, ("cc", "dd"), (10.0, 20.0)),
    ]
    rows = RecordingRows()
    params = RankerParams(prefixes_per_pair=1, typo_share=0.0)
    ranker_stream_examples(rows, sessions, params)
    submits = [e for e in rows.events if e[0] == "submit"]
    assert [(q, t) for _, q, t in submits] == [("aa", 0.0), ("cc", 10.0), ("dd", 20.0), ("bb", 30.0)]
    kinds = [e[0] if e[0] == "ask" else e[1] for e in rows.events]
    assert kinds == ["aa", "cc", "ask", "dd", "ask", "bb"]  # each ask right before its own submit


def test_a_pair_cap_asks_about_that_many_pairs_and_still_submits_every_query():
    sessions = [
        Session(f"u{i}", float(i), ("aa", "bb", "cc"), (float(i), i + 0.1, i + 0.2)) for i in range(500)
    ]
    rows = RecordingRows()
    ranker_stream_examples(rows, sessions, RankerParams(prefixes_per_pair=1, typo_share=0.0, max_pairs=100))
    asked = sum(e[0] == "ask" for e in rows.events)
    assert 70 <= asked <= 130  # of 1,000 pairs
    assert sum(e[0] == "submit" for e in rows.events) == 1500
    everything = RecordingRows()
    ranker_stream_examples(everything, sessions, RankerParams(prefixes_per_pair=1, typo_share=0.0))
    assert sum(e[0] == "ask" for e in everything.events) == 1000


def test_several_logs_are_read_as_one(synthetic_log, tmp_path):
    lines = synthetic_log.read_text(encoding="utf-8").splitlines()
    half = len(lines) // 2
    first, second = tmp_path / "a.tsv", tmp_path / "b.tsv"
    first.write_text("\n".join(lines[:half]) + "\n", encoding="utf-8")
    second.write_text("\n".join([lines[0], *lines[half:]]) + "\n", encoding="utf-8")
    params = load_train_config(ROOT / "configs" / "demo.toml").log
    whole, parts = read_query_log(synthetic_log, params), read_query_log([first, second], params)
    assert parts.stats.rows == whole.stats.rows
    for split in ("train", "valid", "test"):
        assert sorted((s.user, s.queries) for s in parts.sessions[split]) == sorted(
            (s.user, s.queries) for s in whole.sessions[split]
        )


def test_generators_fit_in_a_second_process_equal_those_fit_in_this_one(synthetic_log):
    config = load_train_config(ROOT / "configs" / "demo.toml")
    data = prepare(synthetic_log, config)
    fitted = []
    for apart in (False, True):
        model, generators = fit_beside(lambda: "the scorers", data, config, apart)
        assert model == "the scorers" and generators.seconds > 0
        fitted.append(generators)
    here, there = fitted
    assert there.links is not None and there.language is not None
    for name in PairCounts.ARRAYS:
        np.testing.assert_array_equal(getattr(here.pairs, f"{name}_"), getattr(there.pairs, f"{name}_"))
    assert here.pairs.trie_.items() == there.pairs.trie_.items()
    for name in WordLinks.ARRAYS:
        np.testing.assert_array_equal(getattr(here.links, f"{name}_"), getattr(there.links, f"{name}_"))
    for name in WordLanguageModel.ARRAYS:
        np.testing.assert_array_equal(getattr(here.language, f"{name}_"), getattr(there.language, f"{name}_"))
