import json
import shutil

import numpy as np
import pytest

from autocomplete.completer import load_completer
from indexer.errors import ModelFileError
from indexer.manifest import snapshot
from indexer.model import load_model


@pytest.fixture
def model(mpc_model, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(mpc_model, folder)
    return folder


def test_params_json_lists_every_file_with_size_and_checksum(model):
    files = json.loads((model / "params.json").read_text())["files"]
    on_disk = {p.relative_to(model).as_posix() for p in model.rglob("*") if p.is_file()} - {"params.json"}
    assert set(files) == on_disk
    assert all(size == (model / rel).stat().st_size for rel, (size, _) in files.items())


@pytest.mark.parametrize("victim", ["counts.npy", "popular_table.npy", "labels.marisa"])
def test_a_same_size_rewrite_is_refused_by_name(model, victim):
    path = model / victim
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # same size, different content: what an in-place overwrite leaves
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=victim):
        load_model(model)


def test_a_same_size_garbage_index_array_never_reaches_a_kernel(demo_model, tmp_path):
    folder = tmp_path / "xmr"
    shutil.copytree(demo_model, folder)
    indices = np.load(folder / "weights_indices.npy")
    np.save(folder / "weights_indices.npy", np.full_like(indices, 2**30))  # would read far out of bounds
    with pytest.raises(ModelFileError, match="weights_indices.npy"):
        load_completer(folder)


def test_the_served_copy_survives_rewriting_the_original(model, tmp_path):
    copy = snapshot(model, tmp_path / "snapshots")
    served = load_completer(copy)
    before = [c.text for c in served.complete("r", [], 5)]
    for path in model.rglob("*.npy"):
        path.write_bytes(b"\0" * 10)  # truncated in place, as a careless deploy would
    assert [c.text for c in served.complete("r", [], 5)] == before
    assert snapshot(copy.parent / copy.name, tmp_path / "snapshots") == copy  # same model, same copy


def test_a_copy_of_a_damaged_folder_is_not_kept(model, tmp_path):
    (model / "counts.npy").write_bytes(b"\0" * (model / "counts.npy").stat().st_size)
    with pytest.raises(ModelFileError, match="counts.npy"):
        snapshot(model, tmp_path / "snapshots")
    assert not [p for p in (tmp_path / "snapshots").iterdir() if not p.name.startswith(".")]
