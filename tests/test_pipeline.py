from indexer.pipeline import split_late
from indexer.querylog import QueryLog, Session


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
