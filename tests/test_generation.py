import math
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from autocomplete.generation import Generator
from indexer.language import WordLanguageModel
from indexer.normalize import normalize_aol
from indexer.synthetic import generate_sessions


@pytest.fixture(scope="module")
def synthetic():
    rows = generate_sessions(n_users=150, seed=5)
    pairs = [(normalize_aol(q), u) for u, q, _ in rows]
    pairs = [(q, u) for q, u in pairs if q]
    return [q for q, _ in pairs], [u for _, u in pairs]


@pytest.fixture(scope="module")
def generator(synthetic):
    return Generator(WordLanguageModel(order=3, min_users=2).fit(*synthetic))


def test_typed_words_are_kept_and_the_last_one_completed(generator):
    out = generator.generate("trail running s", 10)
    assert out.text and all(t.startswith("trail running s") for t in out.text)
    assert "trail running shoes" in out.text
    best = out.text.index("trail running shoes")
    assert out.completed[best] and out.n_added[best] == 0
    assert (
        out.completed_count[best]
        == generator.model.vocabulary_.counts[generator.model.vocabulary_.id_of("shoes")]
    )


def test_continuation_adds_words_until_the_end(generator):
    out = generator.generate("marathon ", 10)
    assert "marathon training plan" in out.text
    i = out.text.index("marathon training plan")
    assert out.n_added[i] == 2 and not out.completed[i] and out.completed_count[i] == 0
    assert np.all(np.diff(out.logprob + out.end_logprob) <= 1e-12)  # best first
    assert all(n <= 3 for n in out.n_added)


def test_completions_of_the_typed_word_keep_their_reserved_places():
    # "pot" has six completions; "potter" has many likely continuations that would fill the list
    queries = [f"harry potter {w}" for w in ("books", "movie", "cast", "games", "toys", "quiz", "wiki")] * 5
    queries += ["harry " + w for w in ("pottery", "potts", "potash", "potomac", "potluck")]
    model = WordLanguageModel(order=3, min_users=1).fit(queries)
    for reserve, completions in ((0, 0), (3, 3), (5, 5)):
        out = Generator(model, reserve=reserve, min_end_fraction=0.0).generate("harry pot", 6)
        assert len(out.text) == 6 and "harry potter books" in out.text
        assert (out.n_added == 0).sum() == completions
        assert np.all(np.diff(out.logprob + out.end_logprob) <= 1e-12)


def test_word_completion_only_adds_no_words(generator):
    out = generator.generate("rose b", 10, max_new_words=0)
    assert "rose bush" in out.text and all(len(t.split()) == 2 for t in out.text)
    assert not any(out.n_added) and all(out.completed)


def test_a_word_in_the_middle_is_completed_by_its_probability_after_the_words_before(generator):
    model = generator.model
    words = generator.complete_word(["trail", "running"], "s", 3)
    assert words and all(w.startswith("s") for w, _ in words)
    for word, logp in words:
        assert logp == pytest.approx(math.log(model.probability(word, ["<s>", "trail", "running"])))
    assert [lp for _, lp in words] == sorted((lp for _, lp in words), reverse=True)
    assert words[0][0] not in [
        w for w, _ in generator.complete_word(["trail", "running"], "s", 3, words[0][0])
    ]
    assert generator.complete_word(["trail"], "", 3) == []


def test_scores_of_given_texts_are_the_model_log_probabilities(generator):
    model = generator.model
    logp, end = generator.score(["trail running shoes", "marathon training plan"])
    for i, text in enumerate(["trail running shoes", "marathon training plan"]):
        assert logp[i] + end[i] == pytest.approx(model.log_probability(text))
    unknown, _ = generator.score(["trail zzzunknown"])
    assert unknown[0] < logp[0]
    nothing, no_end = generator.score([])
    assert len(nothing) == len(no_end) == 0


def test_features_are_the_model_probabilities(generator):
    model = generator.model
    for typed in ("running sh", "cheap ", "", "r", "zzz ro"):
        out = generator.generate(typed, 10)
        assert out.text, typed
        complete = typed.split(" ")[:-1]
        for text, logp, end, backoffs in zip(out.text, out.logprob, out.end_logprob, out.backoff_steps):
            words = text.split(" ")
            history = ["<s>"] + complete
            expected = 0.0
            steps = 0
            for word in words[len(complete) :] + ["</s>"]:
                steps += word not in model.successors(history[-2:])
                if word != "</s>":
                    expected += math.log(model.probability(word, history[-2:]))
                    history.append(word)
            assert logp == pytest.approx(expected, rel=1e-9)
            assert end == pytest.approx(math.log(model.probability("</s>", history[-2:])), rel=1e-9)
            assert backoffs == steps, (typed, text)


def test_the_previous_query_cache_proposes_its_words_with_the_mixed_probability():
    queries = ["rome hotels", "rome map", "cheap flights", "cheap cars", "rental cars"] * 3 + [
        "cheap tickets"
    ]
    users = [f"u{i % 4}" for i in range(len(queries))]
    model = WordLanguageModel(order=3, min_users=2).fit(queries, users)  # "cheap tickets" is dropped
    plain = Generator(model, min_end_fraction=0.0)
    cached = Generator(model, min_end_fraction=0.0, cache_weight=0.3)
    assert plain.generate("cheap r", 10, previous="rome hotels").text == []  # nobody typed cheap r...
    assert plain.generate("cheap r", 10).text == cached.generate("cheap r", 10).text  # no previous: no cache
    out = cached.generate("cheap r", 10, previous="rome hotels unknownword")
    assert "cheap rome hotels" in out.text
    cache = {"rome", "hotels"}  # the unknown word is not in the vocabulary
    for text, logp, end in zip(out.text, out.logprob, out.end_logprob):
        history = ["<s>", "cheap"]
        expected = 0.0
        for word in text.split(" ")[1:]:
            p = 0.7 * model.probability(word, history[-2:]) + (0.3 / len(cache) if word in cache else 0.0)
            expected += math.log(p)
            history.append(word)
        assert logp == pytest.approx(expected, rel=1e-9)
        assert end == pytest.approx(math.log(0.7 * model.probability("</s>", history[-2:])), rel=1e-9)
    words = model.vocabulary_.texts()
    ids = cached.cache_words("rome hotels unknownword rome")  # as kept at submit time
    assert sorted(words[i] for i in ids) == ["hotels", "rome"] and list(ids) == sorted(ids)
    again = cached.generate("cheap r", 10, previous="rome hotels unknownword")
    assert again.text == out.text and list(again.logprob) == list(out.logprob)


def test_word_completion_over_a_wide_range_is_the_exact_top_by_probability():
    # 3000 words start with "w"; after an unknown word every score is the unigram probability
    words = [f"w{i:04d}" for i in range(3000)]
    rng = np.random.default_rng(0)
    queries = [words[int(i)] for i in rng.zipf(1.3, 20000) % 3000]
    model = WordLanguageModel(order=3, min_users=1).fit(queries)
    out = Generator(model, min_end_fraction=0.0).generate("qqq w", 10, max_new_words=0)
    scores = {w: model.probability(w, ["qqq"]) for w in model.vocabulary_.texts() if w.startswith("w")}
    best = sorted(scores, key=lambda w: (-scores[w], w))[:10]
    assert out.text == [f"qqq {w}" for w in best]


def test_no_dangling_function_word_unless_the_log_ends_queries_with_it():
    queries = ["bank of america", "map of rome", "bank of america online", "map of paris", "bank"] * 3
    users = [f"u{i}" for i in range(len(queries))]
    generator = Generator(WordLanguageModel(order=3, min_users=2).fit(queries, users))
    for typed in ("bank o", "bank of", "map ", "b", "m"):
        out = generator.generate(typed, 10)
        assert out.text, typed
        assert not any(t.endswith(" of") for t in out.text), typed
    ending = queries + ["best of", "best of", "top of"] * 3
    generator = Generator(
        WordLanguageModel(order=3, min_users=2).fit(ending, [f"u{i}" for i in range(len(ending))])
    )
    assert "best of" in generator.generate("best o", 10).text


def test_blocklist_typed_word_gets_nothing_and_patterns_are_never_generated(tmp_path):
    blocklist = tmp_path / "block.txt"
    blocklist.write_text("secret\nre:\\bcheap rome\\b\n")
    queries = ["my secret plan", "cheap flights", "cheap hotels", "rome hotels", "rome"] * 3
    model = WordLanguageModel(order=2, min_users=1, blocklist=str(blocklist)).fit(queries)
    generator = Generator(model, min_end_fraction=0.0)
    assert generator.generate("my secret ", 10).text == []
    for typed in ("", "c", "cheap ", "cheap r", "my s", "my "):
        for text in generator.generate(typed, 10).text:
            assert "secret" not in text.split()
            assert "cheap rome" not in text


def test_a_model_whose_words_all_lack_users_generates_nothing():
    generator = Generator(WordLanguageModel(order=3, min_users=2).fit(["rare words", "other text"]))
    assert generator.model.n_words_ == 0
    for typed in ("", "r", "rare ", "rare w"):
        assert generator.generate(typed, 10).text == []


def test_not_normalized_text_is_refused(generator):
    with pytest.raises(ValueError, match="normalize_prefix"):
        generator.generate("rose  b", 10)
    with pytest.raises(ValueError, match="k must be"):
        generator.generate("rose", 0)


def test_save_load_round_trip_gives_identical_generations(tmp_path, generator):
    generator.model.save(tmp_path / "lm")
    loaded = Generator(WordLanguageModel.load(tmp_path / "lm"))
    loaded.warm_up()
    for typed in ("", "r", "rose ", "running shoes ", "cheap fl", "zzz"):
        a, b = generator.generate(typed, 10), loaded.generate(typed, 10)
        assert a.text == b.text
        for x, y in zip(a[1:], b[1:]):
            assert np.array_equal(x, y)


# ---------------------------------------------------------------- properties on random corpora
WORDS = ["a", "b", "ab", "of", "c"]
CORPUS = st.lists(
    st.tuples(
        st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join),
        st.sampled_from(["u1", "u2", "u3", "u4", "u5"]),
    ),
    min_size=1,
    max_size=30,
)


def ngram_users(queries, users, order):
    who = defaultdict(set)
    for i, query in enumerate(queries):
        user = users[i] if users is not None else i
        tokens = ["<s>"] + query.split(" ") + ["</s>"]
        for n in range(1, order + 1):
            for start in range(len(tokens) - n + 1):
                who[tuple(tokens[start : start + n])].add(user)
    who[("<s>",)] = set(users if users is not None else range(len(queries)))
    return who


@st.composite
def typed_texts(draw, corpus):
    query = draw(st.sampled_from([q for q, _ in corpus]))
    if draw(st.booleans()):
        return query[: draw(st.integers(0, len(query)))].lstrip()
    words = draw(st.lists(st.sampled_from(WORDS + ["zz"]), max_size=3))
    return " ".join(words + [draw(st.sampled_from(["", "a", "o", "z"]))])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    corpus=CORPUS,
    min_users=st.integers(1, 3),
    order=st.integers(2, 3),
    anonymous=st.booleans(),
    blocked=st.booleans(),
    data=st.data(),
)
def test_generated_texts_keep_the_typed_text_privacy_and_no_doubled_words(
    tmp_path_factory, corpus, min_users, order, anonymous, blocked, data
):
    queries = [q for q, _ in corpus]
    users = None if anonymous else [u for _, u in corpus]
    note(f"queries={queries} users={users} min_users={min_users} order={order} blocked={blocked}")
    blocklist = ""
    if blocked:
        path = tmp_path_factory.mktemp("block") / "block.txt"
        path.write_text("ab\n")
        blocklist = str(path)
    model = WordLanguageModel(order=order, min_users=min_users, blocklist=blocklist).fit(queries, users)
    generator = Generator(model, min_end_fraction=0.0)
    who = ngram_users(queries, users, order)
    # what the model may learn from: the queries the blocklist lets through
    learnable = [i for i, q in enumerate(queries) if not (blocked and "ab" in q.split(" "))]
    who_clean = ngram_users(
        [queries[i] for i in learnable], None if users is None else [users[i] for i in learnable], order
    )
    for _ in range(4):
        typed = data.draw(typed_texts(corpus))
        complete = typed.split(" ")[:-1]
        out = generator.generate(typed, 10)
        assert len(out.text) == len(set(out.text))
        for text in out.text:
            assert text.startswith(typed)
            tokens = ["<s>"] + text.split(" ") + ["</s>"]
            first = 1 + len(complete)  # the first generated token (the completed word, if any)
            if blocked:
                assert "ab" not in tokens[first:]
            for i in range(first, len(tokens) - 1):
                assert tokens[i] != tokens[i - 1], (typed, text)
            for end in range(first + 1, len(tokens) + 1):
                for start in range(max(0, end - order), end):
                    gram = tuple(tokens[start:end])
                    people = len(who.get(gram, ()))
                    if 0 < people < min_users:
                        typed_part = tuple(tokens[start:first])
                        # only an n-gram whose typed part is itself rare among the learnable queries:
                        # the person typed something the model holds nothing about
                        assert typed_part and len(who_clean.get(typed_part, ())) < min_users, (typed, gram)
