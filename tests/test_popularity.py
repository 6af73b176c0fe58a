import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autocomplete.candidates import variant_key
from autocomplete.completer import build_completer, load_completer
from indexer.errors import ModelFileError
from indexer.labels import LabelSet
from indexer.model import MpcModel


def PopularCompleter(labels, normalization):  # noqa: N802 - reads like the object it builds
    return build_completer(MpcModel(normalization=normalization).fit(labels))


def save_mpc(labels, folder):
    MpcModel(normalization="aol").fit(labels).save(folder)


ALPHABET = st.sampled_from(list("ab c"))


def brute_force(counts: dict[str, int], prefix: str, k: int) -> list[str]:
    """The k most popular labels of the prefix, a spelling variant of a more popular one left out."""
    matching = sorted((q for q in counts if q.startswith(prefix)), key=lambda q: (-counts[q], q))
    shown: dict[str, str] = {}
    for q in matching:
        shown.setdefault(variant_key(q), q)
    return list(shown.values())[:k]


@settings(max_examples=200, deadline=None)
@given(
    counts=st.dictionaries(
        st.text(ALPHABET, min_size=1, max_size=5), st.integers(1, 4), min_size=1, max_size=60
    ),
    prefix=st.text(ALPHABET, max_size=3),
    k=st.integers(1, 12),
)
def test_top_k_equals_a_brute_force_scan(counts, prefix, k):
    labels = list(counts)
    mpc = PopularCompleter(LabelSet(labels, [counts[q] for q in labels]), "unicode")
    got = [c.text for c in mpc.complete(prefix, [], k)]
    assert got == brute_force(counts, mpc.normalize_prefix(prefix), k)


def test_ties_are_broken_by_the_label_text_and_scores_fall():
    mpc = PopularCompleter(LabelSet(["rose c", "rose b", "rose a", "rose"], [2, 5, 5, 1]), "aol")
    result = mpc.complete("Rose ", [], 10)
    assert [c.text for c in result] == ["rose a", "rose b", "rose c"]
    assert result[0].score == result[1].score > result[2].score
    assert all(c.source == "popular" for c in result)


def test_a_prefix_no_label_starts_with_gives_an_empty_list():
    mpc = PopularCompleter(LabelSet(["rose"], [1]), "aol")
    assert mpc.complete("tulip", [], 10) == []


def test_save_load_round_trip_through_the_generic_loader(tmp_path):
    save_mpc(LabelSet(["rose", "rock", "roses"], [1, 3, 2]), tmp_path)
    loaded = load_completer(tmp_path)
    assert loaded.kind == "mpc"
    assert [c.text for c in loaded.complete("ro", [], 2)] == ["rock", "roses"]


def test_a_model_folder_of_another_format_version_is_refused(tmp_path):
    save_mpc(LabelSet(["rose"], [1]), tmp_path)
    params = tmp_path / "params.json"
    params.write_text(params.read_text().replace('"format_version": 2', '"format_version": 99'))
    with pytest.raises(ModelFileError, match="format_version"):
        load_completer(tmp_path)


def test_a_corrupt_table_is_refused_by_name(tmp_path):
    save_mpc(LabelSet(["rose", "rock"], [1, 2]), tmp_path)
    (tmp_path / "popular_table.npy").write_bytes(b"not numpy")
    with pytest.raises(ModelFileError, match="popular_table.npy"):
        load_completer(tmp_path)
