"""The model in service, held so that a new one can replace it between two keystrokes.

Every request reads :attr:`ModelHolder.current` once and uses that completer to the end, so a swap
never mixes two models in one answer; the old completer stays alive for the requests that hold it.
"""

from __future__ import annotations

from autocomplete.completer import Completer


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
