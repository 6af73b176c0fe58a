"""Fuzzy prefix matching: the label ranges whose prefix is a few edits from the typed text.

The labels are sorted by code point (:class:`~indexer.labels.LabelSet`), so they form an implicit
character trie: a node is ``(depth, lo, hi)``, the labels ``[lo, hi)`` sharing their first
``depth`` code points (the node's string), and its children are the runs of equal code points at
position ``depth`` inside ``[lo, hi)``. Only the top levels' runs are stored (:func:`trie_top`,
built at load: 14,000 runs for 60,000 labels), where nodes are wide and galloping over their labels
reads memory far apart; deeper, the runs are found by galloping search.

:func:`fuzzy_walk` walks that trie depth first carrying one row of the optimal string alignment
(restricted Damerau-Levenshtein: substitution, insertion, deletion and transposition of two
neighbours each cost 1) between the node's string and the whole typed text. The row's last cell
is the distance of the node's string to the typed text; its minimum never falls as the walk goes
deeper, so a subtree is cut as soon as the minimum exceeds the budget. A node within the budget
is reported as the range ``[lo, hi)`` with its cost and matched length (its depth: the first
``matched_len`` characters of each of its labels correspond to the typed text, the span a
widget highlights). Below a reported node the budget drops to its cost minus one, so a nested
range is reported only when it is strictly cheaper, and among equally cheap nested nodes only
the outermost. The cost of a label is therefore the smallest cost of the reported ranges that
contain it (the innermost one), and its matched length is the shortest prefix achieving it.

The first character is matched exactly (Elasticsearch's ``prefix_length: 1``): the walk starts
under the typed first character, and only when nothing is found there does a second pass search
the labels starting with any other character, adding ``first_char_penalty`` to their cost
(Meilisearch counts a first-letter typo double). Both passes share one bound on nodes visited.

Each pass goes budget by budget: a walk within one edit reports all ranges of cost 0 and 1, then
a walk within two adds only those of cost 2 (the result is the same as one walk within two; the
first walk costs about a tenth of the second). So when the node bound stops a walk, it is the
dearest matches that are missing, never the close ones.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from indexer.labels import encode, prefix_range
from indexer.params import FuzzyParams
from indexer.popularity import better, range_best


class FuzzyRanges(NamedTuple):
    """Label ranges near the typed text, sorted by cost, then by ``lo``.

    ``lo``, ``hi`` (int64): label ids ``[lo, hi)``; ``cost`` (int32): edits (plus the first
    character penalty when the first character differs); ``matched_len`` (int32): how many
    leading characters of each label in the range match the typed text. Ranges nest only with a
    strictly lower cost inside. ``nodes_visited``: rows computed (at most ``max_nodes``);
    ``truncated``: the node bound stopped the walk before it finished.
    """

    lo: np.ndarray
    hi: np.ndarray
    cost: np.ndarray
    matched_len: np.ndarray
    nodes_visited: int
    truncated: bool


@numba.njit(cache=True)
def _run_end(indptr: np.ndarray, chars: np.ndarray, start: int, hi: int, depth: int, c: int) -> int:
    """The end of the run of labels with code point ``c`` at ``depth`` that begins at ``start``.

    Every label in ``[start, hi)`` is longer than ``depth`` and they are sorted at ``depth``;
    galloping, so a short run costs a few probes whatever the size of the range.
    """
    known = start  # the last id known to be in the run
    step = 1
    bound = hi  # the first id known to be past it
    while known + step < hi:
        probe = known + step
        if chars[indptr[probe] + depth] != c:
            bound = probe
            break
        known = probe
        step *= 2
    lo, up = known + 1, bound
    while lo < up:
        mid = (lo + up) // 2
        if chars[indptr[mid] + depth] == c:
            lo = mid + 1
        else:
            up = mid
    return lo


_FAR = 1 << 20  # a distance past any budget
TOP_DEPTH = 4  # the trie levels whose child runs are kept as arrays (see :func:`trie_top`)


class TrieTop(NamedTuple):
    """The child runs of the implicit trie's top levels, kept as arrays, so the walk reads a
    wide node's children in order instead of galloping over its labels (two dependent reads of
    memory far apart per probe, the walk's main cost at the top).

    A run at depth ``d`` is a maximal block of labels, all longer than ``d``, that share their
    first ``d + 1`` code points. ``starts[level_ptr[d]:level_ptr[d + 1]]`` are the first label
    ids of the runs at depth ``d`` (ascending), ``points`` the code point at ``d`` of each.
    Inside a node of depth ``d`` a run ends where the next one starts or where the node ends.
    """

    starts: np.ndarray  # int64
    points: np.ndarray  # int32
    level_ptr: np.ndarray  # int64 (depth + 1,)


@numba.njit(cache=True)
def _run_starts(indptr: np.ndarray, chars: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    n = indptr.shape[0] - 1
    starts = np.empty(n, dtype=np.int64)
    points = np.empty(n, dtype=np.int32)
    found = 0
    for i in range(n):
        a = indptr[i]
        if indptr[i + 1] - a <= depth:
            continue
        new = i == 0 or indptr[i] - indptr[i - 1] <= depth
        if not new:
            b = indptr[i - 1]
            for j in range(depth + 1):
                if chars[a + j] != chars[b + j]:
                    new = True
                    break
        if new:
            starts[found] = i
            points[found] = chars[a + depth]
            found += 1
    return starts[:found].copy(), points[:found].copy()


def trie_top(indptr: np.ndarray, chars: np.ndarray, depth: int = TOP_DEPTH) -> TrieTop:
    """The :class:`TrieTop` of the sorted labels ``indptr``/``chars``, ``depth`` levels deep
    (0: none, every node's children found by galloping)."""
    levels = [_run_starts(indptr, chars, d) for d in range(depth)]
    sizes = [len(s) for s, _ in levels]
    return TrieTop(
        np.concatenate([s for s, _ in levels]) if levels else np.empty(0, dtype=np.int64),
        np.concatenate([p for _, p in levels]) if levels else np.empty(0, dtype=np.int32),
        np.concatenate(([0], np.cumsum(sizes))).astype(np.int64),
    )


@numba.njit(cache=True)
def _walk(
    indptr: np.ndarray,
    chars: np.ndarray,
    top_runs: TrieTop,
    typed: np.ndarray,
    budget: int,
    penalty: int,
    root_lo: int,
    root_hi: int,
    skip_lo: int,
    min_record: int,
    max_nodes: int,
    visited: int,
    out: np.ndarray,
    n_out: int,
) -> tuple[int, int, np.ndarray, int]:
    """Depth-first walk under the root ``(0, root_lo, root_hi)``, skipping the root child at
    ``skip_lo``; reports rows ``(lo, hi, cost + penalty, depth)`` of cost ``>= min_record`` into
    ``out`` (grown as needed): the cheaper ones were reported by a walk with a lower budget, and a
    row here whose range such a cheaper node spans too is marked deleted (cost -1).
    Returns the nodes visited so far (``max_nodes + 1`` when the bound stopped it), 1 when it was
    truncated, ``out`` and its number of rows."""
    m = typed.shape[0]
    max_depth = m + budget + 2
    rows = np.empty((max_depth, m + 1), dtype=np.int32)
    los = np.empty(max_depth, dtype=np.int64)
    his = np.empty(max_depth, dtype=np.int64)
    cursor = np.empty(max_depth, dtype=np.int64)
    budgets = np.empty(max_depth, dtype=np.int64)
    last = np.empty(max_depth, dtype=np.int64)  # the node string's last code point
    rep = np.empty(max_depth, dtype=np.int64)  # the row of the nearest reported node on the path
    run = np.empty(max_depth, dtype=np.int64)  # at a depth of ``top_runs``: the cursor's run
    starts, points, level_ptr = top_runs
    indexed = level_ptr.shape[0] - 1
    for j in range(m + 1):
        rows[0, j] = j
    los[0], his[0], cursor[0], budgets[0], last[0], rep[0] = root_lo, root_hi, root_lo, budget, -1, -1
    if root_lo < root_hi and indptr[root_lo + 1] == indptr[root_lo]:
        cursor[0] = root_lo + 1  # the empty label has no child
    if indexed > 0:
        run[0] = np.searchsorted(starts[level_ptr[0] : level_ptr[1]], cursor[0])
    top = 0
    while top >= 0:
        p = cursor[top]
        hi = his[top]
        if p >= hi:
            top -= 1
            continue
        if top < indexed:
            r = level_ptr[top] + run[top]
            c = points[r]
            e = starts[r + 1] if r + 1 < level_ptr[top + 1] and starts[r + 1] < hi else hi
            run[top] += 1
        else:
            c = chars[indptr[p] + top]
            e = _run_end(indptr, chars, p, hi, top, c)
        cursor[top] = e
        if top == 0 and p == skip_lo:
            continue
        visited += 1
        if visited > max_nodes:
            return visited, 1, out, n_out
        k = top + 1  # the child's depth; its string ends with c, its parent's with last[top]
        parent = rows[top]
        row = rows[k]
        row[0] = k
        pc = last[top]
        low = k
        # only cells within the budget of the diagonal can be <= budget (D[k, j] >= |k - j|);
        # the cells just outside the band are marked far, which is all a deeper row reads of them
        child_budget = budgets[top]
        j_lo = max(1, k - child_budget)
        j_hi = min(m, k + child_budget)
        if j_lo > 1:
            row[j_lo - 1] = _FAR
        if j_hi < m:
            row[j_hi + 1] = _FAR
        for j in range(j_lo, j_hi + 1):
            t = typed[j - 1]
            v = parent[j - 1] + (0 if c == t else 1)
            if parent[j] + 1 < v:
                v = parent[j] + 1
            if row[j - 1] + 1 < v:
                v = row[j - 1] + 1
            if k >= 2 and j >= 2 and c == typed[j - 2] and pc == t and rows[top - 1, j - 2] + 1 < v:
                v = rows[top - 1, j - 2] + 1
            row[j] = v
            if v < low:
                low = v
        cost = row[m] if j_hi == m else _FAR
        reported = rep[top]
        same = reported >= 0 and out[reported, 0] == p and out[reported, 1] == e
        if cost <= child_budget and cost < min_record:
            if same:
                out[reported, 2] = -1
            child_budget = cost - 1
        elif cost <= child_budget:
            if not same:
                # a new range; when the cheaper node spans the same labels as its reported
                # ancestor (a chain of single children), it takes that row over instead
                if n_out == out.shape[0]:
                    grown = np.empty((2 * out.shape[0], 4), dtype=np.int64)
                    grown[:n_out] = out
                    out = grown
                reported = n_out
                n_out += 1
            out[reported, 0], out[reported, 1], out[reported, 2], out[reported, 3] = p, e, cost + penalty, k
            child_budget = cost - 1
        if low <= child_budget:
            first = p
            if indptr[p + 1] - indptr[p] == k:
                first = p + 1  # the label equal to the child's string has no child
            if first < e:
                los[k], his[k], cursor[k], budgets[k], last[k], rep[k] = (
                    p,
                    e,
                    first,
                    child_budget,
                    c,
                    reported,
                )
                if k < indexed:
                    level = starts[level_ptr[k] : level_ptr[k + 1]]
                    run[k] = np.searchsorted(level, first)
                top = k
    return visited, 0, out, n_out


@numba.njit(cache=True)
def _covered(out: np.ndarray, n_out: int) -> int:
    """How many labels the (nested) ranges in the first ``n_out`` rows of ``out`` cover."""
    rows = out[:n_out]
    keep = rows[:, 2] >= 0
    lo, hi = rows[keep, 0], rows[keep, 1]
    order = np.argsort(lo * (np.max(hi) + 1 if hi.shape[0] else 1) - hi, kind="mergesort")
    total, reach = 0, -1
    for i in order:
        if lo[i] >= reach:
            total += hi[i] - lo[i]
            reach = hi[i]
    return total


@numba.njit(cache=True)
def _tiers(
    indptr: np.ndarray,
    chars: np.ndarray,
    top_runs: TrieTop,
    typed: np.ndarray,
    max_distance: int,
    penalty: int,
    root_lo: int,
    root_hi: int,
    skip_lo: int,
    enough_labels: int,
    max_nodes: int,
    visited: int,
    out: np.ndarray,
    n_out: int,
) -> tuple[int, int, np.ndarray, int]:
    """One pass, budget by budget: a walk within 1 edit reports every range of cost 0 and 1, then
    a walk within 2 adds those of cost 2 (the same ranges a single walk within 2 reports, for a
    fifth to a seventh more nodes), so a node bound only ever cuts the dearest tier short. The
    walk within 2 is skipped when ``enough_labels > 0`` labels were found within 1."""
    budget = min(1, max_distance)
    min_record = 0
    truncated = 0
    while True:
        visited, truncated, out, n_out = _walk(
            indptr, chars, top_runs, typed, budget, penalty, root_lo, root_hi, skip_lo, min_record, max_nodes,
            visited, out, n_out,
        )  # fmt: skip
        if truncated == 1 or budget >= max_distance:
            return visited, truncated, out, n_out
        if enough_labels > 0 and _covered(out, n_out) >= enough_labels:
            return visited, truncated, out, n_out
        min_record = budget + 1
        budget += 1


@numba.njit(cache=True)
def fuzzy_walk(
    indptr: np.ndarray,
    chars: np.ndarray,
    top_runs: TrieTop,
    typed: np.ndarray,
    max_distance: int,
    first_char_exact: bool,
    first_char_penalty: int,
    max_nodes: int,
    max_ranges: int,
    enough_labels: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, bool]:
    """The label ranges whose common prefix is within ``max_distance`` edits of ``typed``.

    ``indptr``/``chars``: the sorted labels' code point CSR, ``top_runs`` its :func:`trie_top`;
    ``typed``: int32 code points.
    Returns ``lo``, ``hi`` (int64), ``cost``, ``matched_len`` (int32), sorted by cost then ``lo``
    and cut to ``max_ranges``; the nodes visited; whether the node bound cut the walk short.
    ``enough_labels > 0``: look for matches two edits away only when fewer labels than that are
    within one. An empty ``typed`` matches every label at cost 0 (the exact prefix range of "").
    Scratch memory is ``(len(typed) + max_distance + 2) * (len(typed) + 1)`` int32 per walk
    (42 kB at the protocol's 100-character cap on typed text).
    """
    n = indptr.shape[0] - 1
    m = typed.shape[0]
    out = np.empty((16, 4), dtype=np.int64)
    n_out = 0
    visited = 0
    truncated = 0
    if m == 0:
        if n > 0:
            out[0, 0], out[0, 1], out[0, 2], out[0, 3] = 0, n, 0, 0
            n_out = 1
    else:
        lo, hi = 0, n
        if first_char_exact:
            lo, hi = prefix_range(indptr, chars, typed[:1])
        visited, truncated, out, n_out = _tiers(
            indptr, chars, top_runs, typed, max_distance, 0, lo, hi, -1, enough_labels, max_nodes, visited,
            out, n_out,
        )  # fmt: skip
        if first_char_exact and n_out == 0 and truncated == 0:
            visited, truncated, out, n_out = _tiers(
                indptr, chars, top_runs, typed, max_distance, first_char_penalty, 0, n, lo if lo < hi else -1,
                enough_labels, max_nodes, visited, out, n_out,
            )  # fmt: skip
    rows = out[:n_out][out[:n_out, 2] >= 0]
    order = np.argsort(rows[:, 2] * (n + 1) + rows[:, 0], kind="mergesort")[:max_ranges]
    r = order.shape[0]
    lo_out = np.empty(r, dtype=np.int64)
    hi_out = np.empty(r, dtype=np.int64)
    cost_out = np.empty(r, dtype=np.int32)
    len_out = np.empty(r, dtype=np.int32)
    for i in range(r):
        row = rows[order[i]]
        lo_out[i], hi_out[i], cost_out[i], len_out[i] = row[0], row[1], row[2], row[3]
    return lo_out, hi_out, cost_out, len_out, min(visited, max_nodes), truncated == 1


def fuzzy_ranges(
    indptr: np.ndarray, chars: np.ndarray, top_runs: TrieTop, typed: str, params: FuzzyParams
) -> FuzzyRanges:
    """:func:`fuzzy_walk` for an already normalized typed text, with the distance from ``params``."""
    points = encode(typed)
    lo, hi, cost, matched_len, visited, truncated = fuzzy_walk(
        indptr,
        chars,
        top_runs,
        points,
        params.max_distance(points.shape[0]),
        params.first_char_exact,
        params.first_char_penalty,
        params.max_nodes,
        params.max_ranges,
        params.enough_labels,
    )
    return FuzzyRanges(lo, hi, cost, matched_len, int(visited), bool(truncated))


@numba.njit(cache=True)
def _segments(
    lo: np.ndarray, hi: np.ndarray, cost: np.ndarray, matched_len: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The union of nested (laminar) ranges cut into disjoint segments sorted by position, each
    with the cost and matched length of the cheapest range covering it."""
    r = lo.shape[0]
    order = np.argsort(lo * (np.max(hi) + 1 if r else 1) - hi, kind="mergesort")  # outer first
    seg = np.empty((2 * r + 1, 4), dtype=np.int64)
    n_seg = 0
    stack = np.empty((r + 1, 3), dtype=np.int64)  # (hi, cost, matched_len) of the open ranges
    depth = 0
    pos = 0
    for step in range(r + 1):
        start = lo[order[step]] if step < r else (1 << 62)
        while depth > 0 and stack[depth - 1, 0] <= start:  # close the ranges ending before
            end = stack[depth - 1, 0]
            if pos < end:
                seg[n_seg, 0], seg[n_seg, 1] = pos, end
                seg[n_seg, 2], seg[n_seg, 3] = stack[depth - 1, 1], stack[depth - 1, 2]
                n_seg += 1
                pos = end
            depth -= 1
        if step == r:
            break
        i = order[step]
        if hi[i] <= lo[i]:
            continue
        if depth > 0 and pos < lo[i]:  # the enclosing range's part before this one
            seg[n_seg, 0], seg[n_seg, 1] = pos, lo[i]
            seg[n_seg, 2], seg[n_seg, 3] = stack[depth - 1, 1], stack[depth - 1, 2]
            n_seg += 1
        pos = max(pos, lo[i])
        c, length = cost[i], matched_len[i]
        if depth > 0 and stack[depth - 1, 1] <= c:  # a dearer range inside a cheaper one
            c, length = stack[depth - 1, 1], stack[depth - 1, 2]
        stack[depth, 0], stack[depth, 1], stack[depth, 2] = hi[i], c, length
        depth += 1
    return seg[:n_seg, 0].copy(), seg[:n_seg, 1].copy(), seg[:n_seg, 2].copy(), seg[:n_seg, 3].copy()


@numba.njit(cache=True)
def _top_in_intervals(
    table: np.ndarray, counts: np.ndarray, lo: np.ndarray, hi: np.ndarray, mask: np.ndarray, k: int
) -> np.ndarray:
    """The ``k`` most popular ids in the disjoint intervals ``[lo, hi)`` selected by ``mask``:
    MPC's interval splitting, started from several intervals."""
    r = lo.shape[0]
    starts = np.empty(r + 2 * k + 1, dtype=np.int64)
    ends = np.empty(r + 2 * k + 1, dtype=np.int64)
    bests = np.empty(r + 2 * k + 1, dtype=np.int64)
    n_int = 0
    total = 0
    for i in range(r):
        if mask[i] and hi[i] > lo[i]:
            starts[n_int], ends[n_int] = lo[i], hi[i]
            bests[n_int] = range_best(table, counts, lo[i], hi[i])
            n_int += 1
            total += hi[i] - lo[i]
    ids = np.empty(min(k, total), dtype=np.int64)
    for out in range(ids.shape[0]):
        pick = 0
        for j in range(1, n_int):
            if better(counts, bests[j], bests[pick]):
                pick = j
        best, s, e = bests[pick], starts[pick], ends[pick]
        ids[out] = best
        n_int -= 1
        starts[pick], ends[pick], bests[pick] = starts[n_int], ends[n_int], bests[n_int]
        if s < best:
            starts[n_int], ends[n_int], bests[n_int] = s, best, range_best(table, counts, s, best)
            n_int += 1
        if best + 1 < e:
            starts[n_int], ends[n_int], bests[n_int] = best + 1, e, range_best(table, counts, best + 1, e)
            n_int += 1
    return ids


@numba.njit(cache=True)
def top_in_ranges(
    table: np.ndarray,
    counts: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    cost: np.ndarray,
    matched_len: np.ndarray,
    k: int,
    by_cost: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` most popular labels in the union of the ranges, with each one's cost and matched
    length (those of the cheapest range containing it).

    ``table`` is MPC's sparse table over ``counts`` (:func:`indexer.popularity.build_sparse_table`),
    queried in O(1) per interval; ties go to the lower id, as in MPC. ``by_cost``: the cheapest
    labels first, by popularity within a cost (exact matches before any correction), instead of
    by popularity alone. About O(r log r + k (r + k)) for ``r`` ranges.
    """
    seg_lo, seg_hi, seg_cost, seg_len = _segments(lo, hi, cost, matched_len)
    if by_cost:
        ids = np.empty(0, dtype=np.int64)
        for c in np.unique(seg_cost):
            if ids.shape[0] >= k:
                break
            more = _top_in_intervals(table, counts, seg_lo, seg_hi, seg_cost == c, k - ids.shape[0])
            ids = np.concatenate((ids, more))
    else:
        ids = _top_in_intervals(table, counts, seg_lo, seg_hi, seg_cost >= 0, k)
    where = np.searchsorted(seg_lo, ids, side="right") - 1
    return ids, seg_cost[where].astype(np.int32), seg_len[where].astype(np.int32)


def warm_up(
    indptr: np.ndarray, chars: np.ndarray, top_runs: TrieTop, table: np.ndarray, counts: np.ndarray
) -> None:
    """Compile the kernels for these very arrays (memory-mapped ones are read-only, a type of
    their own to numba) before the first request: a walk with each pass and a top-k pick, by cost
    as :class:`~autocomplete.generators.FuzzyPrefix` asks for it."""
    params = FuzzyParams()
    first = chr(int(chars[0])) if chars.shape[0] else "a"
    for typed in ("", first + "bcdefghij", "\x00bcd"):
        r = fuzzy_ranges(indptr, chars, top_runs, typed, params)
        top_in_ranges(table, counts, r.lo, r.hi, r.cost, r.matched_len, 10, True)
