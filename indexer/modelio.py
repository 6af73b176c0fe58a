"""Model folders: ``params.json`` plus one ``.npy`` per array, memory-mapped on load.

Every loader here turns a missing, truncated or foreign file into :class:`ModelFileError`,
whose message names the file, so a server refuses to start with a reason instead of a trace.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import marisa_trie
import numpy as np

from indexer.errors import ModelFileError
from indexer.manifest import manifest

FORMAT_VERSION = 2  # 2: params.json lists every file with its size and checksum


def save_params(
    folder: str | Path, kind: str, params: dict[str, Any], summary: dict[str, Any] | None = None
) -> None:
    """Write ``params.json`` last, so a folder with one is complete; it lists the size and checksum
    of every other file below the folder (:func:`indexer.manifest.manifest`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    body = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "params": params,
        "summary": summary or {},
        "files": manifest(folder),
    }
    tmp = folder / "params.json.tmp"
    tmp.write_text(json.dumps(body, indent=2, sort_keys=True, default=_jsonable), encoding="utf-8")
    tmp.replace(folder / "params.json")


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, set)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to params.json")


def read_params(folder: str | Path, kind: str | None = None) -> dict[str, Any]:
    """``params.json`` of a model folder, checked for format version (and kind, if given)."""
    path = Path(folder) / "params.json"
    if not path.is_file():
        raise ModelFileError(
            f"{path} is missing: is {folder} a model folder? Build one with 'autocomplete train'."
        )
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path} is not valid JSON ({exc}): the model is corrupt, rebuild it.") from exc
    if not isinstance(body, dict) or body.get("format_version") != FORMAT_VERSION:
        found = body.get("format_version") if isinstance(body, dict) else None
        raise ModelFileError(
            f"{path} has format_version {found!r}; this code reads {FORMAT_VERSION}: rebuild the model."
        )
    if kind is not None and body.get("kind") != kind:
        raise ModelFileError(f"{path} holds a {body.get('kind')!r} model, expected {kind!r}.")
    return body


def freeze(*arrays: np.ndarray) -> None:
    """Make fitted arrays read-only, as memory-mapped ones are: numba compiles a kernel once per
    argument type and read-only is a type of its own, so a model just fitted and the same model
    loaded from its folder then share every compiled kernel (numba's on-disk cache included)."""
    for array in arrays:
        array.flags.writeable = False


def load_array(path: str | Path, mmap: bool = True) -> np.ndarray:
    """One ``.npy`` array, memory-mapped read-only unless ``mmap`` is false. A mapped array comes
    as a plain ``ndarray`` view of the ``np.memmap`` (its ``base``): indexing a memmap goes through
    its Python-level ``__getitem__``, tens of microseconds a keystroke over the chain's lookups."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path} is missing: the model folder is incomplete, rebuild it.")
    try:
        return np.asarray(np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False))
    except (ValueError, OSError, EOFError) as exc:
        raise ModelFileError(f"{path} is truncated or not a .npy array ({exc}): rebuild the model.") from exc


def load_marisa(path: str | Path, mmap: bool = True) -> marisa_trie.Trie:
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path} is missing: the model folder is incomplete, rebuild it.")
    trie = marisa_trie.Trie()
    try:
        if mmap:
            trie.mmap(str(path))
        else:
            trie.load(str(path))
    except Exception as exc:  # marisa raises plain Exception subclasses for corrupt files
        raise ModelFileError(f"{path} is not a readable marisa-trie ({exc}): rebuild the model.") from exc
    return trie
