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
    assert [(text, source) for text, _, source, _ in answer] == [
        ("rose", Source.EXACT),
        ("roses", Source.EXACT),
        ("rock", Source.POPULAR),
    ]


def test_the_ranker_stops_at_k():
    chain = CandidateChain(LABELS, [Fixed(["a", "b", "c"], Source.EXACT, [3, 2, 1])], ChainOrderRanker())
    assert [t for t, _, _, _ in chain.run(chain.request("", "", 2))] == ["a", "b"]


def test_concatenated_batches_keep_their_rows_in_order():
    joined = concatenate([batch(["a"], Source.EXACT, [1.0]), batch(["b", "c"], Source.TAIL, [0.5, 0.2])])
    assert joined.texts == ["a", "b", "c"] and joined.sources == [Source.EXACT, Source.TAIL, Source.TAIL]
    assert joined.features.shape == (3, len(Feature)) and list(joined.scores) == [1.0, 0.5, 0.2]


def test_a_source_is_the_protocol_string():
    assert Source.EXACT == "model" and Source.TAIL == "tail" and Source.POPULAR == "popular"


def test_a_typo_finds_the_logged_query_and_says_which_part_matched():
    from autocomplete.generators import FuzzyPrefix
    from indexer.params import FuzzyParams
    from indexer.popularity import PopularityIndex

    labels = LabelSet(["house plants", "house music", "horse riding"], [5, 3, 1])
    link = FuzzyPrefix(PopularityIndex(labels), FuzzyParams())
    chain = CandidateChain(labels, [link], ChainOrderRanker())
    answer = chain.run(chain.request("hosue pl", "", 5))
    assert answer[0][0] == "house plants" and answer[0][2] == Source.FUZZY
    assert answer[0][3] == len("house pl")  # the matched span: the part that stands for "hosue pl"
    assert chain.run(chain.request("house pl", "", 5)) == []  # an exact match: no correction asked


def test_chain_order_folds_spelling_variants_when_asked():
    made = Fixed(
        ["house plants", "House plants?", "house  plants", "house music"], Source.POPULAR, [4, 3, 2, 1]
    )
    chain = CandidateChain(LABELS, [made], ChainOrderRanker(fold_variants=True))
    assert [t for t, _, _, _ in chain.run(chain.request("", "", 10))] == ["house plants", "house music"]
    plain = CandidateChain(LABELS, [made], ChainOrderRanker())
    assert len(plain.run(plain.request("", "", 10))) == 4


def test_a_typo_in_the_last_words_of_an_unseen_query_is_corrected_after_the_typed_head():
    from autocomplete.generators import FuzzyPrefix
    from indexer.params import FuzzyParams
    from indexer.popularity import PopularityIndex

    labels = LabelSet(["house plants", "garden tools"], [5, 3])
    chain = CandidateChain(labels, [FuzzyPrefix(PopularityIndex(labels), FuzzyParams())], ChainOrderRanker())
    text, _, source, matched = chain.run(chain.request("my own hosue pl", "", 5))[0]
    assert (text, source, matched) == ("my own house plants", Source.FUZZY, len("my own house pl"))


def test_typing_on_past_every_logged_query_answers_as_a_fresh_walk_would_without_walking_again():
    from autocomplete.generators import FuzzyPrefix
    from indexer.params import FuzzyParams
    from indexer.popularity import PopularityIndex

    labels = LabelSet(["house plants", "house music", "horse riding", "hotels in paris"], [5, 3, 1, 2])
    popularity, params = PopularityIndex(labels), FuzzyParams(one_typo=3)
    typing = FuzzyPrefix(popularity, params)
    text = "hosue plnats for a sunny window"
    for n in range(1, len(text) + 1):
        request = CandidateChain(labels, [], ChainOrderRanker()).request(text[:n], "", 5)
        fresh = FuzzyPrefix(popularity, params).generate(request, [])
        kept = typing.generate(request, [])
        assert (kept is None) == (fresh is None)
        if fresh is not None:
            assert kept.texts == fresh.texts and kept.matched.tolist() == fresh.matched.tolist()
    fresh_walks = 0
    for n in range(1, len(text) + 1):
        link = FuzzyPrefix(popularity, params)
        link.generate(CandidateChain(labels, [], ChainOrderRanker()).request(text[:n], "", 5), [])
        fresh_walks += link.walks
    assert typing.walks < fresh_walks / 2
