"""The live blocklist: what it matches, that answers keep k items, and its file."""

from __future__ import annotations

import os

import pytest

from autocomplete.exclusions import Exclusions, LiveExclusions, complete_allowed
from indexer.errors import ConfigError
from indexer.privacy import Blocklist


def exclusions(*lines: str) -> Exclusions:
    return Exclusions.of(Blocklist.parse(lines, "test"))


@pytest.mark.parametrize(
    ("entry", "text"),
    [
        ("Secret", "my secret diagnosis"),
        ("secret", "MY SECRET"),
        ("café", "cafe paris"),  # accents folded
        ("CAFE", "café paris"),
        ("ｓｅｃｒｅｔ", "secret"),  # compatibility forms (full width)
        ("o'neil", "oneil street"),  # punctuation inside a word, as the aol normalization drops it
        ("o'neil", "o'neil street"),
        ("bad phrase", "a bad phrase here"),
        ("re:^cheap\\b", "cheap flights"),
        ("re:\\d{3}-\\d{4}", "call 555-1234"),
        ("re:(?s)^cheap", "cheap flights"),  # global flags: searched on its own, not in the alternation
    ],
)
def test_a_blocklisted_word_or_pattern_blocks_every_spelling_of_it(entry, text):
    assert exclusions(entry).blocks(text)


@pytest.mark.parametrize(
    ("entry", "text"),
    [
        ("secret", "secretary jobs"),  # whole words only
        ("bad phrase", "phrase bad"),  # a phrase is a word sequence
        ("bad phrase", "badphrase"),
        ("re:^cheap\\b", "very cheap"),
    ],
)
def test_other_words_are_not_blocked(entry, text):
    assert not exclusions(entry).blocks(text)


def test_several_patterns_are_searched_as_one():
    found = exclusions("re:^cheap\\b", "re:flights$", "rose")
    assert found.pattern is not None and found.pattern.pattern.count("(?:") == 2
    assert [found.blocks(t) for t in ("cheap x", "x flights", "a rose", "roses")] == [True, True, True, False]


def counting_completer(texts: list[str]):
    asked: list[int] = []

    def complete(n: int) -> list[str]:
        asked.append(n)
        return texts[:n]

    return complete, asked


def test_answers_keep_k_items_when_the_completer_has_more_and_nothing_is_asked_twice_otherwise():
    texts = [f"bad {i}" for i in range(15)] + [f"good {i}" for i in range(50)]
    complete, asked = counting_completer(texts)
    found, removed = complete_allowed(complete, 10, exclusions("bad"), str)
    assert found == [f"good {i}" for i in range(10)] and removed == 10
    assert asked == [10, 40]
    complete, asked = counting_completer(texts[15:])
    found, removed = complete_allowed(complete, 10, exclusions("bad"), str)
    assert found == texts[15:25] and removed == 0 and asked == [10]


def test_asking_for_more_is_bounded_and_stops_when_the_completer_has_no_more():
    complete, asked = counting_completer([f"bad {i}" for i in range(1000)])
    assert complete_allowed(complete, 10, exclusions("bad"), str) == ([], 10)
    assert asked == [10, 40, 160]
    complete, asked = counting_completer(["bad 1", "good 1", "good 2"])
    assert complete_allowed(complete, 10, exclusions("bad"), str)[0] == ["good 1", "good 2"]
    assert asked == [10]  # it gave fewer than asked: it has no more


def test_the_file_is_reread_when_it_changes_and_a_bad_one_is_refused(tmp_path):
    path = tmp_path / "blocklist.txt"
    path.write_text("alpha\n")
    results = []
    live = LiveExclusions(str(path), 1 << 20, on_load=lambda result, ex: results.append((result, ex.entries)))
    assert live.current.blocks("alpha beta") and not live.check()
    path.write_text("beta\nre:^gam\n")
    os.utime(path, ns=(1, 1))  # a new modification time even within one clock tick
    assert live.check()
    assert live.current.blocks("beta") and live.current.blocks("gamma") and not live.current.blocks("alpha")
    path.write_text("re:(unclosed\n")
    os.utime(path, ns=(2, 2))
    assert not live.check()
    assert live.current.blocks("beta")  # the list before stays
    assert results == [("loaded", 1), ("loaded", 2), ("refused", 2)]


def test_replace_writes_the_file_atomically_and_refuses_entries_it_cannot_hold(tmp_path):
    path = tmp_path / "blocklist.txt"
    live = LiveExclusions(str(path), 1 << 20)
    assert not live.current  # no file yet: nothing excluded
    live.replace(["Secret"], ["^cheap\\b"])
    assert live.current.blocks("my secret") and live.current.blocks("cheap flights")
    assert LiveExclusions(str(path), 1 << 20).lines() == (["secret"], ["^cheap\\b"])
    for words, patterns in ((["a # b"], []), (["re:x"], []), ([" "], []), ([], ["(unclosed"])):
        with pytest.raises(ConfigError):
            live.replace(words, patterns)
    assert live.current.blocks("my secret")
    with pytest.raises(ConfigError, match="serve.blocklist is not set"):
        LiveExclusions("", 1 << 20).replace(["x"], [])
