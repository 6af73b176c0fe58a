"""numba kernels: the n-grams of many texts at once, as integer ids, for the TF-IDF blocks.

A batch of distinct texts crosses into a kernel as one code point array (``chars``, int32) with
``text_ptr`` (int64, text ``t`` is ``chars[text_ptr[t]:text_ptr[t + 1]]``). Words are split on
the code points Python's ``str.split()`` splits on (:func:`space_table`).

Every distinct n-gram gets a dense id from an open-addressing hash table (int64 keys, grown by
doubling). An n-gram of length 1 is keyed by its code point (character n-grams) or its word id
(word n-grams); a longer one by (id of its first ``n - 1`` items, last item), so any length gets
an exact key without hashing strings. For each text the kernels emit its distinct n-grams in
first-occurrence order with their summed weights, accumulated in occurrence order: exactly the
``dict`` the pure-Python ``_terms`` of :mod:`indexer.tfidf` builds for one text, so batch rows
and the per-keystroke vector agree to the last bit before the idf and the norm.

The kernels release the GIL, so the two blocks of an input vectorizer run in two threads.
Per n-gram id the kernels also return where it first occurs (text, start, end), so the caller
builds one string per distinct n-gram, never per occurrence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numba
import numpy as np

_EMPTY = np.int64(-1)
_FIRST_BITS = 16  # initial table: 2**16 slots


class Grams(NamedTuple):
    """The n-grams of a batch of distinct texts.

    ``row_ptr`` (int64, n_texts + 1), ``ids`` (int32) and ``weights`` (float64): text ``t``'s
    distinct n-grams and their weighted counts are ``ids/weights[row_ptr[t]:row_ptr[t + 1]]``.
    Per id (``n_ids`` of them): ``first_text``, ``first_start``, ``first_end`` (code point offsets
    inside that text), ``marker`` (char n-grams: the n-gram starts with the start-of-word space)
    or ``clean`` (word n-grams: the words are separated by single spaces in that text), and
    ``emitted`` (the id is an n-gram of the wanted lengths, not only a shorter step of one).
    """

    row_ptr: np.ndarray
    ids: np.ndarray
    weights: np.ndarray
    first_text: np.ndarray
    first_start: np.ndarray
    first_end: np.ndarray
    flag: np.ndarray
    emitted: np.ndarray


def space_table() -> np.ndarray:
    """``table[c]`` is True where ``chr(c).isspace()`` (what ``str.split()`` splits on); the last
    whitespace code point is U+3000, so the table stops there."""
    return np.array([chr(c).isspace() for c in range(0x3001)], dtype=np.bool_)


SPACE = space_table()  # what the kernels split words on


def code_points(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``texts`` as one int32 code point array and int64 offsets (lone surrogates kept)."""
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    text_ptr = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=text_ptr[1:])
    raw = "".join(texts).encode("utf-32-le", "surrogatepass")
    return np.frombuffer(raw, dtype=np.int32), text_ptr


@numba.njit(cache=True)
def _hash_slot(keys: np.ndarray, key: np.int64, shift: np.uint64) -> np.int64:
    """The slot of ``key`` in ``keys`` (linear probing from a Fibonacci hash), or the empty slot to use."""
    mask = keys.shape[0] - 1
    h = np.int64((np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)) >> shift)
    while True:
        k = keys[h]
        if k == key or k == _EMPTY:
            return h
        h = (h + 1) & mask


@numba.njit(cache=True)
def _grown(keys: np.ndarray, vals: np.ndarray, shift: np.uint64) -> tuple[np.ndarray, np.ndarray, np.uint64]:
    """The table with twice the slots, every key re-inserted."""
    new_keys = np.full(keys.shape[0] * 2, _EMPTY, dtype=np.int64)
    new_vals = np.empty(keys.shape[0] * 2, dtype=np.int32)
    new_shift = shift - np.uint64(1)
    for i in range(keys.shape[0]):
        if keys[i] != _EMPTY:
            h = _hash_slot(new_keys, keys[i], new_shift)
            new_keys[h] = keys[i]
            new_vals[h] = vals[i]
    return new_keys, new_vals, new_shift


@numba.njit(cache=True)
def _grown_ints(a: np.ndarray) -> np.ndarray:
    out = np.empty(a.shape[0] * 2, dtype=a.dtype)
    out[: a.shape[0]] = a
    return out


@numba.njit(cache=True)
def _is_space(space: np.ndarray, c: int) -> bool:
    return c >= 0 and c < space.shape[0] and space[c]


@numba.njit(cache=True, inline="always")
def _next_word(space: np.ndarray, chars: np.ndarray, i: int, end: int) -> tuple[int, int]:
    """The next word of ``chars[i:end]``: its (start, stop); start == end when there is none."""
    while i < end and _is_space(space, chars[i]):
        i += 1
    j = i
    while j < end and not _is_space(space, chars[j]):
        j += 1
    return i, j


@numba.njit(cache=True, nogil=True)
def char_ngrams(
    chars: np.ndarray,
    text_ptr: np.ndarray,
    space: np.ndarray,
    ngram_min: int,
    ngram_max: int,
    weights: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Position-weighted character n-grams inside the words of each text (see ``PrefixNgramVectorizer``).

    A word is padded with one leading space (code point 32). ``weights[s]`` weighs the n-grams
    starting at padded position ``s`` (it needs ``max word length + 1`` entries). The lone marker
    is not an n-gram. Order per text: words, then n = ngram_min..ngram_max, then start positions,
    as in the pure-Python ``_terms``.
    """
    n_texts = text_ptr.shape[0] - 1
    # occurrences per text, an upper bound of its distinct n-grams
    bound = np.zeros(n_texts + 1, dtype=np.int64)
    longest = 1
    for t in range(n_texts):
        i = text_ptr[t]
        end = text_ptr[t + 1]
        total = 0
        while True:
            i, j = _next_word(space, chars, i, end)
            if i >= end:
                break
            length = j - i + 1
            longest = max(longest, length)
            for n in range(ngram_min, ngram_max + 1):
                first = 1 if n == 1 else 0
                if length - n + 1 > first:
                    total += length - n + 1 - first
            i = j
        bound[t + 1] = bound[t] + total
    ids = np.empty(bound[n_texts], dtype=np.int32)
    wts = np.empty(bound[n_texts], dtype=np.float64)
    counts = np.zeros(n_texts, dtype=np.int64)

    shift = np.uint64(64 - _FIRST_BITS)
    keys = np.full(1 << _FIRST_BITS, _EMPTY, dtype=np.int64)
    vals = np.empty(1 << _FIRST_BITS, dtype=np.int32)
    cap = 1 << 12
    first_text = np.empty(cap, dtype=np.int32)
    first_start = np.empty(cap, dtype=np.int32)
    first_end = np.empty(cap, dtype=np.int32)
    marker = np.empty(cap, dtype=np.bool_)
    emitted = np.zeros(cap, dtype=np.bool_)
    mark = np.full(cap, -1, dtype=np.int64)  # the last text an id was seen in
    pos = np.empty(cap, dtype=np.int64)  # its slot in that text's output
    n_ids = 0
    scratch = np.empty((ngram_max, longest), dtype=np.int32)
    padded = np.empty(longest, dtype=np.int32)

    for t in range(n_texts):
        base = bound[t]
        cnt = 0
        t0 = text_ptr[t]
        i = t0
        end = text_ptr[t + 1]
        while True:
            i, j = _next_word(space, chars, i, end)
            if i >= end:
                break
            length = j - i + 1
            padded[0] = 32
            for s in range(1, length):
                padded[s] = chars[i + s - 1]
            # ids of every n-gram (s, n), n <= ngram_max, by extending (s, n - 1)
            for s in range(length):
                g = -1
                for n in range(1, min(ngram_max, length - s) + 1):
                    c = padded[s + n - 1]
                    key = np.int64(c) if n == 1 else ((np.int64(g) + 1) << 21) | np.int64(c)
                    h = _hash_slot(keys, key, shift)
                    if keys[h] == _EMPTY:
                        if n_ids == first_text.shape[0]:
                            first_text = _grown_ints(first_text)
                            first_start = _grown_ints(first_start)
                            first_end = _grown_ints(first_end)
                            marker = _grown_ints(marker)
                            emitted = _grown_ints(emitted)
                            emitted[n_ids:] = False
                            mark = _grown_ints(mark)
                            mark[n_ids:] = -1
                            pos = _grown_ints(pos)
                        keys[h] = key
                        vals[h] = n_ids
                        first_text[n_ids] = t
                        # code point offsets inside the text (the marker is no code point of it)
                        first_start[n_ids] = (i - t0) + (s - 1 if s > 0 else 0)
                        first_end[n_ids] = (i - t0) + s + n - 1
                        marker[n_ids] = s == 0
                        g = n_ids
                        n_ids += 1
                        if 2 * n_ids > keys.shape[0]:
                            keys, vals, shift = _grown(keys, vals, shift)
                    else:
                        g = vals[h]
                    scratch[n - 1, s] = g
            for n in range(ngram_min, ngram_max + 1):
                for s in range(1 if n == 1 else 0, length - n + 1):
                    g = scratch[n - 1, s]
                    w = weights[s]
                    if mark[g] != t:
                        mark[g] = t
                        pos[g] = cnt
                        emitted[g] = True
                        ids[base + cnt] = g
                        wts[base + cnt] = 0.0 + w
                        cnt += 1
                    else:
                        wts[base + pos[g]] += w
            i = j
        counts[t] = cnt
    return _compact(bound, counts, ids, wts) + (
        first_text[:n_ids].copy(),
        first_start[:n_ids].copy(),
        first_end[:n_ids].copy(),
        marker[:n_ids].copy(),
        emitted[:n_ids].copy(),
    )


@numba.njit(cache=True, nogil=True)
def _compact(
    bound: np.ndarray, counts: np.ndarray, ids: np.ndarray, wts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop the unused tail of each text's slots: (row_ptr, ids, weights)."""
    n_texts = counts.shape[0]
    row_ptr = np.zeros(n_texts + 1, dtype=np.int64)
    for t in range(n_texts):
        row_ptr[t + 1] = row_ptr[t] + counts[t]
    out_ids = np.empty(row_ptr[n_texts], dtype=np.int32)
    out_wts = np.empty(row_ptr[n_texts], dtype=np.float64)
    for t in range(n_texts):
        a = bound[t]
        b = row_ptr[t]
        for k in range(counts[t]):
            out_ids[b + k] = ids[a + k]
            out_wts[b + k] = wts[a + k]
    return row_ptr, out_ids, out_wts


@numba.njit(cache=True, nogil=True)
def word_ngrams(
    chars: np.ndarray, text_ptr: np.ndarray, space: np.ndarray, ngram_max: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Word n-grams (n = 1..ngram_max) of each text, counted (see ``WordNgramVectorizer``).

    Words get ids from a table keyed by their code point chains; word n-grams from a second table
    keyed by (id of the first n - 1 words, last word). Order per text: n, then start word.
    """
    n_texts = text_ptr.shape[0] - 1
    bound = np.zeros(n_texts + 1, dtype=np.int64)
    most_words = 1
    for t in range(n_texts):
        i = text_ptr[t]
        end = text_ptr[t + 1]
        words = 0
        while True:
            i, j = _next_word(space, chars, i, end)
            if i >= end:
                break
            i = j
            words += 1
        most_words = max(most_words, words)
        total = 0
        for n in range(1, ngram_max + 1):
            if words - n + 1 > 0:
                total += words - n + 1
        bound[t + 1] = bound[t] + total
    ids = np.empty(bound[n_texts], dtype=np.int32)
    wts = np.empty(bound[n_texts], dtype=np.float64)
    counts = np.zeros(n_texts, dtype=np.int64)

    # words: chains of code points
    wshift = np.uint64(64 - _FIRST_BITS)
    wkeys = np.full(1 << _FIRST_BITS, _EMPTY, dtype=np.int64)
    wvals = np.empty(1 << _FIRST_BITS, dtype=np.int32)
    n_chain = 0
    # word n-grams
    shift = np.uint64(64 - _FIRST_BITS)
    keys = np.full(1 << _FIRST_BITS, _EMPTY, dtype=np.int64)
    vals = np.empty(1 << _FIRST_BITS, dtype=np.int32)
    cap = 1 << 12
    first_text = np.empty(cap, dtype=np.int32)
    first_start = np.empty(cap, dtype=np.int32)
    first_end = np.empty(cap, dtype=np.int32)
    clean = np.empty(cap, dtype=np.bool_)
    mark = np.full(cap, -1, dtype=np.int64)
    pos = np.empty(cap, dtype=np.int64)
    n_ids = 0
    word_id = np.empty(most_words, dtype=np.int64)
    word_start = np.empty(most_words, dtype=np.int64)
    word_end = np.empty(most_words, dtype=np.int64)
    scratch = np.empty((ngram_max, most_words), dtype=np.int32)

    for t in range(n_texts):
        base = bound[t]
        cnt = 0
        t0 = text_ptr[t]
        i = t0
        end = text_ptr[t + 1]
        nw = 0
        while i < end:
            while i < end and _is_space(space, chars[i]):
                i += 1
            if i >= end:
                break
            word_start[nw] = i
            g = -1
            while i < end and not _is_space(space, chars[i]):
                c = chars[i]
                key = np.int64(c) if g < 0 else ((np.int64(g) + 1) << 21) | np.int64(c)
                h = _hash_slot(wkeys, key, wshift)
                if wkeys[h] == _EMPTY:
                    wkeys[h] = key
                    wvals[h] = n_chain
                    g = n_chain
                    n_chain += 1
                    if 2 * n_chain > wkeys.shape[0]:
                        wkeys, wvals, wshift = _grown(wkeys, wvals, wshift)
                else:
                    g = wvals[h]
                i += 1
            word_end[nw] = i
            word_id[nw] = g
            nw += 1
        for s in range(nw):
            g = -1
            for n in range(1, min(ngram_max, nw - s) + 1):
                w = word_id[s + n - 1]
                key = w if n == 1 else ((np.int64(g) + 1) << 31) | w
                h = _hash_slot(keys, key, shift)
                if keys[h] == _EMPTY:
                    if n_ids == first_text.shape[0]:
                        first_text = _grown_ints(first_text)
                        first_start = _grown_ints(first_start)
                        first_end = _grown_ints(first_end)
                        clean = _grown_ints(clean)
                        mark = _grown_ints(mark)
                        mark[n_ids:] = -1
                        pos = _grown_ints(pos)
                    keys[h] = key
                    vals[h] = n_ids
                    first_text[n_ids] = t
                    first_start[n_ids] = word_start[s] - t0
                    first_end[n_ids] = word_end[s + n - 1] - t0
                    ok = True
                    for m in range(s, s + n - 1):
                        if word_start[m + 1] - word_end[m] != 1 or chars[word_end[m]] != 32:
                            ok = False
                    clean[n_ids] = ok
                    g = n_ids
                    n_ids += 1
                    if 2 * n_ids > keys.shape[0]:
                        keys, vals, shift = _grown(keys, vals, shift)
                else:
                    g = vals[h]
                scratch[n - 1, s] = g
        for n in range(1, ngram_max + 1):
            for s in range(nw - n + 1):
                g = scratch[n - 1, s]
                if mark[g] != t:
                    mark[g] = t
                    pos[g] = cnt
                    ids[base + cnt] = g
                    wts[base + cnt] = 1.0
                    cnt += 1
                else:
                    wts[base + pos[g]] += 1.0
        counts[t] = cnt
    emitted = np.ones(n_ids, dtype=np.bool_)
    return _compact(bound, counts, ids, wts) + (
        first_text[:n_ids].copy(),
        first_start[:n_ids].copy(),
        first_end[:n_ids].copy(),
        clean[:n_ids].copy(),
        emitted,
    )


def char_grams(
    texts: Sequence[str], ngram_min: int, ngram_max: int, weights_of: Callable[[int], list[float]]
) -> tuple[Grams, list[str | None]]:
    """:func:`char_ngrams` of distinct ``texts``, and the string of each emitted id (None otherwise).

    ``weights_of(length)`` returns the padded position weights for words up to ``length - 1``
    code points (a list of floats, index = padded start position).
    """
    chars, text_ptr = code_points(texts)
    longest = int(np.diff(text_ptr).max(initial=0)) + 2
    weights = np.asarray(weights_of(longest), dtype=np.float64)
    grams = Grams(*char_ngrams(chars, text_ptr, SPACE, ngram_min, ngram_max, weights))
    strings: list[str | None] = [None] * len(grams.first_text)
    for g in np.flatnonzero(grams.emitted).tolist():
        text = texts[grams.first_text[g]]
        piece = text[grams.first_start[g] : grams.first_end[g]]
        strings[g] = " " + piece if grams.flag[g] else piece
    return grams, strings


def word_grams(texts: Sequence[str], ngram_max: int) -> tuple[Grams, list[str | None]]:
    """:func:`word_ngrams` of distinct ``texts``, and the string of each id (words joined by one space)."""
    chars, text_ptr = code_points(texts)
    grams = Grams(*word_ngrams(chars, text_ptr, SPACE, ngram_max))
    strings: list[str | None] = []
    append = strings.append
    for t, a, b, ok in zip(
        grams.first_text.tolist(), grams.first_start.tolist(), grams.first_end.tolist(), grams.flag.tolist()
    ):
        piece = texts[t][a:b]
        append(piece if ok else " ".join(piece.split()))
    return grams, strings


KEYED_GRAM_LENGTH = 3  # character n-grams up to this long have an exact int64 key, 21 bits a code point


def gram_key(gram: str) -> int:
    """The int64 key :func:`prefix_row` looks a character n-gram up by (at most
    ``KEYED_GRAM_LENGTH`` code points; each stored plus one, so lengths never collide)."""
    key = 0
    for ch in gram:
        key = (key << 21) | (ord(ch) + 1)
    return key


@numba.njit(cache=True, nogil=True)
def prefix_row(
    chars: np.ndarray,
    space: np.ndarray,
    ngram_min: int,
    ngram_max: int,
    weights: np.ndarray,
    keys: np.ndarray,
    key_columns: np.ndarray,
    idf: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """One text's position-weighted character n-gram TF-IDF row, the per-keystroke form of
    :func:`char_ngrams` then :func:`tfidf_rows`, to the last bit: sorted int32 columns and float32
    values. ``keys`` (ascending, by :func:`gram_key`) and ``key_columns``: the vocabulary;
    ``weights[s]``: the weight of n-grams starting at padded position ``s`` (longest word + 1
    entries); n-grams up to ``KEYED_GRAM_LENGTH`` long."""
    n = chars.shape[0]
    bound = (ngram_max - ngram_min + 1) * 2 * n + 1
    cols = np.empty(bound, dtype=np.int64)
    counts = np.empty(bound, dtype=np.float64)
    padded = np.empty(n + 1, dtype=np.int64)
    m = 0
    i = 0
    while True:
        i, j = _next_word(space, chars, i, n)
        if i >= n:
            break
        padded[0] = 32
        for q in range(i, j):
            padded[q - i + 1] = chars[q]
        length = j - i + 1
        for g in range(ngram_min, ngram_max + 1):
            for start in range(1 if g == 1 else 0, length - g + 1):
                key = np.int64(0)
                for q in range(start, start + g):
                    key = (key << 21) | (padded[q] + 1)
                at = np.searchsorted(keys, key)
                if at == keys.shape[0] or keys[at] != key:
                    continue
                column = key_columns[at]
                r = 0
                while r < m and cols[r] != column:
                    r += 1
                if r == m:
                    cols[m] = column
                    counts[m] = weights[start]
                    m += 1
                else:
                    counts[r] += weights[start]
        i = j
    vals = np.empty(m, dtype=np.float64)
    order = np.empty(m, dtype=np.int64)
    for q in range(m):  # insertion sort by column, as tfidf_rows
        c = cols[q]
        v = counts[q] * idf[c]
        s = q
        while s > 0 and order[s - 1] > c:
            order[s] = order[s - 1]
            vals[s] = vals[s - 1]
            s -= 1
        order[s] = c
        vals[s] = v
    total = 0.0
    for q in range(m):
        total += vals[q] * vals[q]
    norm = np.sqrt(total) if total != 0.0 else 1.0
    indices = np.empty(m, dtype=np.int32)
    data = np.empty(m, dtype=np.float32)
    for q in range(m):
        indices[q] = order[q]
        data[q] = np.float32(vals[q] / norm)
    return indices, data


@numba.njit(cache=True, nogil=True)
def tfidf_rows(
    row_ptr: np.ndarray,
    ids: np.ndarray,
    weights: np.ndarray,
    columns: np.ndarray,
    idf: np.ndarray,
    inverse: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR arrays (int64 indptr, int32 sorted indices, float32 data) of ``len(inverse)`` TF-IDF rows.

    Distinct text ``t`` has n-grams ``ids[row_ptr[t]:row_ptr[t + 1]]`` with weighted counts
    ``weights``; ``columns[id]`` is an n-gram's column (-1: none). Its row is ``count * idf``,
    sorted by column, divided by its L2 norm (the sum of squares in column order, then one
    square root: scikit-learn's ``normalize``), in float64, then rounded to float32. Output row
    ``i`` is distinct text ``inverse[i]``'s row.
    """
    n_texts = row_ptr.shape[0] - 1
    u_ptr = np.zeros(n_texts + 1, dtype=np.int64)
    for t in range(n_texts):
        kept = 0
        for p in range(row_ptr[t], row_ptr[t + 1]):
            if columns[ids[p]] >= 0:
                kept += 1
        u_ptr[t + 1] = u_ptr[t] + kept
    u_idx = np.empty(u_ptr[n_texts], dtype=np.int32)
    u_val = np.empty(u_ptr[n_texts], dtype=np.float32)
    cols = np.empty(0, dtype=np.int64)
    vals = np.empty(0, dtype=np.float64)
    for t in range(n_texts):
        m = u_ptr[t + 1] - u_ptr[t]
        if m > cols.shape[0]:
            cols = np.empty(2 * m, dtype=np.int64)
            vals = np.empty(2 * m, dtype=np.float64)
        q = 0
        for p in range(row_ptr[t], row_ptr[t + 1]):
            c = columns[ids[p]]
            if c >= 0:
                v = weights[p] * idf[c]
                # insertion sort by column (rows are short)
                s = q
                while s > 0 and cols[s - 1] > c:
                    cols[s] = cols[s - 1]
                    vals[s] = vals[s - 1]
                    s -= 1
                cols[s] = c
                vals[s] = v
                q += 1
        total = 0.0
        for s in range(m):
            total += vals[s] * vals[s]
        norm = np.sqrt(total) if total != 0.0 else 1.0
        base = u_ptr[t]
        for s in range(m):
            u_idx[base + s] = cols[s]
            u_val[base + s] = np.float32(vals[s] / norm)
    n_out = inverse.shape[0]
    indptr = np.zeros(n_out + 1, dtype=np.int64)
    for i in range(n_out):
        t = inverse[i]
        indptr[i + 1] = indptr[i] + u_ptr[t + 1] - u_ptr[t]
    indices = np.empty(indptr[n_out], dtype=np.int32)
    data = np.empty(indptr[n_out], dtype=np.float32)
    for i in range(n_out):
        t = inverse[i]
        a = u_ptr[t]
        b = indptr[i]
        for s in range(u_ptr[t + 1] - a):
            indices[b + s] = u_idx[a + s]
            data[b + s] = u_val[a + s]
    return indptr, indices, data
