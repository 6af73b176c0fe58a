"""Histories replayed from a log: what a deployed service knew of a person at each query."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.histories import NO_PAST_QUERIES, PastQueries, histories_before, past_queries
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


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.text(alphabet="ab é\U0010ffff", min_size=0, max_size=5), max_size=30, unique=True),
    st.text(alphabet="ab é\U0010ffff", max_size=3),
)
def test_the_queries_starting_with_a_text_are_one_span_of_the_sorted_ones(queries, prefix):
    history = PastQueries({q: (i + 1, float(i)) for i, q in enumerate(queries)})
    lo, hi = history.span(prefix)
    assert history.sorted_queries[lo:hi] == sorted(q for q in queries if q.startswith(prefix))
    assert [queries[p] for p in history.position[lo:hi]] == history.sorted_queries[lo:hi]
    assert history.counts[lo:hi].tolist() == [history[q][0] for q in history.sorted_queries[lo:hi]]
    assert list(history) == queries and len(history) == len(queries)
    at = history.positions([*queries, prefix + "\x00"])
    assert [history.sorted_queries[p] for p in at[:-1]] == queries and at[-1] == -1


def test_a_plain_mapping_becomes_past_queries_once():
    history = past_queries({"red shoes": (2, 1.0)})
    assert isinstance(history, PastQueries) and past_queries(history) is history
    assert history["red shoes"] == (2, 1.0) and "red" not in history
    assert past_queries({}) is NO_PAST_QUERIES and not NO_PAST_QUERIES
