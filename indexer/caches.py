"""A lookup kept in a plain dict between calls: what the serving path asks again keystroke after
keystroke (label texts, word ids, label ids of generated texts), bounded by emptying the dict
when it would grow past its limit (cheaper per call than least-recently-used bookkeeping)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from itertools import repeat
from operator import is_not
from typing import TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def through_cache(
    cache: dict[K, V], keys: Sequence[K], compute: Callable[[list[K]], list[V]], limit: int
) -> list[V]:
    """The value of every key: from ``cache``, or computed by one call of ``compute`` on the
    distinct missing keys and kept (``cache`` is emptied first when it would pass ``limit``)."""
    out = list(map(cache.get, keys))
    if all(map(is_not, out, repeat(None))):  # by identity: values may be arrays
        return out  # type: ignore[return-value]  # every key was kept
    missing = list(dict.fromkeys(key for key, value in zip(keys, out) if value is None))
    fresh = dict(zip(missing, compute(missing)))
    if len(cache) + len(fresh) > limit:
        cache.clear()
    cache.update(fresh)
    return [fresh[key] if value is None else value for key, value in zip(keys, out)]
