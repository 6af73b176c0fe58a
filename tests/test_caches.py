"""A lookup kept in a bounded dict: the same answers as computing every time, each key asked once."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.caches import through_cache


@settings(max_examples=50, deadline=None)
@given(asks=st.lists(st.lists(st.integers(0, 9), max_size=8), max_size=10), limit=st.integers(1, 12))
def test_every_answer_is_the_computed_value_and_only_the_missing_keys_are_computed(asks, limit):
    cache: dict[int, str] = {}
    computed: list[list[int]] = []
    largest = 0  # the most keys one call computed: the cache may hold that many past the limit

    def compute(missing: list[int]) -> list[str]:
        computed.append(missing)
        return [f"v{k}" for k in missing]

    for keys in asks:
        held, computed[:] = set(cache), []
        assert through_cache(cache, keys, compute, limit) == [f"v{k}" for k in keys]
        missing = [k for k in dict.fromkeys(keys) if k not in held]
        assert computed == ([missing] if missing else [])  # one call, each missing key once
        largest = max(largest, len(missing))
        assert len(cache) <= max(limit, largest)


def test_array_values_are_kept_and_returned_as_computed():
    import numpy as np

    cache: dict[str, np.ndarray] = {}
    computed: list[list[str]] = []

    def compute(missing: list[str]) -> list[np.ndarray]:
        computed.append(missing)
        return [np.arange(len(k)) for k in missing]

    first = through_cache(cache, ["ab", "abc"], compute, 8)
    again = through_cache(cache, ["abc", "ab"], compute, 8)
    assert computed == [["ab", "abc"]] and again[0] is first[1] and again[1] is first[0]
