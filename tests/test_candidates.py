import numpy as np

from autocomplete.candidates import (
    CandidateBatch,
    CandidateChain,
    ChainOrderRanker,
    Feature,
    Source,
    concatenate,
    empty_features,
)
from indexer.labels import LabelSet


def batch(texts, source, scores):
    features = empty_features(len(texts))
    features[:, Feature.LOG_COUNT] = np.arange(len(texts))
    return CandidateBatch(
        list(texts), [source] * len(texts), np.array(scores, dtype=float), features, np.full(len(texts), -1)
    )


class Fixed:
    """Proposes fixed texts; records what the links before it had found."""

    def __init__(self, texts, source, scores):
        self.made = batch(texts, source, scores)
        self.saw: list[list[str]] = []

    def generate(self, request, found):
        self.saw.append([t for b in found for t in b.texts])
        return self.made

    def warm_up(self):
        return None


LABELS = LabelSet(["rock", "rose", "roses", "tulip"], [3, 2, 1, 5])


def test_the_request_holds_the_label_range_of_the_prefix():
    chain = CandidateChain(LABELS, [], ChainOrderRanker())
    request = chain.request("ros", "", 5)
    assert (request.hi - request.lo, request.typed, request.k) == (2, "ros", 5)
    assert chain.request("zz", "", 5).lo == chain.request("zz", "", 5).hi


def test_links_run_in_order_and_each_sees_what_came_before():
    first = Fixed(["rose", "roses"], Source.EXACT, [1.0, 0.5])
    second = Fixed(["rose", "rock"], Source.POPULAR, [0.0, 0.0])
    chain = CandidateChain(LABELS, [first, second], ChainOrderRanker())
    answer = chain.run(chain.request("ro", "", 10))
    assert second.saw == [["rose", "roses"]]
    assert [(text, source) for text, _, source in answer] == [
        ("rose", Source.EXACT),
        ("roses", Source.EXACT),
        ("rock", Source.POPULAR),
    ]


def test_the_ranker_stops_at_k():
    chain = CandidateChain(LABELS, [Fixed(["a", "b", "c"], Source.EXACT, [3, 2, 1])], ChainOrderRanker())
    assert [t for t, _, _ in chain.run(chain.request("", "", 2))] == ["a", "b"]


def test_concatenated_batches_keep_their_rows_in_order():
    joined = concatenate([batch(["a"], Source.EXACT, [1.0]), batch(["b", "c"], Source.TAIL, [0.5, 0.2])])
    assert joined.texts == ["a", "b", "c"] and joined.sources == [Source.EXACT, Source.TAIL, Source.TAIL]
    assert joined.features.shape == (3, len(Feature)) and list(joined.scores) == [1.0, 0.5, 0.2]


def test_a_source_is_the_protocol_string():
    assert Source.EXACT == "model" and Source.TAIL == "tail" and Source.POPULAR == "popular"
