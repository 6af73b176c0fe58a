"""Histories replayed from a log: what a deployed service knew of a person at each query."""

from __future__ import annotations

from indexer.histories import histories_before
from indexer.querylog import Session

DAY = 86400.0


def test_each_pair_sees_the_persons_earlier_queries_and_never_later_ones():
    prior = [Session("ann", 0.0, ("red shoes", "red shoes sale")), Session("bob", 0.0, ("tax forms",))]
    test = [
        Session("ann", 3 * DAY, ("weather", "red shoes", "maps")),
        Session("bob", 1 * DAY, ("tax help", "tax forms")),
    ]
    ann_1, ann_2, bob_1 = histories_before(prior, test)
    assert ann_1 == {"red shoes": (1, 3.0), "red shoes sale": (1, 3.0), "weather": (1, 0.0)}
    assert ann_2["red shoes"] == (2, 0.0)  # submitted again in this session, before "maps"
    assert "maps" not in ann_2
    assert set(bob_1) == {"tax forms", "tax help"}  # no query of another person


def test_a_history_keeps_the_last_distinct_queries_only():
    prior = [Session("ann", float(i), (f"query {i}",)) for i in range(50)]
    (history,) = histories_before(prior, [Session("ann", 100.0, ("a", "b"))], max_queries=10)
    assert len(history) == 10
    assert "query 49" in history and "query 0" not in history
