"""The completer interface every model kind implements, and the loader that picks the kind.

``complete(prefix, previous, k)`` takes the raw typed text and the session's previous queries
(most recent last) and returns at most ``k`` ranked completions. Each starts with the
normalized prefix; ``source`` says which part of the model produced it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from indexer.modelio import ModelFileError, read_params


@dataclasses.dataclass(frozen=True, slots=True)
class Completion:
    text: str
    score: float
    source: str = "model"


class Completer(Protocol):
    """What the server, the evaluation and the CLI know of a model."""

    kind: str

    def complete(self, prefix: str, previous: Sequence[str] = (), k: int = 10) -> list[Completion]: ...

    def normalize_prefix(self, prefix: str) -> str: ...

    def warm_up(self) -> None: ...


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
        raise ModelFileError(f"{Path(folder) / 'params.json'} names unknown model kind {kind!r}.")
    if warm_up:
        completer.warm_up()
    return completer
