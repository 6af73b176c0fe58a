"""The completer interface every model kind implements, and the loader that picks the kind.

``complete(prefix, previous, k)`` takes the raw typed text and the session's previous queries
(most recent last) and returns at most ``k`` ranked completions. Each starts with the
normalized prefix; ``source`` says which part of the model produced it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol


class ModelLoadError(ValueError):
    """A model folder is missing, truncated or from another format version: rebuild it."""


@dataclasses.dataclass(frozen=True, slots=True)
class Completion:
    text: str
    score: float
    source: str = "model"


class Completer(Protocol):
    """What the server, the evaluation and the CLI know of a model."""

    kind: str

    def complete(self, prefix: str, previous: Sequence[str] = (), k: int = 10) -> list[Completion]:
        ...

    def normalize_prefix(self, prefix: str) -> str:
        ...

    def warm_up(self) -> None:
        ...


FORMAT_VERSION = 1


def read_params(folder: str | Path) -> dict:
    """The ``params.json`` of a model folder, checked for its format version."""
    path = Path(folder) / "params.json"
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing: is {folder} a model folder? Build one with 'autocomplete train'.")
    try:
        params = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path} is not valid JSON ({exc}); the model is corrupt, rebuild it.") from exc
    if not isinstance(params, dict) or params.get("format_version") != FORMAT_VERSION:
        found = params.get("format_version") if isinstance(params, dict) else None
        raise ModelLoadError(
            f"{path} has format_version {found!r}, this code reads {FORMAT_VERSION}; rebuild the model."
        )
    return params


def load_completer(folder: str | Path, warm_up: bool = True) -> Completer:
    """Load any model folder written by ``autocomplete train``; JIT-warm it unless told not to."""
    params = read_params(folder)
    kind = params.get("kind")
    completer: Completer
    if kind == "mpc":
        from autocomplete.popular import PopularCompleter

        completer = PopularCompleter.load(folder)
    elif kind == "xmr":
        from autocomplete.xmr import XmrCompleter

        completer = XmrCompleter.load(folder)
    else:
        raise ModelLoadError(f"{Path(folder) / 'params.json'} names unknown model kind {kind!r}.")
    if warm_up:
        completer.warm_up()
    return completer
