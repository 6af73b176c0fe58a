from autocomplete.completer import Completion
from bench.personal import first_characters, markdown_table, short_prefix_gain
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
