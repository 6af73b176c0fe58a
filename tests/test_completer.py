import json
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autocomplete.candidates import variant_key
from autocomplete.completer import build_completer, load_completer
from indexer.errors import ModelFileError
from indexer.labels import encode, prefix_range
from indexer.model import load_model


@pytest.fixture(scope="module")
def model(demo_model):
    return load_model(demo_model)


@pytest.fixture(scope="module")
def completer(demo_model):
    return load_completer(demo_model)


def test_the_previous_query_changes_the_best_completion(completer):
    after_garden = [c.text for c in completer.complete("ro", ["house plants"], 5)]
    after_music = [c.text for c in completer.complete("ro", ["guitar chords"], 5)]
    assert any(t.startswith("ros") for t in after_garden[:3])
    assert any(t.startswith(("rock", "roll")) for t in after_music[:3])
    assert after_garden != after_music


def test_a_prepared_context_answers_exactly_as_a_cold_one(demo_model):
    cold, prepared = load_completer(demo_model), load_completer(demo_model)
    for previous in (["house plants"], ["guitar chords"], ["cheap flights to paris"]):
        prepared.prepare(previous)
        for typed in ("", "r", "ro", "rose of j", "cheap fl", "flights to zz"):
            assert prepared.complete(typed, previous, 10) == cold.complete(typed, previous, 10)


def test_every_completion_starts_with_the_normalized_prefix_and_is_unique(completer):
    for typed in ("R", "ro", "Rose ", "rock band", "running  sh", "tomato"):
        result = completer.complete(typed, ["cheap flights"], 10)
        texts = [c.text for c in result]
        assert texts and all(t.startswith(completer.normalize_prefix(typed)) for t in texts)
        assert len(set(texts)) == len(texts)
        assert [c.score for c in result] == sorted((c.score for c in result), reverse=True)


@settings(max_examples=150, deadline=None)
@given(prefix=st.text(st.sampled_from(list("rosetaun ?")), max_size=8), k=st.integers(1, 15))
def test_never_fewer_than_k_or_all_matching_labels(completer, model, prefix, k):
    typed = completer.normalize_prefix(prefix)
    matching = len({variant_key(t) for t in model.labels.texts() if t.startswith(typed)})  # spellings fold
    result = completer.complete(prefix, ["house plants"], k)
    # every completion starts with the typed text, but a corrected one, which says what matched
    assert all(c.text.startswith(typed) or (c.corrected and c.source == "fuzzy") for c in result)
    assert len(result) <= k
    if matching:  # never fewer than the labels could give; generated queries may add more
        assert len(result) >= min(k, matching)
        assert {c.source for c in result} <= {
            "model",
            "popular",
            "followed",
            "generated",
            "related",
            "live",
            "reformulated",
        }
    else:
        assert {c.source for c in result} <= {"tail", "generated", "fuzzy", "reformulated"}


def test_a_prefix_never_searched_whole_completes_its_last_words(completer, model):
    assert model.labels.id_of("rose bush pruning") >= 0
    typed = "my favourite rose bu"
    lo, hi = prefix_range(model.labels.indptr, model.labels.chars, encode(typed))
    assert lo == hi
    result = completer.complete(typed, ["house plants"], 5)
    assert result and {c.source for c in result} <= {"tail", "generated"}
    assert "my favourite rose bush pruning" in [c.text for c in result]
    assert all(c.text.startswith(typed) for c in result)
    assert [c.score for c in result] == sorted((c.score for c in result), reverse=True)


def test_unseen_tails_can_be_switched_off(demo_model):
    import dataclasses

    model = load_model(demo_model)
    model.search = dataclasses.replace(model.search, unseen_tails=0)
    result = build_completer(model).complete("my favourite rose bu", ["house plants"], 5)
    assert "tail" not in {c.source for c in result}


def test_an_empty_box_after_a_query_offers_what_followed_it_without_first_layer_scorers(completer, model):
    tree, weights = model.tree_, model.weights_.tocsc()
    first_layer = range(int(tree.layer_ptr_[1]), int(tree.layer_ptr_[2]))
    assert all(weights.indptr[v + 1] == weights.indptr[v] for v in first_layer)  # never trained
    assert weights.indptr[tree.layer_ptr_[3]] > weights.indptr[tree.layer_ptr_[2]]  # the layer below is
    ids, _ = model.pairs_.row("house plants")
    followed = set(model.labels.texts_of(ids))
    answer = [c.text for c in completer.complete("", ["house plants"], 10)]
    assert len(answer) == 10 and followed & set(answer[:3])


def test_no_context_and_unknown_context_still_answer(completer):
    assert completer.complete("ro", [], 3)
    assert completer.complete("ro", ["zzzz qqqq never seen"], 3)


def test_the_training_summary_reports_stages_and_size(demo_model):
    summary = json.loads((demo_model / "params.json").read_text())["summary"]
    assert {"read_log", "labels", "features", "tree", "scorers", "total"} <= set(summary["seconds"])
    assert summary["tree_nodes"] > summary["labels"] > 0 and summary["weights_nnz"] > 0


@pytest.mark.parametrize(
    "victim", ["weights_data.npy", "tree/child_ptr.npy", "features/params.json", "labels.marisa"]
)
def test_a_damaged_model_file_is_refused_by_name(demo_model, tmp_path, victim):
    broken = tmp_path / "model"
    shutil.copytree(demo_model, broken)
    path = broken / victim
    if not path.exists():
        pytest.fail(f"expected model file {victim} is not in the model folder")
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(ModelFileError, match=victim.split("/")[-1]):
        load_completer(broken)


_COMPILES = """
import json, sys
from numba.core.registry import CPUDispatcher
from autocomplete.completer import load_completer

completer = load_completer(sys.argv[1])

def signatures():
    return {
        f"{name}.{attr}": len(value.signatures)
        for name, module in list(sys.modules.items())
        if name.split(".")[0] in ("autocomplete", "indexer")
        for attr, value in list(vars(module).items())
        if isinstance(value, CPUDispatcher)
    }

before = signatures()
labels = completer.chain.labels.texts()
queries = labels[:: max(1, len(labels) // 12)][:12]
typos = [q[0] + q[2] + q[1] + q[3:] if len(q) > 3 else q for q in queries]
unseen = ["zzqx " + q for q in queries[:4]] + ["qqqqqqqqqqqqqqqqqqqq"]
history = {q: (2, 1.0) for q in queries[:6]}
for i, text in enumerate(queries + typos + unseen):
    previous = [queries[(i - 1) % len(queries)]] if i % 3 else []
    completer.prepare(previous)
    for n in range(1, len(text) + 1):
        completer.complete(text[:n], previous, 10, history if i % 2 else {})
after = signatures()
print(json.dumps({k: (before.get(k, 0), v) for k, v in after.items() if v != before.get(k, 0)}))
"""


def test_after_loading_no_keystroke_compiles_a_kernel(demo_model):
    """A fresh worker warms every kernel up at load: no request, typo, unseen text, context or
    history among them, waits for numba (a compile is tens of milliseconds to seconds)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _COMPILES, str(demo_model)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {}


def test_a_dropped_completer_is_freed_without_the_cyclic_collector(demo_model):
    """What lets a worker freeze its heap after loading (``autocomplete.holder.freeze_heap``): the
    model it replaces later is still freed, by reference counting alone."""
    import gc

    loaded = load_completer(demo_model)
    loaded.complete("a", ["warm up"], 10)
    gc.collect()
    gc.disable()
    try:
        del loaded
        assert gc.collect() == 0
    finally:
        gc.enable()
