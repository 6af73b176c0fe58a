"""A word n-gram language model over training queries, for completions nobody typed whole before.

Estimate: **interpolated Kneser-Ney** with one absolute discount ``D`` per model,

    P(w | h) = max(a(h w) - D, 0) / A(h) + gamma(h) * P(w | h')        (h' = h without its first word)

where ``a`` is the raw count at the highest order and for n-grams starting with ``<s>``, and the
continuation count ``N1+(. h w)`` (distinct left neighbours) below; ``A(h)`` sums ``a`` over every
successor of ``h`` seen in training, and ``gamma(h)`` is the mass the kept successors leave over,
so each conditional sums to one over the vocabulary plus ``</s>``. The unigram level interpolates
with the uniform distribution. Chosen over stupid backoff because it costs the same at serve time
(per candidate word one binary search per order and one multiply-add: ``gamma`` is precomputed per
context) while its probabilities are normalized -- the end-of-query probability and the log
probability of an added part mean the same thing in every context, which a learned ranker needs
from a feature -- and continuation counts keep words that only follow one context ("francisco")
from dominating the backed-off completion of an unfinished word.

Privacy (``min_users``): an n-gram is kept only if at least ``min_users`` distinct users used it in
queries the blocklist lets through (with ``users=None``, as for one-query-per-line logs, every
query occurrence counts as its own user). Since a sub-n-gram has at least the users of the
n-grams containing it, the kept n-grams form a trie. Dropped successors make a context "open":
``closed_`` records for each context whether all its successors were kept, and generation only
backs off past a closed context, so a generated word after ``h`` is either a kept successor of
``h`` or a word nobody ever typed after ``h`` (see ``autocomplete/generation.py``). Queries with a
blocklisted word or pattern never count towards keeping an n-gram, so a blocklisted word is never
in the vocabulary; patterns are saved with the model for a final check of generated texts.
Aggregate statistics (``A(h)``, continuation counts, ``closed_``) include every query.

Layout: the vocabulary is a :class:`~indexer.labels.LabelSet` of the kept words in code point
order (the words starting with a partial word are one id range), then ``<s>`` = ``n_words`` and
``</s>`` = ``n_words + 1``. The kept n-grams of all orders are one flat trie: entry ids
``[0, n_words + 2)`` are the tokens, then the bigrams sorted by (context entry, word), then the
trigrams, ...; entry ``e``'s successors are the entries ``ptr[e]:ptr[e + 1]``, sorted by word id.
:meth:`WordLanguageModel.save` writes a folder of its own (``params.json`` and the arrays), e.g.
``language/`` inside a model folder.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numba
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from indexer.labels import LabelSet
from indexer.modelio import ModelFileError, freeze, load_array, read_params, save_params
from indexer.popularity import build_sparse_table
from indexer.privacy import Blocklist

_LAYOUT = 1
BOS_TEXT, EOS_TEXT = "<s>", "</s>"


class LanguageArrays(NamedTuple):
    """The arrays a generation kernel reads (one NamedTuple, like pynndescent's ``FlatTree``).

    ``n_entries`` = number of tokens + kept n-grams of every order >= 2.
    """

    ptr: np.ndarray  # int64 (n_entries + 1,): successors of entry e are entries ptr[e]:ptr[e+1]
    word: np.ndarray  # int32 (n_entries,): the last token of each entry
    prob: np.ndarray  # float64 (n_entries,): tokens: P(w); n-grams: the discounted term of w after h
    backoff: np.ndarray  # float64 (n_entries,): gamma of the entry as a context (1 if it has none)
    closed: np.ndarray  # bool (n_entries,): every successor seen in training was kept
    by_prob: np.ndarray  # int32 (n_entries,): within each successor row, entry ids by prob descending
    counts: np.ndarray  # int64 (n_entries,): raw training count of the n-gram (tokens: occurrences)
    end_fraction: np.ndarray  # float64 (n_tokens,): c(w </s>) / c(w) if the bigram is kept, else 0
    unigram_table: np.ndarray  # int32 (levels, n_words): sparse table, the likeliest word of a range
    vocab_indptr: np.ndarray  # int64 (n_words + 1,): the words as code points, for prefix ranges
    vocab_chars: np.ndarray  # int32
    n_words: int
    order: int


@numba.njit(cache=True, inline="always")
def lower_bound(values: np.ndarray, lo: int, hi: int, value: int) -> int:
    """The first position in ``[lo, hi)`` of the ascending ``values`` not below ``value`` (``hi``: none)."""
    while lo < hi:
        mid = (lo + hi) // 2
        if values[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True, inline="always")
def gallop(values: np.ndarray, lo: int, hi: int, value: int) -> int:
    """:func:`lower_bound` for a ``value`` expected near ``lo``: steps of 1, 2, 4, ... from ``lo``,
    then a bisection of the last step (fewer reads than bisecting ``[lo, hi)`` when it is near)."""
    a, b, step = lo, lo, 1
    while b < hi and values[b] < value:
        a = b + 1
        b = lo + step
        step *= 2
    return lower_bound(values, a, min(b, hi), value)


@numba.njit(cache=True, inline="always")
def find_entry(ptr: np.ndarray, word: np.ndarray, entry: int, token: int, last: bool = False) -> int:
    """The entry of (``entry``'s n-gram, ``token``), or -1 when that n-gram is not kept.
    ``last``: ``token`` is ``</s>``, the largest id, so it can only be the last of its row."""
    if token < 0:
        return -1
    if last:
        end = ptr[entry + 1] - 1
        return end if end >= ptr[entry] and word[end] == token else -1
    lo = lower_bound(word, ptr[entry], ptr[entry + 1], token)
    if lo < ptr[entry + 1] and word[lo] == token:
        return lo
    return -1


@numba.njit(cache=True, inline="always")
def context_entries(lm: LanguageArrays, history: np.ndarray, out: np.ndarray) -> int:
    """Entries of the stored suffixes of ``history`` (tokens, -1 = unknown word): ``out[j - 1]`` is
    the suffix of j tokens; returns how many (the longest stored context has that many tokens)."""
    n = history.shape[0]
    found = 0
    for j in range(1, min(lm.order - 1, n) + 1):
        e = history[n - j]
        if e < 0:
            break
        for i in range(n - j + 1, n):
            e = find_entry(lm.ptr, lm.word, e, history[i])
            if e < 0:
                break
        if e < 0:
            break
        out[j - 1] = e
        found = j
    return found


@numba.njit(cache=True, inline="always")
def word_prob(
    ptr: np.ndarray,
    word: np.ndarray,
    prob: np.ndarray,
    backoff: np.ndarray,
    contexts: np.ndarray,
    n_contexts: int,
    token: int,
    last: bool = False,
) -> float:
    """Interpolated Kneser-Ney P(token | context) from the entries of :func:`context_entries`
    (``last``: ``token`` is ``</s>``, see :func:`find_entry`).

    Takes the arrays it reads, not the whole :class:`LanguageArrays`, and is inlined: a call
    that passes arrays pays a reference count update per array, more than the lookup costs.
    """
    p = prob[token]
    for j in range(n_contexts):
        e = contexts[j]
        f = find_entry(ptr, word, e, token, last)
        p = backoff[e] * p
        if f >= 0:
            p += prob[f]
    return p


@dataclasses.dataclass
class _Tokens:
    """Every (query, user) unit as ``<s> w1 .. wn </s>`` over the raw (unfiltered, sorted) words."""

    words: list[str]
    tok: np.ndarray  # int64 (n_positions,): token ids, <s> = len(words), </s> = len(words) + 1
    position: np.ndarray  # int64: position of each token inside its query
    weight: np.ndarray  # int64: how often the unit of each position occurred
    owner: np.ndarray  # int64: the user of each position
    clean: np.ndarray  # bool: the unit's query passes the blocklist
    n_owners: int
    n_blocked: int
    n_distinct: int


def _tokenize(queries: list[str], users: list[Any] | None, blocklist: Blocklist) -> _Tokens:
    if users is not None and len(users) != len(queries):
        raise ValueError(
            f"WordLanguageModel.fit: {len(queries)} queries but {len(users)} users; "
            "pass one user per query, or users=None"
        )
    owners = range(len(queries)) if users is None else users
    units: dict[tuple[str, Any], int] = {}
    for query, owner in zip(queries, owners):
        if query:
            units[(query, owner)] = units.get((query, owner), 0) + 1
    if not units:
        raise ValueError("WordLanguageModel.fit: no non-empty query to learn from")
    blocked: dict[str, bool] = {}
    vocabulary: set[str] = set()
    for query, _ in units:
        if query not in blocked:
            parts = query.split(" ")
            if "" in parts or "\x00" in query:
                raise ValueError(
                    f"WordLanguageModel.fit: query {query[:40]!r} is not normalized (words separated "
                    "by one space, no NUL): normalize it with indexer.normalize first"
                )
            blocked[query] = blocklist.blocks(query)
            vocabulary.update(parts)
    words = sorted(vocabulary)
    index = {w: i for i, w in enumerate(words)}
    bos, eos = len(words), len(words) + 1
    owner_ids: dict[Any, int] = {}
    sequences = [[bos] + [index[w] for w in query.split(" ")] + [eos] for query, _ in units]
    lengths = np.fromiter((len(q) for q in sequences), np.int64, len(sequences))
    unit_of = np.repeat(np.arange(len(sequences)), lengths)
    starts = np.zeros(len(sequences), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    unit_owner = np.fromiter(
        (owner_ids.setdefault(owner, len(owner_ids)) for _, owner in units), np.int64, len(units)
    )
    return _Tokens(
        words=words,
        tok=np.fromiter((t for q in sequences for t in q), np.int64, int(lengths.sum())),
        position=np.arange(int(lengths.sum())) - np.repeat(starts, lengths),
        weight=np.fromiter(units.values(), np.int64, len(units))[unit_of],
        owner=unit_owner[unit_of],
        clean=np.fromiter((not blocked[q] for q, _ in units), bool, len(units))[unit_of],
        n_owners=max(len(owner_ids), 1),
        n_blocked=int(sum(blocked.values())),
        n_distinct=len(blocked),
    )


@dataclasses.dataclass
class _Level:
    """The distinct raw n-grams of one order, sorted by (prefix n-gram id, last token)."""

    at: np.ndarray  # int64 (n_positions,): the n-gram ending at each position, -1 for none
    prefix: np.ndarray  # int64 (size,): id of the (k-1)-gram it extends (order 1: -1)
    last: np.ndarray  # int64 (size,): its last token
    count: np.ndarray  # int64 (size,): occurrences
    kept: np.ndarray  # bool (size,): used by at least min_users users in clean queries
    starts_bos: np.ndarray  # bool (size,)
    adjusted: np.ndarray  # float64 (size,): the Kneser-Ney count (raw, or continuation count)
    size: int


def _count_levels(tokens: _Tokens, order: int, min_users: int) -> list[_Level]:
    """Raw counts, distinct users and Kneser-Ney counts of every order (index 0 unused)."""
    tok = tokens.tok
    n_tokens = len(tokens.words) + 2
    bos, eos = n_tokens - 2, n_tokens - 1
    at = [np.empty(0, np.int64), tok.copy()]
    prefix = [np.empty(0, np.int64), np.full(n_tokens, -1, np.int64)]
    last = [np.empty(0, np.int64), np.arange(n_tokens, dtype=np.int64)]
    first = [np.empty(0, np.int64), np.empty(0, np.int64)]  # a position of each n-gram
    for k in range(2, order + 1):
        before = np.concatenate(([-1], at[k - 1][:-1]))
        where = np.flatnonzero((tokens.position >= k - 1) & (before >= 0))
        keys = before[where] * n_tokens + tok[where]
        uniq, first_at, inverse = np.unique(keys, return_index=True, return_inverse=True)
        ids = np.full(tok.shape[0], -1, np.int64)
        ids[where] = inverse
        at.append(ids)
        prefix.append(uniq // n_tokens)
        last.append(uniq % n_tokens)
        first.append(where[first_at])
    levels: list[_Level] = [_Level(*(np.empty(0),) * 7, size=0)]  # type: ignore[arg-type]
    for k in range(1, order + 1):
        size = prefix[k].shape[0]
        valid = at[k] >= 0
        if k == 1:
            valid &= tok != bos
        ids = at[k][valid]
        count = np.bincount(ids, weights=tokens.weight[valid], minlength=size).astype(np.int64)
        clean = tokens.clean[valid]
        pairs = np.unique(ids[clean] * tokens.n_owners + tokens.owner[valid][clean])
        kept = np.bincount(pairs // tokens.n_owners, minlength=size) >= min_users
        if k == 1:
            kept[bos] = kept[eos] = True
            starts_bos = np.arange(n_tokens) == bos
        else:
            kept &= levels[k - 1].kept[prefix[k]]
            starts_bos = levels[k - 1].starts_bos[prefix[k]]
        if k == order:
            adjusted = count.astype(np.float64)
        else:  # continuation count: distinct tokens seen before the n-gram
            continuation = np.bincount(at[k][first[k + 1]], minlength=size)
            adjusted = np.where(starts_bos, count, continuation).astype(np.float64)
        if k == 1:
            adjusted[bos] = 0.0
        levels.append(_Level(at[k], prefix[k], last[k], count, kept, starts_bos, adjusted, size))
    return levels


def _kneser_ney_trie(tokens: _Tokens, levels: list[_Level], discount: float) -> dict[str, Any]:
    """Interpolated Kneser-Ney over the kept n-grams, laid out as the flat trie of the module doc."""
    order = len(levels) - 1
    n_raw = len(tokens.words)
    bos, eos = n_raw, n_raw + 1
    unigrams = levels[1]
    kept_words = np.flatnonzero(unigrams.kept[:n_raw])
    n_words = kept_words.shape[0]
    # new ids: kept words keep their sorted order, then <s>, </s>; kept n-grams keep theirs
    new_id = [np.empty(0, np.int64), np.full(n_raw + 2, -1, np.int64)]
    new_id[1][kept_words] = np.arange(n_words)
    new_id[1][bos], new_id[1][eos] = n_words, n_words + 1
    for k in range(2, order + 1):
        ids = np.full(levels[k].size, -1, np.int64)
        ids[levels[k].kept] = np.arange(int(levels[k].kept.sum()))
        new_id.append(ids)
    token_order = np.flatnonzero(unigrams.kept)  # raw ids of the kept tokens, in new id order

    terms = np.maximum(unigrams.adjusted - discount, 0.0) / max(unigrams.adjusted.sum(), 1e-300)
    terms[~unigrams.kept] = 0.0
    unigram = terms + (1.0 - terms.sum()) / (n_words + 1)  # the leftover mass, uniform
    unigram[bos] = 0.0
    prob = [unigram[token_order]]
    counts = [unigrams.count[token_order]]
    backoff, closed = [], []
    for k in range(1, order + 1):
        level = levels[k]
        selected = token_order if k == 1 else np.flatnonzero(level.kept)
        if k == order:
            backoff.append(np.ones(selected.shape[0]))
            closed.append(np.ones(selected.shape[0], dtype=bool))
            continue
        nxt = levels[k + 1]
        total = np.bincount(nxt.prefix, weights=nxt.adjusted, minlength=level.size)
        term = np.maximum(nxt.adjusted - discount, 0.0) / np.maximum(total[nxt.prefix], 1e-300)
        term[~nxt.kept] = 0.0
        gamma = 1.0 - np.bincount(nxt.prefix, weights=term, minlength=level.size)
        gamma[total == 0] = 1.0
        every = np.bincount(nxt.prefix, minlength=level.size)
        kept_successors = np.bincount(nxt.prefix[nxt.kept], minlength=level.size)
        backoff.append(np.clip(gamma, 0.0, 1.0)[selected])
        closed.append((every == kept_successors)[selected])
        prob.append(term[nxt.kept])
        counts.append(nxt.count[nxt.kept])

    sizes = [int(p.shape[0]) for p in prob]
    offsets = np.zeros(order + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    n_entries = int(offsets[-1])
    ptr = np.empty(n_entries + 1, dtype=np.int64)
    word = np.empty(n_entries, dtype=np.int32)
    by_prob = np.empty(n_entries, dtype=np.int32)
    word[: n_words + 2] = np.arange(n_words + 2)
    by_prob[: n_words + 2] = np.arange(n_words + 2)
    for k in range(2, order + 1):
        level = levels[k]
        context = new_id[k - 1][level.prefix[level.kept]]
        successor = new_id[1][level.last[level.kept]]
        lo, hi = offsets[k - 1], offsets[k]
        word[lo:hi] = successor
        by_prob[lo:hi] = lo + np.lexsort((successor, -prob[k - 1], context))
        ptr[offsets[k - 2] : offsets[k - 1]] = lo + np.searchsorted(context, np.arange(sizes[k - 2]))
    ptr[offsets[order - 1] :] = n_entries
    return {
        "n_words": n_words,
        "words": [tokens.words[i] for i in kept_words],
        "word_counts": unigrams.count[kept_words],
        "ptr": ptr,
        "word": word,
        "prob": np.concatenate(prob).astype(np.float64),
        "backoff": np.concatenate(backoff).astype(np.float64),
        "closed": np.concatenate(closed).astype(bool),
        "by_prob": by_prob,
        "counts": np.concatenate(counts).astype(np.int64),
        "level_offsets": offsets,
    }


def _end_fractions(
    ptr: np.ndarray, word: np.ndarray, counts: np.ndarray, offsets: np.ndarray, n_words: int
) -> np.ndarray:
    """Per token, c(w </s>) / c(w) when the bigram (w, </s>) was kept, else 0."""
    end = np.zeros(n_words + 2, dtype=np.float64)
    bigrams = slice(int(offsets[1]), int(offsets[2]))
    is_end = word[bigrams] == n_words + 1
    context = np.repeat(np.arange(n_words + 2), np.diff(ptr[: n_words + 3]))
    enders = context[is_end]
    end[enders] = counts[bigrams][is_end] / np.maximum(counts[enders], 1)
    end[n_words] = 0.0
    return end


class WordLanguageModel(BaseEstimator):
    """Interpolated Kneser-Ney word n-gram model over normalized queries, privacy-filtered.

    Parameters
    ----------
    order : int
        The longest n-gram (2 = bigrams, 3 = trigrams, ...); ``<s>`` and ``</s>`` count as words.
    min_users : int
        Keep an n-gram only if at least this many distinct users used it.
    blocklist : str
        Path of a blocklist file (:class:`indexer.privacy.Blocklist` format), "" for none.
    discount : float
        The absolute discount D of Kneser-Ney, in (0, 1).

    Attributes
    ----------
    vocabulary_ : LabelSet
        The kept words in code point order, with their training counts.
    ptr_, word_, prob_, backoff_, closed_, by_prob_, counts_ : ndarray, shape (n_entries_,)
        The flat trie of kept n-grams (``ptr_`` has one more element); see :class:`LanguageArrays`.
    end_fraction_ : ndarray of float64, shape (n_words_ + 2,)
    unigram_table_ : ndarray of int32, shape (levels, n_words_)
    level_offsets_ : ndarray of int64, shape (order + 1,)
        Entry ids of order k are ``level_offsets_[k - 1]:level_offsets_[k]``.
    blocklist_words_, blocklist_patterns_ : list of str
        The blocklist the model was trained with (generation checks its texts against it).
    summary_ : dict
        Sizes and what the privacy filters removed.
    """

    ARRAYS = (
        "ptr",
        "word",
        "prob",
        "backoff",
        "closed",
        "by_prob",
        "counts",
        "end_fraction",
        "unigram_table",
    )

    def __init__(
        self, *, order: int = 3, min_users: int = 2, blocklist: str = "", discount: float = 0.75
    ) -> None:
        self.order = order
        self.min_users = min_users
        self.blocklist = blocklist
        self.discount = discount

    def _check_params(self) -> None:
        if not isinstance(self.order, int) or isinstance(self.order, bool) or not 2 <= self.order <= 6:
            raise ValueError(f"WordLanguageModel: order must be a whole number in 2..6, got {self.order!r}")
        if not isinstance(self.min_users, int) or isinstance(self.min_users, bool) or self.min_users < 1:
            raise ValueError(
                f"WordLanguageModel: min_users must be a whole number >= 1, got {self.min_users!r}"
            )
        if not isinstance(self.discount, (int, float)) or not 0.0 < self.discount < 1.0:
            raise ValueError(f"WordLanguageModel: discount must be in (0, 1), got {self.discount!r}")
        if not isinstance(self.blocklist, str):
            raise ValueError(
                f"WordLanguageModel: blocklist must be a path string or '', got {self.blocklist!r}"
            )

    # ------------------------------------------------------------------ fit
    def fit(self, queries: Iterable[str], users: Iterable[str] | None = None) -> WordLanguageModel:
        """Count the n-grams of ``queries`` (normalized: words separated by one space).

        ``users`` (same length) names who issued each query; ``None`` treats every query
        occurrence as its own user, so ``min_users`` then counts occurrences.
        """
        self._check_params()
        blocklist = Blocklist.read(self.blocklist)
        tokens = _tokenize(list(queries), None if users is None else list(users), blocklist)
        levels = _count_levels(tokens, self.order, self.min_users)
        trie = _kneser_ney_trie(tokens, levels, float(self.discount))
        n_words = trie["n_words"]
        self.vocabulary_ = LabelSet(trie["words"], trie["word_counts"])
        for name in ("ptr", "word", "prob", "backoff", "closed", "by_prob", "counts", "level_offsets"):
            setattr(self, f"{name}_", trie[name])
        self.end_fraction_ = _end_fractions(self.ptr_, self.word_, self.counts_, self.level_offsets_, n_words)
        self.unigram_table_ = build_sparse_table(self.prob_[:n_words].copy())
        self.blocklist_words_ = sorted(blocklist.words)
        self.blocklist_patterns_ = [p.pattern for p in blocklist.patterns]
        self.summary_ = {
            "n_words": int(n_words),
            "n_raw_words": len(tokens.words),
            "ngrams_per_order": np.diff(self.level_offsets_).tolist(),
            "raw_ngrams_per_order": [level.size for level in levels[1:]],
            "blocked_queries": tokens.n_blocked,
            "distinct_queries": tokens.n_distinct,
            "layout": _LAYOUT,
        }
        self._arrays = self._make_arrays()
        return self

    def _make_arrays(self) -> LanguageArrays:
        arrays = {name: np.ascontiguousarray(getattr(self, f"{name}_")) for name in self.ARRAYS}
        freeze(*arrays.values())
        return LanguageArrays(
            vocab_indptr=np.ascontiguousarray(self.vocabulary_.indptr),
            vocab_chars=np.ascontiguousarray(self.vocabulary_.chars),
            n_words=int(len(self.vocabulary_)),
            order=int(self.order),
            **arrays,
        )

    # ------------------------------------------------------------------ reading
    @property
    def n_words_(self) -> int:
        check_is_fitted(self, "vocabulary_")
        return len(self.vocabulary_)

    def arrays(self) -> LanguageArrays:
        """The kernel view of the model."""
        check_is_fitted(self, "vocabulary_")
        return self._arrays

    def token_ids(self, words: Sequence[str]) -> np.ndarray:
        """Token ids (int64) of words; ``<s>``/``</s>`` are the boundary tokens, -1 an unknown word."""
        check_is_fitted(self, "vocabulary_")
        n = len(self.vocabulary_)
        special = {BOS_TEXT: n, EOS_TEXT: n + 1}
        return np.array(
            [special[w] if w in special else self.vocabulary_.id_of(w) for w in words], dtype=np.int64
        )

    def token_text(self, token: int) -> str:
        n = len(self.vocabulary_)
        return BOS_TEXT if token == n else EOS_TEXT if token == n + 1 else self.vocabulary_.text(token)

    def probability(self, word: str, context: Sequence[str] = ()) -> float:
        """P(word | context); ``context`` may start with ``<s>``, ``word`` may be ``</s>``."""
        arrays = self.arrays()
        token = int(self.token_ids([word])[0])
        if token < 0 or token == arrays.n_words:
            return 0.0
        history = self.token_ids(list(context))
        entries = np.empty(max(self.order - 1, 1), dtype=np.int64)
        found = context_entries(arrays, history, entries)
        return float(word_prob(arrays.ptr, arrays.word, arrays.prob, arrays.backoff, entries, found, token))

    def log_probability(self, query: str) -> float:
        """Natural log P(query </s> | <s>) under the model (-inf with an unknown word)."""
        words = [BOS_TEXT] + query.split(" ") + [EOS_TEXT]
        total = 0.0
        for i in range(1, len(words)):
            p = self.probability(words[i], words[max(0, i - self.order + 1) : i])
            if p <= 0.0:
                return -math.inf
            total += math.log(p)
        return total

    def ngram_count(self, ngram: Sequence[str]) -> int:
        """Training count of a kept n-gram (words, ``<s>``/``</s>`` allowed); 0 if it was not kept."""
        arrays = self.arrays()
        tokens = self.token_ids(list(ngram))
        if not len(tokens) or tokens[0] < 0 or len(tokens) > self.order:
            return 0
        e = int(tokens[0])
        for t in tokens[1:]:
            e = find_entry(arrays.ptr, arrays.word, e, int(t))
            if e < 0:
                return 0
        return int(arrays.counts[e])

    def successors(self, context: Sequence[str]) -> list[str]:
        """The kept successor words of a context n-gram, in id order (for inspection and tests)."""
        arrays = self.arrays()
        tokens = self.token_ids(list(context))
        if not len(tokens) or tokens[0] < 0:
            return []
        e = int(tokens[0])
        for t in tokens[1:]:
            e = find_entry(arrays.ptr, arrays.word, e, int(t))
            if e < 0:
                return []
        return [self.token_text(int(t)) for t in arrays.word[arrays.ptr[e] : arrays.ptr[e + 1]]]

    # ------------------------------------------------------------------ save / load
    def save(self, folder: str | Path) -> None:
        """``params.json``, ``vocabulary/`` (a LabelSet) and one ``.npy`` per array into ``folder``."""
        check_is_fitted(self, "vocabulary_")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.vocabulary_.save(folder / "vocabulary")
        for name in self.ARRAYS + ("level_offsets",):
            np.save(folder / f"{name}.npy", getattr(self, f"{name}_"))
        summary = dict(self.summary_)
        summary["blocklist_words"] = self.blocklist_words_
        summary["blocklist_patterns"] = self.blocklist_patterns_
        save_params(folder, type(self).__name__, self.get_params(), summary)

    @classmethod
    def load(cls, folder: str | Path, mmap: bool = True) -> WordLanguageModel:
        """A model saved by :meth:`save`, arrays memory-mapped; a bad file raises ``ModelFileError``."""
        folder = Path(folder)
        body = read_params(folder, kind=cls.__name__)
        summary = body.get("summary", {})
        if summary.get("layout") != _LAYOUT:
            raise ModelFileError(
                f"{folder / 'params.json'} has language-model layout {summary.get('layout')!r}, "
                f"this code reads {_LAYOUT}: rebuild the model."
            )
        try:
            self = cls(**body["params"])
            self._check_params()
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(
                f"{folder / 'params.json'} does not hold {cls.__name__} parameters ({exc}): "
                "rebuild the model."
            ) from exc
        self.vocabulary_ = LabelSet.load(folder / "vocabulary", mmap=mmap)
        for name in cls.ARRAYS + ("level_offsets",):
            setattr(self, f"{name}_", load_array(folder / f"{name}.npy", mmap=mmap))
        self.blocklist_words_ = list(summary.get("blocklist_words", []))
        self.blocklist_patterns_ = list(summary.get("blocklist_patterns", []))
        self.summary_ = {k: v for k, v in summary.items() if not k.startswith("blocklist_")}
        self._verify(folder)
        self._arrays = self._make_arrays()
        return self

    def _verify(self, folder: Path) -> None:
        n_words = len(self.vocabulary_)
        n = int(self.word_.shape[0])
        expect = {
            "ptr": ((n + 1,), np.int64),
            "word": ((n,), np.int32),
            "prob": ((n,), np.float64),
            "backoff": ((n,), np.float64),
            "closed": ((n,), np.bool_),
            "by_prob": ((n,), np.int32),
            "counts": ((n,), np.int64),
            "end_fraction": ((n_words + 2,), np.float64),
            "level_offsets": ((self.order + 1,), np.int64),
        }
        for name, (shape, dtype) in expect.items():
            array = getattr(self, f"{name}_")
            if array.shape != shape or array.dtype != dtype:
                raise ModelFileError(
                    f"{folder / (name + '.npy')} has shape {array.shape} ({array.dtype}), expected "
                    f"{shape} {np.dtype(dtype)}: the model folder is corrupt, rebuild it."
                )
        table = self.unigram_table_
        if table.ndim != 2 or table.dtype != np.int32 or (n_words and table.shape[1] != n_words):
            raise ModelFileError(
                f"{folder / 'unigram_table.npy'} does not match the {n_words} words: rebuild the model."
            )
        ptr = self.ptr_
        if (
            n < n_words + 2
            or self.level_offsets_[-1] != n
            or ptr[0] != n_words + 2
            or ptr[-1] != n
            or (n and np.any(np.diff(ptr) < 0))
        ):
            raise ModelFileError(f"{folder / 'ptr.npy'} is not a valid successor index: rebuild the model.")
