import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.labels import LabelSet, encode, prefix_range
from indexer.modelio import ModelFileError

ALPHABET = st.sampled_from(list("abc é"))
LABELS = st.lists(st.text(ALPHABET, min_size=1, max_size=6), min_size=1, max_size=40, unique=True)


@settings(max_examples=200, deadline=None)
@given(labels=LABELS, prefix=st.text(ALPHABET, max_size=4))
def test_prefix_range_holds_exactly_the_labels_starting_with_the_prefix(labels, prefix):
    label_set = LabelSet(labels)
    lo, hi = prefix_range(label_set.indptr, label_set.chars, encode(prefix))
    assert [label_set.text(i) for i in range(lo, hi)] == sorted(s for s in labels if s.startswith(prefix))


def test_ids_follow_code_point_order_and_counts_follow_their_labels():
    label_set = LabelSet(["b", "a", "ab"], [1, 5, 3])
    assert label_set.texts() == ["a", "ab", "b"]
    assert label_set.counts.tolist() == [5, 3, 1]
    assert label_set.id_of("ab") == 1 and label_set.id_of("zz") == -1


def test_duplicate_labels_are_refused():
    with pytest.raises(ValueError, match="distinct"):
        LabelSet(["a", "a"])


def test_save_and_memory_mapped_load_round_trip(tmp_path):
    label_set = LabelSet(["rose", "roses", "rock"], [3, 2, 1])
    label_set.save(tmp_path)
    loaded = LabelSet.load(tmp_path)
    assert isinstance(loaded.counts.base, np.memmap)
    assert loaded.texts() == label_set.texts()
    assert prefix_range(loaded.indptr, loaded.chars, encode("ros")) == (1, 3)


def test_a_truncated_array_file_is_named_in_the_error(tmp_path):
    LabelSet(["rose", "roses"]).save(tmp_path)
    path = tmp_path / "chars.npy"
    path.write_bytes(path.read_bytes()[:-6])
    with pytest.raises(ModelFileError, match="chars.npy"):
        LabelSet.load(tmp_path)


def test_a_missing_trie_file_is_named_in_the_error(tmp_path):
    LabelSet(["rose"]).save(tmp_path)
    (tmp_path / "labels.marisa").unlink()
    with pytest.raises(ModelFileError, match="labels.marisa"):
        LabelSet.load(tmp_path)


@settings(max_examples=50, deadline=None)
@given(
    labels=st.sets(st.text(st.sampled_from(list("ab cé✓")), min_size=1, max_size=6), min_size=1, max_size=30)
)
def test_texts_of_decodes_any_ids_like_text(labels):
    label_set = LabelSet(sorted(labels))
    ids = np.arange(len(label_set))[::-1]
    assert label_set.texts_of(ids) == [label_set.text(int(i)) for i in ids]
    assert label_set.texts_of(np.empty(0, dtype=np.int64)) == []


@settings(max_examples=30, deadline=None)
@given(
    asks=st.lists(st.lists(st.integers(0, 7), max_size=6), min_size=1, max_size=8),
    cache_size=st.integers(1, 9),
)
def test_texts_of_answers_the_same_whatever_its_cache_holds(asks, cache_size, tmp_path_factory):
    folder = tmp_path_factory.mktemp("labels")
    LabelSet(["rose", "rose bush", "roses", "tulip", "tulips", "lily", "lilac", "é✓"]).save(folder)
    label_set = LabelSet.load(folder)
    label_set.text_cache_size = cache_size
    for ids in asks:  # repeated and overlapping asks, the cache emptied when it overflows
        ids = np.array(ids, dtype=np.int64)
        assert label_set.texts_of(ids) == [label_set.text(int(i)) for i in ids]
        assert len(label_set._texts) <= max(cache_size, 6)  # bounded (an ask holds at most 6 ids)
