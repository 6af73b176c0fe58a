import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from indexer.normalize import get_normalizer, normalize_aol, normalize_prefix, normalize_unicode


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Rose of Jericho", "rose of jericho"),
        ("www.Google.com", "www google com"),
        ("  many   spaces\there ", "many spaces here"),
        ("C++ tips!", "c tips"),
        ("don't-stop", "dontstop"),
        ("snake_case stays", "snake_case stays"),
        ("...", ""),
        ("", ""),
        ("Café.Crème", "café crème"),
        ("a\x00b\x07c", "abc"),
    ],
)
def test_aol_normalization_follows_the_benchmark_protocol(raw, expected):
    assert normalize_aol(raw) == expected


SEPARATORS_AND_MORE = " .\t\n\u00a0\u2028\x1cab-'_é"  # the odd whitespace, often


@given(st.text(st.characters(codec="utf-8"), max_size=40) | st.text(SEPARATORS_AND_MORE, max_size=40))
def test_aol_normalization_equals_the_protocol_token_by_token(raw):
    """The protocol as written: split on whitespace and '.', strip each token of non-word
    characters, drop the empty ones, join with one space, lower-case."""
    tokens = (re.sub(r"\W+", "", token) for token in re.split(r"[\s.]+", raw))
    assert normalize_aol(raw) == " ".join(t for t in tokens if t).lower()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Straße", "strasse"),
        ("ｆｕｌｌｗｉｄｔｈ", "fullwidth"),
        ("C++ tips!", "c++ tips!"),
        ("www.Google.com", "www.google.com"),
        ("tab\there\u00a0nbsp", "tab here nbsp"),
        ("zero\u200bwidth\x00", "zerowidth"),
        ("  ", ""),
    ],
)
def test_unicode_normalization_keeps_punctuation_and_drops_invisible_characters(raw, expected):
    assert normalize_unicode(raw) == expected


@pytest.mark.parametrize(
    ("typed", "scheme", "expected"),
    [
        ("rose ", "aol", "rose "),
        ("rose", "aol", "rose"),
        ("Rose  Of ", "aol", "rose of "),
        ("www.", "aol", "www "),
        ("www.", "unicode", "www."),
        ("   ", "aol", ""),
        ("rose-", "aol", "rose"),
    ],
)
def test_a_typed_prefix_keeps_its_word_boundary(typed, scheme, expected):
    assert normalize_prefix(typed, scheme) == expected


def test_unknown_scheme_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="aol"):
        get_normalizer("latin")
