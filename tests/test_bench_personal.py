from autocomplete.completer import Completion
from autocomplete.evaluation.protocols import BUCKETS
from bench.personal import first_characters, markdown_table, pool_ceiling, short_prefix_gain
from indexer.querylog import Pairs

PAIRS = Pairs(
    previous=["house plants", "house plants", "weather", "x"],
    next=["rose of jericho", "repotting", "weather radar", "y"],
    users=["u1", "u2", "u3", "u4"],
)


class KnowsTheNextQuery:
    """Answers the pair's next query only when told the previous one, and only for the pairs
    whose previous query is ``house plants``."""

    def complete(self, prefix, previous=(), k=10, history=None):
        if previous and previous[-1] == "house plants":
            return [Completion(t, 1.0) for t in PAIRS.next if t.startswith(prefix)][:k]
        return [Completion("nothing", 1.0)]


def test_first_characters_are_the_one_and_two_character_prefixes_of_every_pair():
    short = first_characters(PAIRS, None)
    assert list(zip(short.prefix, short.pair_ids())) == [
        ("r", 0), ("ro", 0), ("r", 1), ("re", 1), ("w", 2), ("we", 2), ("y", 3),
    ]  # fmt: skip


def test_short_prefix_gain_averages_each_pair_once_and_bootstraps_over_pairs():
    report = short_prefix_gain(KnowsTheNextQuery(), first_characters(PAIRS, None), 10, 200, 0)
    assert report["examples"] == 7 and report["pairs"] == 4
    # pair 0: "r" and "ro" rank it first; pair 1: "r" second, "re" first; pairs 2 and 3 gain nothing
    assert report["gain"] == (1.0 + 0.75 + 0 + 0) / 4
    lo, hi = report["ci95"]
    assert 0.0 <= lo < report["gain"] < hi <= 1.0


def test_the_table_quotes_the_side_by_side_latency_of_the_shipped_chain():
    timed = {"p50": 0.5, "p99": 0.95, "calls": 6000}
    report = {
        "split": "test",
        "log": "synthetic.tsv",
        "rows": [],
        "latency_side_by_side": {
            "system": "+reformulations",
            "with history": timed,
            "without history": {**timed, "p99": 0.875},
        },
    }
    text = markdown_table(report)
    assert "with history p50 0.500, p99 0.950 ms; without history p50 0.500, p99 0.875 ms" in text
    assert "6,000 each" in text


def test_pool_ceiling_ranks_first_what_the_pool_holds_against_the_answers_without_the_previous_query():
    def rows_of(previous, prefix, history):  # the pool holds every next query after "house plants"
        pool = PAIRS.next if previous == "house plants" else ["nothing"]
        return [t for t in pool if t.startswith(prefix)], None

    short = first_characters(PAIRS, None)
    report = pool_ceiling(rows_of, KnowsTheNextQuery(), short, {"rose of jericho"}.__contains__, 10, 200, 0)
    assert report["examples"] == 7
    assert report["in_pool"] == 4 / 7  # the four prefixes of pairs 0 and 1
    assert report["next_is_logged"] == 2 / 7
    assert report["gain"] == (1.0 + 1.0 + 0 + 0) / 4  # without the previous query it answers nothing
    lo, hi = report["ci95"]
    assert 0.0 <= lo < report["gain"] < hi <= 1.0


def test_the_table_states_the_ceiling_of_reranking_the_pool():
    ceiling = {"examples": 3220, "next_is_logged": 0.135, "in_pool": 0.1075}
    ceiling.update(gain=0.06, ci95=[0.05, 0.07])
    report = {
        "split": "test",
        "log": "synthetic.tsv",
        "rows": [
            {
                "system": "+reformulations", "users": "new users", "history": False, "examples": 10,
                "strict_mrr": 0.2, "mrr": 0.3, "seen": {"mrr": 0.7}, "unseen": {"mrr": 0.2},
                "context_gain": {
                    "gain": 0.03, "ci95": [0.02, 0.04], "short": {"gain": 0.01, "ci95": [0.0, 0.02]},
                    "by_prefix_length": {b: {"gain": 0.0} for b in BUCKETS},
                },
                "every_short_prefix_ceiling": ceiling,
            }
        ],
    }  # fmt: skip
    text = markdown_table(report)
    assert "New users, `+reformulations`, every 1-2 character prefix (3,220)" in text
    assert "logged query in 13.5%" in text and "candidates (asked with the previous query) in 10.8%" in text
    assert "+0.0600 [+0.0500, +0.0700]" in text
