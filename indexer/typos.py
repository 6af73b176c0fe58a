"""A seeded keyboard-typo model: one plausible mistake in a typed prefix.

Each prefix of three or more characters gets exactly one edit, drawn from ``random.Random``:
substitution by a QWERTY-adjacent key (40%), deletion (20%), insertion of a key adjacent to a
neighbouring character (20%) and transposition of two neighbouring characters (20%). Variant
``"A"`` never touches the first character (the person saw what they started with); variant
``"B"`` may. Shorter prefixes are returned unchanged with the kind ``"none"`` and draw nothing
from the generator, so the draws follow the examples that get a typo, in order.

Every result is exactly one optimal-string-alignment edit from its input (a transposition of two
equal characters, which would change nothing, is never drawn) and is still a normalized prefix:
no edit creates a leading space or two spaces in a row, so the normalizer the completer applies
leaves the typo intact.

The keyboard: the digit row and the three letter rows of a US QWERTY layout, each row shifted
right of the one above by a quarter to a half key as on a real keyboard; two keys are adjacent
when they touch (same row, next key; or the next row, less than one key width apart
horizontally). The space bar is a key too: it touches ``c v b n m``, the keys right above it, so
"rose bush" may become "rosebbush" or "rose nush". Other characters (punctuation, non-ASCII,
capitals, which the benchmark's normalization never leaves) have no neighbours: they can be
deleted or transposed but are never substituted, and nothing is inserted next to them alone.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

KINDS = ("substitution", "deletion", "insertion", "transposition")
WEIGHTS = (0.4, 0.2, 0.2, 0.2)
VARIANTS = ("A", "B")
MIN_LENGTH = 3

_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")
_ROW_OFFSETS = (0.0, 0.5, 0.75, 1.25)  # horizontal position of each row's first key, in key widths
_SPACE_NEIGHBOURS = "cvbnm"


def _adjacency() -> dict[str, str]:
    position = {
        key: (row, offset + i)
        for row, (keys, offset) in enumerate(zip(_ROWS, _ROW_OFFSETS))
        for i, key in enumerate(keys)
    }
    neighbours: dict[str, list[str]] = {key: [] for key in position}
    for a, (row_a, x_a) in position.items():
        for b, (row_b, x_b) in position.items():
            if a != b and (
                (row_a == row_b and abs(x_a - x_b) == 1) or (abs(row_a - row_b) == 1 and abs(x_a - x_b) < 1)
            ):
                neighbours[a].append(b)
    neighbours[" "] = list(_SPACE_NEIGHBOURS)
    for key in _SPACE_NEIGHBOURS:
        neighbours[key].append(" ")
    return {key: "".join(sorted(keys)) for key, keys in neighbours.items()}


QWERTY_NEIGHBOURS: dict[str, str] = _adjacency()
"""Each key's adjacent keys (sorted), for ``a-z``, ``0-9`` and the space bar."""


def _is_normalized(text: str) -> bool:
    return not text.startswith(" ") and "  " not in text


def _edits(prefix: str, kind: str, first: int) -> list[str]:
    """Every distinct result of one edit of ``kind`` at positions ``>= first``, in a fixed order."""
    n = len(prefix)
    out: list[str] = []
    if kind == "substitution":
        for i in range(first, n):
            for key in QWERTY_NEIGHBOURS.get(prefix[i], ""):
                out.append(prefix[:i] + key + prefix[i + 1 :])
    elif kind == "deletion":
        out = [prefix[:i] + prefix[i + 1 :] for i in range(first, n)]
    elif kind == "insertion":
        for gap in range(max(first, 0), n + 1):  # gap 0 is before the first character
            keys = set(QWERTY_NEIGHBOURS.get(prefix[gap - 1], "") if gap > 0 else "")
            keys.update(QWERTY_NEIGHBOURS.get(prefix[gap], "") if gap < n else "")
            out.extend(prefix[:gap] + key + prefix[gap:] for key in sorted(keys))
    elif kind == "transposition":
        for i in range(first, n - 1):
            if prefix[i] != prefix[i + 1]:
                out.append(prefix[:i] + prefix[i + 1] + prefix[i] + prefix[i + 2 :])
    else:
        raise ValueError(f"unknown edit kind {kind!r}; choose one of {KINDS}")
    return list(dict.fromkeys(t for t in out if _is_normalized(t)))


def apply_typo(prefix: str, rng: random.Random, variant: str = "A") -> tuple[str, str]:
    """``prefix`` with one keyboard typo, and the kind of edit (``"none"`` below three characters).

    The kind is drawn with :data:`WEIGHTS`; if it has no possible edit here (rare: e.g. no
    transposition in "abb" under variant A), it is drawn again among the other kinds, so the
    weights are renormalized over the kinds that are possible. Then one of that kind's distinct
    results is drawn uniformly.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown typo variant {variant!r}; choose one of {VARIANTS}")
    if len(prefix) < MIN_LENGTH:
        return prefix, "none"
    first = 1 if variant == "A" else 0
    remaining = list(zip(KINDS, WEIGHTS))
    while remaining:
        pick = rng.choices(range(len(remaining)), weights=[w for _, w in remaining])[0]
        kind = remaining[pick][0]
        results = _edits(prefix, kind, first)
        if results:
            return results[rng.randrange(len(results))], kind
        del remaining[pick]
    return prefix, "none"


def typo_examples(
    examples: Sequence[tuple[str, str, str]], variant: str = "A", seed: int = 0
) -> tuple[list[tuple[str, str, str]], list[str]]:
    """The ``(previous, prefix, next)`` examples with a typo in each prefix, and each edit's kind.

    One ``random.Random(seed)`` draws in example order, so the same examples always get the same
    typos. The previous query and the target are left as they are.
    """
    rng = random.Random(seed)
    out: list[tuple[str, str, str]] = []
    kinds: list[str] = []
    for previous, prefix, nxt in examples:
        typo, kind = apply_typo(prefix, rng, variant)
        out.append((previous, typo, nxt))
        kinds.append(kind)
    return out, kinds
