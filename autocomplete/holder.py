"""The model in service, held so that a new one can replace it between two keystrokes.

Every request reads :attr:`ModelHolder.current` once and uses that completer to the end, so a swap
never mixes two models in one answer; the old completer stays alive for the requests that hold it.
"""

from __future__ import annotations

import gc

from autocomplete.completer import Completer


def freeze_heap() -> None:
    """Move every object alive now (the libraries and the model just loaded and warmed) out of the
    cyclic collector's reach: a full collection over them takes 100-200 ms, a pause the keystroke
    it falls on would wait for. They are still freed by reference counting when a newer model
    replaces them (a loaded completer holds no reference cycles: tested)."""
    gc.freeze()


class ModelHolder:
    """The completer every handler uses; :meth:`swap` replaces it atomically."""

    def __init__(self, completer: Completer) -> None:
        self._current = completer

    @property
    def current(self) -> Completer:
        return self._current

    def swap(self, completer: Completer) -> Completer:
        """Serve ``completer`` from the next request on; returns the one it replaces."""
        previous, self._current = self._current, completer
        return previous
