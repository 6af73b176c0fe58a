import pytest

from indexer.params import ConfigError, PrivacyParams
from indexer.privacy import filter_labels
from indexer.querylog import Session

SESSIONS = [
    Session("u1", 0.0, ("rose bush", "my secret diagnosis")),
    Session("u2", 0.0, ("rose bush", "cheap flights")),
    Session("u3", 0.0, ("cheap flights", "my secret diagnosis")),
    Session("u3", 9.0, ("rare query", "cheap flights")),
]


def test_min_users_keeps_queries_issued_by_enough_distinct_users():
    kept, removed = filter_labels(
        ["rose bush", "cheap flights", "rare query"], SESSIONS, PrivacyParams(min_users=2)
    )
    assert kept == ["rose bush", "cheap flights"]
    assert removed == {"removed_min_users": 1, "removed_blocklist": 0}


def test_blocklist_words_and_patterns_remove_labels(tmp_path):
    blocklist = tmp_path / "block.txt"
    blocklist.write_text("# words and patterns\nSecret\nre:^cheap\\b\n")
    kept, removed = filter_labels(
        ["rose bush", "my secret diagnosis", "cheap flights", "secretary jobs"],
        SESSIONS,
        PrivacyParams(min_users=1, blocklist=str(blocklist)),
    )
    assert kept == ["rose bush", "secretary jobs"]
    assert removed == {"removed_min_users": 0, "removed_blocklist": 2}


def test_a_bad_pattern_names_the_line(tmp_path):
    blocklist = tmp_path / "block.txt"
    blocklist.write_text("ok\nre:(unclosed\n")
    with pytest.raises(ConfigError, match="block.txt:2"):
        filter_labels(["a"], SESSIONS, PrivacyParams(min_users=1, blocklist=str(blocklist)))


def test_min_users_needs_user_ids():
    with pytest.raises(ConfigError, match="min_users = 1"):
        filter_labels(["a"], SESSIONS, PrivacyParams(min_users=2), untimed=True)
