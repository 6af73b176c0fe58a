import numpy as np
import pytest

from indexer.cooccurrence import PairCounts
from indexer.errors import ModelFileError
from indexer.labels import LabelSet

LABELS = LabelSet(["rose bush", "rose garden", "rock band", "roses"], [3, 2, 5, 1])


@pytest.fixture
def pairs():
    previous = ["garden", "garden", "garden", "music", "garden", "", "garden"]
    following = ["rose bush", "rose garden", "rose bush", "rock band", "not a label", "roses", "roses"]
    return PairCounts().fit(previous, following, LABELS)


def test_a_row_lists_what_followed_most_often_first(pairs):
    ids, counts = pairs.row("garden")
    assert [LABELS.text(int(i)) for i in ids] == ["rose bush", "rose garden", "roses"]
    assert list(counts) == [2, 1, 1]


def test_unknown_and_empty_previous_queries_have_empty_rows(pairs):
    assert len(pairs.row("never typed")[0]) == 0 and len(pairs.row("")[0]) == 0


def test_save_load_round_trip_and_a_foreign_label_id(pairs, tmp_path):
    pairs.save(tmp_path / "pairs")
    loaded = PairCounts.load(tmp_path / "pairs", len(LABELS))
    assert [list(a) for a in loaded.row("music")] == [list(a) for a in pairs.row("music")]
    np.save(tmp_path / "pairs" / "labels.npy", np.array([0, 1, 9, 3], dtype=np.int32))
    with pytest.raises(ModelFileError, match="pairs"):
        PairCounts.load(tmp_path / "pairs", len(LABELS))
