"""Open-vocabulary candidates from the word language model: word completion and continuation.

Both are numba kernels over :class:`indexer.language.LanguageArrays`; :class:`Generator` converts
strings to token ids once per call and back. For typed text ``"harry pot"`` the complete words
are ``harry`` and the unfinished word ``pot``:

- **word completion** scores the vocabulary words of ``pot``'s id range (the words starting with
  it) by P(word | ``<s> harry``). The candidates are, for each context order, the successors in
  the range with the largest discounted terms (a binary search cuts the successor row to the
  range; a short cut is selected directly, a long one walked in probability order), plus the
  likeliest words of the range by a sparse table over the unigram probabilities; each candidate
  then gets its exact interpolated score. This is exact for every word outside the successor
  rows (their scores are proportional to the unigram) and a close approximation inside them.
- **continuation** is a beam search from the typed words (after completion) adding up to
  ``max_new_words`` words, each from the same candidate step over the whole vocabulary (taken
  from the longest contexts that offer enough words), and proposing ``... </s>`` wherever ending
  is allowed; a state whose probability already falls below the k-th finished candidate is not
  extended (adding words only lowers it). The completed word alone keeps ``reserve`` of the k
  places, so continuations of the likeliest completion do not crowd out the other completions.

Rules every candidate keeps:

- its text is the typed text followed by the added characters;
- privacy: a new word (or the end) after history ``h`` is a kept successor of the longest stored
  context of ``h``, or comes from a shorter context only when every longer one is *closed* (all
  its training successors were kept, so nobody typed this word after it). Every n-gram of a
  candidate that contains a generated word therefore has at least ``min_users`` users, or nobody
  used it, or its typed part is itself an n-gram of fewer users among the queries the blocklist
  lets through (the person typed something rare; the model holds nothing about it);
- a cache component (``cache_weight`` > 0, off by default) mixes the words of the session's
  previous query into every step: P = (1 - weight) P_lm + weight / (its number of known words).
  Those words are the person's own, so they may follow any context (the privacy rule above
  covers the other words);
- no doubled word: a generated word never repeats the word before it;
- the end comes after a word only if at least ``min_end_fraction`` of that word's training
  occurrences ended a query (and enough users ended one with it): no dangling "of" or "the"
  unless the log has such queries whole;
- with a blocklist, a typed text holding a blocklisted word gets no candidates, and a candidate
  matching a blocklisted pattern is dropped.
"""

from __future__ import annotations

import math
import re
from itertools import repeat
from typing import NamedTuple

import numba
import numpy as np

from indexer.caches import through_cache
from indexer.labels import decode_runs, encode, prefix_range
from indexer.language import (
    LanguageArrays,
    WordLanguageModel,
    context_entries,
    find_entry,
    gallop,
    lower_bound,
    word_prob,
)
from indexer.popularity import top_k_in_range
from indexer.privacy import Blocklist

# a successor row cut to a word range is selected from directly up to this many entries, else walked
# in probability order
_SCAN = 48
_CACHE_WORDS_KEPT = 1024  # previous queries whose word ids a worker keeps
UNKNOWN_LOGP = math.log(1e-7)  # what a word the language model does not know costs in :meth:`Generator.score`


class Candidates(NamedTuple):
    """Generated candidates, best first (by ``logprob + end_logprob``); one element per candidate.

    ``logprob``: natural log P of the added part (completed word and new words) given the typed
    words; ``end_logprob``: log P(``</s>`` | the candidate); ``n_added``: new whole words after the
    typed ones; ``completed``: the unfinished typed word was extended; ``completed_count``: the
    training count of the last typed word as completed (0 when the typed text ends in a space);
    ``backoff_steps``: how many generated steps, the end included, were not seen in training
    after all the context the model uses (0: the whole added part is made of kept n-grams).
    """

    text: list[str]
    logprob: np.ndarray  # float64
    end_logprob: np.ndarray  # float64
    n_added: np.ndarray  # int32
    completed: np.ndarray  # bool
    completed_count: np.ndarray  # int64
    backoff_steps: np.ndarray  # int32


@numba.njit(cache=True, inline="always")
def _top_in_unigrams(lm: LanguageArrays, lo: int, hi: int, m: int, out: np.ndarray, n: int) -> int:
    """Append the ``m`` likeliest words of ``[lo, hi)`` to ``out[n:]`` (the popularity table's
    top-k splitting, over the unigram probabilities)."""
    for word in top_k_in_range(lm.unigram_table, lm.prob, lo, hi, m):
        out[n] = word
        n += 1
    return n


@numba.njit(cache=True, inline="always")
def _row_in_range(lm: LanguageArrays, e: int, lo: int, hi: int, m: int, out: np.ndarray, n: int) -> int:
    """Append the (up to) ``m`` successors of entry ``e`` with a word in ``[lo, hi)`` that have
    the largest discounted term: a short cut of the row is selected directly, a long one walked in
    probability order."""
    s = lm.ptr[e]
    t = lm.ptr[e + 1]
    p = lower_bound(lm.word, s, t, lo)
    q = lower_bound(lm.word, p, t, hi)
    if q - p <= m:
        for i in range(p, q):
            out[n] = lm.word[i]
            n += 1
        return n
    if q - p <= _SCAN:  # partial selection by the row's own term, no scoring
        best = np.empty(m, dtype=np.int64)  # entry ids, by prob descending
        nb = 0
        for i in range(p, q):
            pr = lm.prob[i]
            if nb == m and pr <= lm.prob[best[nb - 1]]:
                continue
            pos = nb if nb < m else m - 1
            if nb < m:
                nb += 1
            while pos > 0 and lm.prob[best[pos - 1]] < pr:
                best[pos] = best[pos - 1]
                pos -= 1
            best[pos] = i
        for j in range(nb):
            out[n] = lm.word[best[j]]
            n += 1
        return n
    found = 0
    for i in range(s, t):
        f = lm.by_prob[i]
        w = lm.word[f]
        if lo <= w < hi:
            out[n] = w
            n += 1
            found += 1
            if found == m:
                break
    return n


@numba.njit(cache=True, inline="always")
def top_words(
    lm: LanguageArrays,
    contexts: np.ndarray,
    n_contexts: int,
    lo: int,
    hi: int,
    m: int,
    exclude: int,
    shallow: bool,
    cache: np.ndarray,
    cache_weight: float,
    out_words: np.ndarray,
    out_probs: np.ndarray,
) -> int:
    """The ``m`` likeliest allowed words of ``[lo, hi)`` after the history whose stored contexts
    are ``contexts[:n_contexts]``, never ``exclude``; written best first, returns how many.

    ``shallow``: stop at the longest contexts that already offer more than ``m`` words (the
    continuation's choice: a word only a shorter context offers is rarely among the best).
    ``cache``: sorted word ids of the session's previous query, mixed in with ``cache_weight``
    (P = (1 - weight) P_lm + weight / len(cache) for a cached word).
    """
    cap = (n_contexts + 1) * (m + 1) + cache.shape[0]
    cand = np.empty(cap, dtype=np.int64)
    n = 0
    if cache_weight > 0.0:
        for w in cache:
            if lo <= w < hi:
                cand[n] = w
                n += 1
    n_cached = n
    level = n_contexts
    while level > 0:
        e = contexts[level - 1]
        n = _row_in_range(lm, e, lo, hi, m + 1, cand, n)
        if not lm.closed[e] or (shallow and n - n_cached > m):
            break
        level -= 1
    if level == 0:  # every context closed (or none stored): any word may follow
        n = _top_in_unigrams(lm, lo, hi, m + 1, cand, n)
    cand[:n].sort()
    u = 0  # distinct candidates, ascending
    for i in range(n):
        w = cand[i]
        if (u > 0 and cand[u - 1] == w) or w == exclude:
            continue
        cand[u] = w
        u += 1
    probs = np.empty(u, dtype=np.float64)
    for i in range(u):
        probs[i] = lm.prob[cand[i]]
    for j in range(n_contexts):  # interpolate order by order; ascending ids narrow each search
        e = contexts[j]
        start = lm.ptr[e]
        end = lm.ptr[e + 1]
        gamma = lm.backoff[e]
        for i in range(u):
            start = gallop(lm.word, start, end, cand[i])
            p = gamma * probs[i]
            if start < end and lm.word[start] == cand[i]:
                p += lm.prob[start]
            probs[i] = p
    if cache_weight > 0.0:
        c = 0
        share = cache_weight / cache.shape[0]
        for i in range(u):
            probs[i] *= 1.0 - cache_weight
            while c < cache.shape[0] and cache[c] < cand[i]:
                c += 1
            if c < cache.shape[0] and cache[c] == cand[i]:
                probs[i] += share
    r = 0  # out_* hold the best r so far, best first; ids ascend, so ties keep the lower id
    for i in range(u):
        p = probs[i]
        if r == m and p <= out_probs[m - 1]:
            continue
        pos = r if r < m else m - 1
        if r < m:
            r += 1
        while pos > 0 and out_probs[pos - 1] < p:
            out_words[pos] = out_words[pos - 1]
            out_probs[pos] = out_probs[pos - 1]
            pos -= 1
        out_words[pos] = cand[i]
        out_probs[pos] = p
    return r


@numba.njit(cache=True, inline="always")
def end_logprob(
    lm: LanguageArrays,
    contexts: np.ndarray,
    n_contexts: int,
    last: int,
    min_end_fraction: float,
    cache_weight: float,
) -> float:
    """log P(</s> | history), or -inf where a query may not end (dangling word, privacy)."""
    if last < 0 or last >= lm.n_words or lm.end_fraction[last] <= 0.0:
        return -np.inf
    if lm.end_fraction[last] < min_end_fraction:
        return -np.inf
    eos = lm.n_words + 1
    allowed = False
    for level in range(n_contexts, 0, -1):
        e = contexts[level - 1]
        if find_entry(lm.ptr, lm.word, e, eos, True) >= 0:
            allowed = True
            break
        if not lm.closed[e]:
            break
    if not allowed:
        return -np.inf
    p = word_prob(lm.ptr, lm.word, lm.prob, lm.backoff, contexts, n_contexts, eos, True)
    return math.log((1.0 - cache_weight) * p)


@numba.njit(cache=True, inline="always")
def _history(base: np.ndarray, seq: np.ndarray, length: int, width: int, out: np.ndarray) -> int:
    """The last ``width`` tokens of ``base`` followed by ``seq[:length]``, into ``out``."""
    total = base.shape[0] + length
    take = min(width, total)
    for i in range(take):
        j = total - take + i
        out[i] = base[j] if j < base.shape[0] else seq[j - base.shape[0]]
    return take


@numba.njit(cache=True, inline="always")
def _unseen_step(
    lm: LanguageArrays, contexts: np.ndarray, n_ctx: int, h: int, token: int, last: bool = False
) -> int:
    """1 when ``token`` is not a kept successor of all the history the model looks at (the last
    ``h`` tokens, of which ``n_ctx`` have stored context entries ``contexts``), else 0: one step
    of a candidate's ``backoff_steps``, counted as the beam makes the step (``last``: ``token``
    is ``</s>``)."""
    return 1 if n_ctx < h or find_entry(lm.ptr, lm.word, contexts[h - 1], token, last) < 0 else 0


@numba.njit(cache=True, inline="always")
def _insert(
    seqs: np.ndarray,
    logps: np.ndarray,
    ends: np.ndarray,
    totals: np.ndarray,
    backs: np.ndarray,
    n: int,
    seq: np.ndarray,
    logp: float,
    end: float,
    back: int,
) -> int:
    """Insert a finished candidate into a list kept sorted by total (capacity: its length)."""
    k = totals.shape[0]
    total = logp + end
    if n == k and total <= totals[k - 1]:
        return n
    pos = n if n < k else k - 1
    if n < k:
        n += 1
    while pos > 0 and totals[pos - 1] < total:
        seqs[pos] = seqs[pos - 1]
        logps[pos] = logps[pos - 1]
        ends[pos] = ends[pos - 1]
        totals[pos] = totals[pos - 1]
        backs[pos] = backs[pos - 1]
        pos -= 1
    seqs[pos] = seq
    logps[pos] = logp
    ends[pos] = end
    totals[pos] = total
    backs[pos] = back
    return n


@numba.njit(cache=True)
def generate_ids(
    lm: LanguageArrays,
    base: np.ndarray,
    partial: np.ndarray,
    has_partial: bool,
    k: int,
    reserve: int,
    beam: int,
    expand: int,
    max_new: int,
    min_end_fraction: float,
    cache: np.ndarray,
    cache_weight: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Beam search for complete queries: ``base`` = ``<s>`` + typed complete words (token ids),
    ``partial`` the unfinished word's code points, ``cache`` the previous query's word ids
    (sorted, distinct) mixed in with ``cache_weight``. Returns, best first by log P + end log P, the
    generated token ids per candidate (rows padded with -1) and the arrays of :class:`Candidates`.
    ``beam`` states are kept per step (and as many completions of the unfinished word), each
    extended by its ``expand`` likeliest next words. The shortest candidates (the completed word
    alone; one word after a finished one) hold at least ``reserve`` of the ``k`` places, so long
    continuations of the likeliest word do not push every other completion out."""
    width = max(lm.order - 1, 1)
    slots = max_new + 1
    weight = cache_weight if cache.shape[0] > 0 else 0.0
    contexts = np.empty(width, dtype=np.int64)
    hist = np.empty(width, dtype=np.int64)
    words = np.empty(max(beam, expand), dtype=np.int64)
    probs = np.empty(max(beam, expand), dtype=np.float64)
    cap = beam * max(beam, expand) + 1
    st_seq = np.full((cap, slots), -1, dtype=np.int64)
    st_len = np.zeros(cap, dtype=np.int64)
    st_logp = np.zeros(cap, dtype=np.float64)
    st_back = np.zeros(cap, dtype=np.int32)  # steps so far not seen after their full context
    nx_seq = np.full((cap, slots), -1, dtype=np.int64)
    nx_len = np.zeros(cap, dtype=np.int64)
    nx_logp = np.zeros(cap, dtype=np.float64)
    nx_back = np.zeros(cap, dtype=np.int32)
    # finished candidates: the shortest ones and the longer ones, each list sorted by total
    short_seq = np.full((k, slots), -1, dtype=np.int64)
    short_logp = np.zeros(k, dtype=np.float64)
    short_end = np.zeros(k, dtype=np.float64)
    short_total = np.full(k, -np.inf)
    short_back = np.zeros(k, dtype=np.int32)
    n_short = 0
    fin_seq = np.full((k, slots), -1, dtype=np.int64)
    fin_logp = np.zeros(k, dtype=np.float64)
    fin_end = np.zeros(k, dtype=np.float64)
    fin_total = np.full(k, -np.inf)
    fin_back = np.zeros(k, dtype=np.int32)
    n_fin = 0

    h = _history(base, st_seq[0], 0, width, hist)
    n_ctx = context_entries(lm, hist[:h], contexts)
    last = base[base.shape[0] - 1]
    n_states = 0
    if has_partial:
        lo, hi = prefix_range(lm.vocab_indptr, lm.vocab_chars, partial)
        got = top_words(lm, contexts, n_ctx, lo, hi, beam, last, False, cache, weight, words, probs)
        for i in range(got):
            st_seq[i, 0] = words[i]
            st_len[i] = 1
            st_logp[i] = math.log(probs[i])
            st_back[i] = _unseen_step(lm, contexts, n_ctx, h, words[i])
        n_states = got
    else:
        n_states = 1
    first_added = 1 if has_partial else 0
    shortest = 1
    for step in range(max_new + 1):
        n_next = 0
        for s in range(n_states):
            length = st_len[s]
            h = _history(base, st_seq[s], length, width, hist)
            n_ctx = context_entries(lm, hist[:h], contexts)
            tail = hist[h - 1]
            logp = st_logp[s]
            if length > 0:
                eos = end_logprob(lm, contexts, n_ctx, tail, min_end_fraction, weight)
                if eos > -np.inf:
                    back = st_back[s] + _unseen_step(lm, contexts, n_ctx, h, lm.n_words + 1, True)
                    if length == shortest:
                        n_short = _insert(
                            short_seq, short_logp, short_end, short_total, short_back, n_short, st_seq[s],
                            logp, eos, back,
                        )  # fmt: skip
                    else:
                        n_fin = _insert(
                            fin_seq, fin_logp, fin_end, fin_total, fin_back, n_fin, st_seq[s], logp, eos, back
                        )
            if step == max_new or length - first_added >= max_new:
                continue
            if n_fin == k and logp <= fin_total[k - 1]:  # a longer candidate only gets less likely
                continue
            got = top_words(
                lm, contexts, n_ctx, 0, lm.n_words, expand, tail, True, cache, weight, words, probs
            )
            for i in range(got):
                if n_fin == k and logp + math.log(probs[i]) <= fin_total[k - 1]:
                    break  # best first: this and the rest cannot reach the list
                nx_seq[n_next] = st_seq[s]
                nx_seq[n_next, length] = words[i]
                nx_len[n_next] = length + 1
                nx_logp[n_next] = logp + math.log(probs[i])
                nx_back[n_next] = st_back[s] + _unseen_step(lm, contexts, n_ctx, h, words[i])
                n_next += 1
        if n_next == 0:
            break
        order = np.argsort(-nx_logp[:n_next], kind="mergesort")
        n_states = min(beam, n_next)
        for i in range(n_states):
            st_seq[i] = nx_seq[order[i]]
            st_len[i] = nx_len[order[i]]
            st_logp[i] = nx_logp[order[i]]
            st_back[i] = nx_back[order[i]]
    # the reserved shortest, then the best of the rest, then all by total
    forced = min(reserve, n_short)
    pool = n_short - forced + n_fin
    pool_total = np.empty(pool, dtype=np.float64)
    for i in range(n_short - forced):
        pool_total[i] = short_total[forced + i]
    for i in range(n_fin):
        pool_total[n_short - forced + i] = fin_total[i]
    picked = np.argsort(-pool_total, kind="mergesort")[: max(k - forced, 0)]
    n_out = forced + picked.shape[0]
    out_seq = np.full((n_out, slots), -1, dtype=np.int64)
    out_logp = np.empty(n_out, dtype=np.float64)
    out_end = np.empty(n_out, dtype=np.float64)
    out_back = np.empty(n_out, dtype=np.int32)
    for i in range(n_out):
        if i < forced:
            src = i
        else:
            src = forced + picked[i - forced]
        if src < n_short:
            out_seq[i] = short_seq[src]
            out_logp[i] = short_logp[src]
            out_end[i] = short_end[src]
            out_back[i] = short_back[src]
        else:
            out_seq[i] = fin_seq[src - n_short]
            out_logp[i] = fin_logp[src - n_short]
            out_end[i] = fin_end[src - n_short]
            out_back[i] = fin_back[src - n_short]
    by_total = np.argsort(-(out_logp + out_end), kind="mergesort")
    fin_seq, fin_logp, fin_end = out_seq[by_total], out_logp[by_total], out_end[by_total]
    backoffs = out_back[by_total]
    n_fin = n_out
    n_new = np.zeros(n_fin, dtype=np.int32)
    completed = np.zeros(n_fin, dtype=np.bool_)
    completed_count = np.zeros(n_fin, dtype=np.int64)
    for i in range(n_fin):
        for j in range(slots):
            if fin_seq[i, j] >= 0:
                n_new[i] += 1
        if has_partial:
            w = fin_seq[i, 0]
            n_new[i] -= 1
            completed[i] = lm.vocab_indptr[w + 1] - lm.vocab_indptr[w] > partial.shape[0]
            completed_count[i] = lm.counts[w]
    return fin_seq[:n_fin], fin_logp[:n_fin], fin_end[:n_fin], n_new, completed, completed_count, backoffs


@numba.njit(cache=True, nogil=True)
def spell(
    vocab_indptr: np.ndarray, vocab_chars: np.ndarray, seqs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The words of each row of ``seqs`` (token ids, -1 skipped) as code points, one space between
    two words, the rows one after another; and where each row ends in them."""
    ends = np.empty(seqs.shape[0], dtype=np.int64)
    total = 0
    for r in range(seqs.shape[0]):
        words = 0
        for t in seqs[r]:
            if t >= 0:
                total += vocab_indptr[t + 1] - vocab_indptr[t] + (1 if words else 0)
                words += 1
        ends[r] = total
    flat = np.empty(total, dtype=np.int32)
    at = 0
    for r in range(seqs.shape[0]):
        words = 0
        for t in seqs[r]:
            if t < 0:
                continue
            if words:
                flat[at] = 32  # " "
                at += 1
            for p in range(vocab_indptr[t], vocab_indptr[t + 1]):
                flat[at] = vocab_chars[p]
                at += 1
            words += 1
    return flat, ends


@numba.njit(cache=True)
def word_completions(
    lm: LanguageArrays,
    base: np.ndarray,
    partial: np.ndarray,
    m: int,
    exclude: int,
    out_words: np.ndarray,
    out_probs: np.ndarray,
) -> int:
    """The ``m`` likeliest words starting with ``partial`` after ``base`` (``<s>`` + complete
    words, token ids), never ``exclude``, whether or not a query may end there; written best
    first into ``out_*``, returns how many. The privacy rule of :func:`top_words` holds."""
    width = max(lm.order - 1, 1)
    hist = np.empty(width, dtype=np.int64)
    contexts = np.empty(width, dtype=np.int64)
    take = min(width, base.shape[0])
    for i in range(take):
        hist[i] = base[base.shape[0] - take + i]
    n_ctx = context_entries(lm, hist[:take], contexts)
    lo, hi = prefix_range(lm.vocab_indptr, lm.vocab_chars, partial)
    no_cache = np.empty(0, dtype=np.int64)
    return top_words(lm, contexts, n_ctx, lo, hi, m, exclude, False, no_cache, 0.0, out_words, out_probs)


@numba.njit(cache=True)
def sequence_logprobs(
    lm: LanguageArrays, tokens: np.ndarray, starts: np.ndarray, ends: np.ndarray, unknown_logp: float
) -> tuple[np.ndarray, np.ndarray]:
    """For each text ``tokens[starts[i]:ends[i]]`` (token ids, -1 = unknown word): log P(its words
    | ``<s>``) and log P(``</s>`` | it), an unknown word counting ``unknown_logp`` (and cutting
    the history there). Plain probabilities: no privacy or end rule, for texts already made."""
    width = max(lm.order - 1, 1)
    hist = np.empty(width, dtype=np.int64)
    contexts = np.empty(width, dtype=np.int64)
    eos = lm.n_words + 1
    n = starts.shape[0]
    logp = np.zeros(n, dtype=np.float64)
    end = np.zeros(n, dtype=np.float64)
    for i in range(n):
        hist[0] = lm.n_words  # <s>
        h = 1
        total = 0.0
        for j in range(starts[i], ends[i] + 1):
            token = tokens[j] if j < ends[i] else eos
            n_ctx = context_entries(lm, hist[:h], contexts)
            if token < 0:
                p = math.exp(unknown_logp)
            else:
                p = word_prob(lm.ptr, lm.word, lm.prob, lm.backoff, contexts, n_ctx, token, j == ends[i])
            lp = math.log(p) if p > 0.0 else unknown_logp
            if j < ends[i]:
                total += lp
            else:
                end[i] = lp
            if h < width:
                hist[h] = token
                h += 1
            else:
                for t in range(width - 1):
                    hist[t] = hist[t + 1]
                hist[width - 1] = token
        logp[i] = total
    return logp, end


class Generator:
    """Word completion and continuation over a fitted :class:`WordLanguageModel`.

    Parameters
    ----------
    model : WordLanguageModel
    max_new_words : int
        At most this many whole words added after the typed ones (0: word completion only).
    beam : int
        Completions of the unfinished word tried, and states kept per step of the continuation.
    expand : int
        Next words tried per state of the continuation.
    reserve : int
        Places of the ``k`` kept for the shortest candidates (the completed word alone, or one
        word after a finished one), so continuations of one word do not crowd out the others.
    min_end_fraction : float
        A candidate may end in a word only if at least this fraction of its training occurrences
        ended a query.
    cache_weight : float
        Weight in [0, 1) of a cache component over the words of the session's previous query
        (``generate(..., previous=...)``); 0 turns it off.
    """

    def __init__(
        self,
        model: WordLanguageModel,
        *,
        max_new_words: int = 3,
        beam: int = 10,
        expand: int = 8,
        reserve: int = 5,
        min_end_fraction: float = 0.02,
        cache_weight: float = 0.0,
    ) -> None:
        if (
            max_new_words < 0
            or beam < 1
            or expand < 1
            or reserve < 0
            or not 0.0 <= min_end_fraction <= 1.0
            or not 0.0 <= cache_weight < 1.0
        ):
            raise ValueError(
                "Generator: need max_new_words >= 0, beam >= 1, expand >= 1, reserve >= 0, "
                "0 <= min_end_fraction <= 1 and 0 <= cache_weight < 1; got "
                f"max_new_words={max_new_words!r}, beam={beam!r}, expand={expand!r}, reserve={reserve!r}, "
                f"min_end_fraction={min_end_fraction!r}, cache_weight={cache_weight!r}"
            )
        self.model = model
        self.arrays = model.arrays()
        self.max_new_words = max_new_words
        self.beam = beam
        self.expand = expand
        self.reserve = reserve
        self.cache_weight = float(cache_weight)
        self._no_cache = np.empty(0, dtype=np.int64)
        self._cache_words: dict[str, np.ndarray] = {}
        self.min_end_fraction = float(min_end_fraction)
        self.blocklist = Blocklist(
            frozenset(model.blocklist_words_),
            tuple(re.compile(p, re.IGNORECASE) for p in model.blocklist_patterns_),
        )
        vocabulary = model.vocabulary_
        self._words = vocabulary.texts()
        self._ids = {w: i for i, w in enumerate(self._words)}
        self._bos = len(self._words)
        self._width = max(model.order - 1, 1)

    def generate(
        self, typed: str, k: int = 10, max_new_words: int | None = None, previous: str | None = None
    ) -> Candidates:
        """Up to ``k`` complete queries starting with ``typed`` (normalized text; a trailing space
        means the last word is finished), best first. ``previous``: the session's previous query
        (normalized), whose words the cache component favours when ``cache_weight`` > 0; they
        come from the person's own session, so they may follow any context."""
        if k < 1:
            raise ValueError(f"Generator.generate: k must be at least 1, got {k!r}")
        max_new = self.max_new_words if max_new_words is None else max_new_words
        if max_new < 0:
            raise ValueError(f"Generator.generate: max_new_words must be >= 0, got {max_new!r}")
        words = typed.split(" ")
        complete, partial = words[:-1], words[-1]
        if "" in complete:
            raise ValueError(
                f"Generator.generate: {typed[:40]!r} is not normalized (one space between words, none "
                "in front): pass it through indexer.normalize.normalize_prefix first"
            )
        if complete and self.blocklist.blocks(" ".join(complete)):
            return _empty()
        get = self._ids.get
        base = np.array([self._bos] + [get(w, -1) for w in complete[-self._width :]], dtype=np.int64)
        cache = self._no_cache
        if previous and self.cache_weight > 0.0:
            cache = self.cache_words(previous)
        seqs, logp, end, n_new, completed, counts, backoffs = generate_ids(
            self.arrays,
            base,
            encode(partial),
            bool(partial),
            k,
            self.reserve,
            self.beam,
            self.expand,
            max_new,
            self.min_end_fraction,
            cache,
            self.cache_weight,
        )
        head = typed[: len(typed) - len(partial)]
        spelled = decode_runs(*spell(self.arrays.vocab_indptr, self.arrays.vocab_chars, seqs))
        texts = [head + text for text in spelled]
        if self.blocklist.patterns:
            keep = [i for i, text in enumerate(texts) if not self.blocklist.blocks(text)]
            if len(keep) < len(texts):
                texts = [texts[i] for i in keep]
                logp, end, n_new, completed, counts, backoffs = (
                    a[keep] for a in (logp, end, n_new, completed, counts, backoffs)
                )
        return Candidates(texts, logp, end, n_new, completed, counts, backoffs)

    def cache_words(self, previous: str) -> np.ndarray:
        """The cache component's word ids of ``previous`` (sorted, distinct, known words only),
        kept per previous query: it changes only when a query is submitted."""
        return through_cache(self._cache_words, [previous], self._word_ids, _CACHE_WORDS_KEPT)[0]

    def _word_ids(self, texts: list[str]) -> list[np.ndarray]:
        get = self._ids.get
        out = []
        for text in texts:
            ids = np.unique(np.fromiter((get(w, -1) for w in text.split(" ")), np.int64))
            out.append(ids[ids >= 0])
        return out

    def complete_word(
        self, words: list[str], partial: str, m: int, exclude: str = ""
    ) -> list[tuple[str, float]]:
        """The ``m`` likeliest vocabulary words starting with ``partial`` after the complete
        ``words`` (normalized), never ``exclude``, with their natural log probabilities, best first."""
        if m < 1 or not partial or (words and self.blocklist.blocks(" ".join(words))):
            return []
        get = self._ids.get
        base = np.array([self._bos] + [get(w, -1) for w in words[-self._width :]], dtype=np.int64)
        out_words, out_probs = np.empty(m, dtype=np.int64), np.empty(m, dtype=np.float64)
        got = word_completions(self.arrays, base, encode(partial), m, get(exclude, -1), out_words, out_probs)
        vocab = self._words
        return [(vocab[w], math.log(p)) for w, p in zip(out_words[:got].tolist(), out_probs[:got].tolist())]

    def score(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """log P(words | ``<s>``) and log P(``</s>`` | words) of each normalized text; an unknown
        word counts :data:`UNKNOWN_LOGP`."""
        get, unknown = self._ids.get, repeat(-1)
        tokens: list[int] = []
        ends: list[int] = []
        for text in texts:
            tokens.extend(map(get, text.split(" "), unknown))
            ends.append(len(tokens))
        starts = np.array([0, *ends[:-1]] if ends else [], dtype=np.int64)
        tokens_, ends_ = np.array(tokens, dtype=np.int64), np.array(ends, dtype=np.int64)
        return sequence_logprobs(self.arrays, tokens_, starts, ends_, UNKNOWN_LOGP)

    def warm_up(self) -> None:
        """Compile every kernel (numba caches them on disk after the first process)."""
        self.generate("", 10)
        self.score(["warm up"])
        if self._words:
            self.complete_word([], self._words[0][:1], 2)
            self.generate(self._words[0][:1], 10)
            self.generate(self._words[0] + " ", 10)


def _empty() -> Candidates:
    return Candidates(
        [],
        np.empty(0, np.float64),
        np.empty(0, np.float64),
        np.empty(0, np.int32),
        np.empty(0, bool),
        np.empty(0, np.int64),
        np.empty(0, np.int32),
    )
