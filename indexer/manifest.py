"""What a model folder holds, checked before anything is memory-mapped, and a private copy to serve.

``params.json`` lists every other file of its folder with its size and BLAKE2b digest
(:func:`manifest`). :func:`verify` refuses a folder whose files are missing, truncated, overwritten
or swapped with :class:`ModelFileError` naming the file, so a damaged model never reaches a numba
kernel (which does not check bounds). :func:`snapshot` copies a folder into a read-only directory
named by the digest of its ``params.json``: a server maps that copy, so rewriting the original in
place cannot change or crash what is being served, and workers loading the same model share one
copy (and its pages).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from indexer.errors import ModelFileError

_CHUNK = 1 << 20


def digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def manifest(folder: str | Path) -> dict[str, list]:
    """``{relative path: [bytes, digest]}`` of every file below ``folder`` but its own params.json."""
    folder = Path(folder)
    out: dict[str, list] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and rel not in ("params.json", "params.json.tmp"):
            out[rel] = [path.stat().st_size, digest(path)]
    return out


def verify(folder: str | Path, files: dict[str, list], digests: bool = True) -> None:
    """Every listed file is there with its size and digest; sizes first (cheap), then digests
    (unless ``digests`` is false: a :func:`snapshot`, whose digests were checked when it was made)."""
    folder = Path(folder)
    for rel, (size, _) in files.items():
        path = folder / rel
        if not path.is_file():
            raise ModelFileError(f"{path} is missing: the model folder is incomplete, rebuild it.")
        if path.stat().st_size != size:
            raise ModelFileError(
                f"{path} has {path.stat().st_size} bytes, params.json says {size}: it was truncated or "
                "replaced; rebuild the model or copy it again."
            )
    for rel, (_, expected) in files.items() if digests else ():
        if digest(folder / rel) != expected:
            raise ModelFileError(
                f"{folder / rel} does not match its checksum in params.json: it was changed after "
                "training; rebuild the model or copy it again."
            )


def snapshot(folder: str | Path, root: str | Path | None = None) -> Path:
    """A verified read-only copy of ``folder`` under ``root`` (default: the temp dir), made once per
    distinct model: its name is the digest of the folder's params.json."""
    folder = Path(folder)
    params = folder / "params.json"
    if not params.is_file():
        raise ModelFileError(f"{params} is missing: is {folder} a model folder? Train one first.")
    root = Path(root) if root else Path(tempfile.gettempdir()) / "autocomplete-models"
    root.mkdir(parents=True, exist_ok=True)
    target = root / digest(params)
    if target.is_dir():
        return target
    # one copy per model: other processes asking for the same one wait for it instead of copying too
    with open(root / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_dir():
            return target
        return _copy(folder, params, target)


def _copy(folder: Path, params: Path, target: Path) -> Path:
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".copy-"))
    try:
        shutil.copytree(folder, staging, dirs_exist_ok=True)
        try:
            files = json.loads((staging / "params.json").read_text(encoding="utf-8")).get("files", {})
        except (UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
            raise ModelFileError(f"{params} is not a valid params.json ({exc}): rebuild the model.") from exc
        try:  # a copy taken while the folder was being rewritten is never kept
            verify(staging, files)
        except ModelFileError as exc:  # name the file of the folder given, not of the copy
            raise ModelFileError(str(exc).replace(str(staging), str(folder))) from None
        for path in staging.rglob("*"):
            if path.is_file():
                path.chmod(0o444)
        try:
            os.rename(staging, target)  # atomic; another worker may have won the race
        except OSError:
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
