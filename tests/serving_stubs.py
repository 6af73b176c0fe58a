"""Test doubles for the service tests: completers that show what the server gave them."""

from __future__ import annotations

import time
from collections.abc import Sequence

from autocomplete.candidates import NO_HISTORY, History
from autocomplete.completer import Completion


class EchoCompleter:
    """Completes ``prefix`` with the session context it was given, so tests can see the context."""

    kind = "echo"
    info = {"id": "echo", "kind": "echo", "labels": 0, "trained_at": ""}

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self.histories: list[History] = []  # the history each call was given
        self.prepared: list[tuple[str, ...]] = []  # the contexts prepared at submits

    def normalize_prefix(self, prefix: str) -> str:
        return prefix.lower()

    def normalize_query(self, query: str) -> str:
        return query

    def prepare(self, previous: Sequence[str]) -> None:
        self.prepared.append(tuple(previous))

    def warm_up(self) -> None:
        return None

    def complete(
        self, prefix: str, previous: Sequence[str] = (), k: int = 10, history: History = NO_HISTORY
    ) -> list[Completion]:
        self.calls.append((prefix, tuple(previous)))
        self.histories.append(dict(history))
        if self.delay:
            time.sleep(self.delay)  # synchronous CPU-like work, as the real models do
        context = previous[-1] if previous else "nothing"
        found = [Completion(f"{prefix} after {context}", 1.0)]
        found += [Completion(f"{prefix} {i}", 0.5 / (i + 1)) for i in range(k)]
        return found[:k]


class FailingCompleter(EchoCompleter):
    def complete(
        self, prefix: str, previous: Sequence[str] = (), k: int = 10, history: History = NO_HISTORY
    ) -> list[Completion]:
        if prefix == "boom":
            raise RuntimeError("the model broke")
        return super().complete(prefix, previous, k, history)


class SpyCompleter:
    """A real completer (a model folder loaded as the server loads it) that keeps the history each
    keystroke was given: what the history generator will read, seen before it exists."""

    def __init__(self, completer) -> None:
        self.completer = completer
        self.kind = completer.kind
        self.info = completer.info
        self.histories: list[dict[str, tuple[int, float]]] = []

    def normalize_prefix(self, prefix: str) -> str:
        return self.completer.normalize_prefix(prefix)

    def normalize_query(self, query: str) -> str:
        return self.completer.normalize_query(query)

    def prepare(self, previous: Sequence[str]) -> None:
        self.completer.prepare(previous)

    def warm_up(self) -> None:
        self.completer.warm_up()

    def complete(
        self, prefix: str, previous: Sequence[str] = (), k: int = 10, history: History = NO_HISTORY
    ) -> list[Completion]:
        self.histories.append(dict(history))
        return self.completer.complete(prefix, previous, k, history)
