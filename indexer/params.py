"""Frozen parameter objects for every offline stage.

Each stage reads exactly one of these. They are built from a ``configs/*.toml`` section
(see :func:`from_mapping`), printed in the training summary and saved into the model folder,
so a model always says how it was made.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from indexer.errors import ConfigError, LogFormatError  # noqa: F401 - LogFormatError is re-exported

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class LogParams:
    """How to read a query log and cut it into sessions and splits.

    ``format``: ``"tsv"`` (a header row, tab-separated, no quoting), ``"csv"`` (a header row,
    ``delimiter`` and ``quote``), ``"jsonl"`` (one JSON object per line), ``"parquet"`` (needs
    pyarrow) or ``"lines"`` (one query per line; consecutive lines are one user's consecutive
    queries, no times). Columns are found by name. Times are detected (ISO 8601, epoch seconds or
    milliseconds) unless ``time_format`` (a strptime format) is set.
    Splits: sessions go by their start to ``train``/``valid``/``test``, each two inclusive
    ``YYYY-MM-DD`` dates, when all three are set; otherwise the log's own time span (for
    ``lines``, its queries by position) is cut by ``split_fractions``. ``max_query_chars`` drops
    longer queries (0 keeps all). ``holdout_new_users``: training leaves out the new users of the
    new-users protocol (``[eval] new_users_fraction`` and ``new_users_salt``).
    """

    format: str = "tsv"
    user_column: str = "AnonID"
    query_column: str = "Query"
    time_column: str = "QueryTime"
    time_format: str = ""
    delimiter: str = ","
    quote: str = '"'
    normalization: str = "aol"
    session_gap_seconds: int = 1800
    train: tuple[str, ...] = ()
    valid: tuple[str, ...] = ()
    test: tuple[str, ...] = ()
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    max_query_chars: int = 0
    holdout_new_users: bool = False


@dataclasses.dataclass(frozen=True)
class PrivacyParams:
    """Which training queries may ever be suggested.

    ``min_users``: a query must have been issued by at least this many distinct users.
    ``blocklist``: path of a file with one word or ``re:`` regular expression per line; a label
    containing a listed word (whole word, case-insensitive) or matching a pattern is dropped.
    """

    min_users: int = 2
    blocklist: str = ""


@dataclasses.dataclass(frozen=True)
class FeatureParams:
    """Input features: the typed prefix and the previous query.

    The prefix becomes character n-gram TF-IDF (``ngram_min``..``ngram_max``), each n-gram's count
    weighted by ``1 / (1 + i) ** position_decay`` for the i-th n-gram of its word. The previous
    query becomes word TF-IDF (unigrams and bigrams). Each block is L2-normalized, then scaled by
    its weight.
    """

    ngram_min: int = 1
    ngram_max: int = 3
    position_decay: float = 1.0
    prefix_weight: float = 1.0
    previous_weight: float = 1.0
    previous_ngram_max: int = 2
    min_df: int = 1
    max_features: int = 0


@dataclasses.dataclass(frozen=True)
class TreeParams:
    """Hybrid label tree: ``trie_depth`` trie layers, then balanced spherical k-means.

    ``trie_depth = 0`` is a pure k-means tree; a depth larger than every label a pure trie.
    ``pifa_weight`` mixes the mean input feature of a label's training examples into the
    label embedding (0 = label text only).
    """

    trie_depth: int = 1
    branching: int = 2
    max_leaf_size: int = 32
    kmeans_iterations: int = 20
    pifa_weight: float = 0.0
    random_state: int = 0


@dataclasses.dataclass(frozen=True)
class TrainParams:
    """Per-node linear scorers: L2-regularized squared hinge by dual coordinate descent.

    ``prefixes_per_pair``: training examples per (previous, next) pair, each with a distinct prefix
    length of the next query drawn uniformly (0: every prefix length).
    """

    cp: float = 1.0
    cn: float = 1.0
    bias: float = 1.0
    max_iter: int = 20
    tol: float = 0.1
    threshold: float = 0.1
    prefixes_per_pair: int = 3


@dataclasses.dataclass(frozen=True)
class SearchParams:
    """Online prediction: the beam width, how many labels the beam returns for re-ranking, and
    how much popularity counts in it (score = model score * (1 + count) ** popularity_weight).
    ``unseen_tails``: for a prefix no logged query starts with, how many of its word-boundary
    tails (longest first) are completed instead (0: answer nothing). With a learned ranker, the
    beam's ``candidates`` best and up to ``followed`` queries that followed the previous query in
    training go to the ranker."""

    beam_width: int = 10
    candidates: int = 30
    popularity_weight: float = 1.0
    unseen_tails: int = 1
    followed: int = 10


@dataclasses.dataclass(frozen=True)
class LanguageParams:
    """The word n-gram language model behind generated completions (``indexer.language``).

    ``order``: longest n-gram (3 = trigrams); ``discount``: Kneser-Ney's absolute discount.
    Generation: ``max_new_words`` whole words after the typed ones (0: complete the typed word
    only), ``beam`` states per step, ``expand`` next words per state, ``reserve`` of the
    ``candidates`` places kept for the shortest completions, ``min_end_fraction``: a completion
    may end in a word only if that share of its training occurrences ended a query.
    ``enabled = false`` trains no language model (no generated completions).
    ``context_candidates``: with a previous query, that many more are generated with its words
    mixed into every step with weight ``cache_weight`` (a cache language model: the person's own
    words may come back, "indoor pl" after "house plants" -> "indoor plants"); 0 (the default, so
    that folders trained before it existed serve as they were trained): none.
    """

    enabled: bool = True
    order: int = 3
    discount: float = 0.75
    candidates: int = 10
    max_new_words: int = 3
    beam: int = 10
    expand: int = 8
    reserve: int = 5
    min_end_fraction: float = 0.02
    context_candidates: int = 0
    cache_weight: float = 0.3


@dataclasses.dataclass(frozen=True)
class RankerParams:
    """The learned ranker over the merged candidates of every generator (``indexer.ranking``).

    ``kind``: ``"lambdarank"`` (LightGBM LambdaRank, scored at serve time by a numba kernel over
    the exported trees), or ``"none"`` (candidates in chain order). It is trained on examples from
    the last ``holdout_fraction`` of the training sessions (by start time) against generators fit on
    the rest; ``refit`` then fits the generators again on the whole training split.
    ``prefixes_per_pair``: sampled prefixes per late pair; ``typo_share`` of them get one typo of
    the keyboard model (``indexer.typos``), so the ranker also learns what a correction is worth;
    ``history_share`` of them come with the person's history (the rest without: people without a
    history, or with it turned off, are served by the same ranker). ``max_pairs``: at most about
    this many late pairs are asked, drawn at random (0: every one); with live counts every late
    query is still submitted. The chain's rows are most of a large log's training time.
    """

    kind: str = "lambdarank"
    holdout_fraction: float = 0.1
    refit: bool = True
    prefixes_per_pair: int = 2
    max_pairs: int = 0
    typo_share: float = 0.1
    history_share: float = 0.5
    n_trees: int = 50
    learning_rate: float = 0.1
    num_leaves: int = 15
    min_data_in_leaf: int = 50
    random_state: int = 0


@dataclasses.dataclass(frozen=True)
class ContextParams:
    """Evidence beyond the exact (previous, next) pairs: word links and the person's history.

    ``enabled``: fit :class:`indexer.wordlinks.WordLinks` (the ranker's word-overlap and word-link
    columns and the ``related`` link of the chain). A word link needs ``min_pairs`` consecutive
    pairs (and the privacy floor's distinct users); each word keeps its ``per_word`` strongest.
    ``related``: how many labels sharing a word with the previous query go to the ranker, found
    through the previous query's words of idf at least ``min_idf`` and its ``linked`` strongest
    linked words. ``reformulations``: how many one-edit reformulations of the previous query
    (:mod:`autocomplete.reformulations`) go to the ranker, trying ``reformulation_words``
    completions of an unfinished word. ``history``: how many of the person's past queries go to the ranker;
    ``history_length``: how many distinct past queries a person's history keeps (training and
    evaluation replay histories of this length).
    """

    enabled: bool = True
    min_pairs: int = 2
    per_word: int = 50
    related: int = 10
    linked: int = 5
    min_idf: float = 3.0
    reformulations: int = 10
    reformulation_words: int = 3
    history: int = 10
    history_length: int = 200


@dataclasses.dataclass(frozen=True)
class FuzzyParams:
    """How many typos to forgive, and how far to look.

    ``enabled``: the chain asks for corrections at all; ``when_fewer``: only when fewer than this
    many logged queries start with the typed text (1: only when none does); ``candidates``: how
    many corrected queries go to the ranker.
    ``one_typo`` / ``two_typos``: typed lengths (code points) from which one or two edits are
    allowed; shorter texts get exact prefix matching only. The defaults (1 from 4, 2 from 8)
    sit between Elasticsearch's ``fuzziness: AUTO`` (1 from 3, 2 from 6) and Meilisearch (1 from
    5, 2 from 9). Both must be at least 2 so that the allowed distance is always shorter than the
    typed text (otherwise the empty prefix, and so every label, would match).
    ``first_char_exact``: search under the typed first character first (see the module);
    ``first_char_penalty`` is added to the cost of matches found by the second pass.
    ``max_nodes``: trie nodes (rows computed) per call, over both passes; ``max_ranges``: ranges
    returned, the cheapest. ``enough_labels``: when at least this many labels are within one
    edit, do not look two edits away (0: always look as far as allowed); with a top 10 ranked by
    cost first, 10 changes no top 10 and cuts the median two-edit walk by a quarter to two
    fifths on word-like labels (not the tail: there, few labels are within one edit).
    """

    enabled: bool = True
    when_fewer: int = 1
    candidates: int = 10
    one_typo: int = 4
    two_typos: int = 8
    first_char_exact: bool = True
    first_char_penalty: int = 1
    max_nodes: int = 20000
    max_ranges: int = 128
    enough_labels: int = 0

    def __post_init__(self) -> None:
        if not 2 <= self.one_typo <= self.two_typos:
            raise ConfigError(
                f"FuzzyParams: need 2 <= one_typo <= two_typos, got one_typo={self.one_typo}, "
                f"two_typos={self.two_typos}"
            )
        if self.first_char_penalty < 0 or self.enough_labels < 0 or self.max_nodes < 1 or self.max_ranges < 1:
            raise ConfigError(
                "FuzzyParams: first_char_penalty and enough_labels must be >= 0, max_nodes and "
                f"max_ranges >= 1, got {self.first_char_penalty}, {self.enough_labels}, "
                f"{self.max_nodes}, {self.max_ranges}"
            )

    def max_distance(self, typed_length: int) -> int:
        """Edits allowed for a typed text of ``typed_length`` code points."""
        return 2 if typed_length >= self.two_typos else 1 if typed_length >= self.one_typo else 0


@dataclasses.dataclass(frozen=True)
class LiveParams:
    """Live counts and live labels (``autocomplete.live``): what serving learns from the submits.

    Each submit adds to two time-decayed counts of its query (``short_half_life_seconds``,
    ``long_half_life_seconds``) and counts its session among the query's distinct sessions of
    the last ``window_seconds``. A query submitted by at least ``min_users`` distinct sessions in
    the window (0: ``[privacy] min_users``), and not blocklisted, becomes a live label: a candidate
    for its prefixes until retraining; at most ``max_labels`` are kept (the least popular go) and
    ``candidates`` of them per keystroke go to the ranker, once ``min_prefix_chars`` characters
    are typed. ``simulate``: the ranker is trained on
    the late training sessions replayed in time order with live counts and labels, so that it
    learns what they are worth (``false``: it never sees them; serving then should keep them off).
    """

    short_half_life_seconds: float = 86400.0
    long_half_life_seconds: float = 604800.0
    window_seconds: float = 604800.0
    min_users: int = 0
    max_labels: int = 5000
    candidates: int = 5
    min_prefix_chars: int = 1
    simulate: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.short_half_life_seconds <= self.long_half_life_seconds:
            raise ConfigError(
                "live: need 0 < short_half_life_seconds <= long_half_life_seconds, got "
                f"{self.short_half_life_seconds}, {self.long_half_life_seconds}"
            )
        if self.window_seconds <= 0 or self.min_users < 0 or self.max_labels < 0 or self.candidates < 0:
            raise ConfigError(
                "live: window_seconds must be positive, min_users, max_labels and candidates >= 0; got "
                f"{self.window_seconds}, {self.min_users}, {self.max_labels}, {self.candidates}"
            )

    def threshold(self, privacy_min_users: int) -> int:
        """Distinct sessions a query needs to become a live label."""
        return self.min_users or privacy_min_users


@dataclasses.dataclass(frozen=True)
class EvalParams:
    """The benchmark protocol: which split, which prefixes, how many completions are scored.

    ``bootstrap_resamples``: resamples of the paired bootstrap of the context gain (seeded by
    ``seed``). New-users protocol: a user is new when a stable hash of ``new_users_salt`` and the
    user id falls in the first ``new_users_fraction`` of its range.
    """

    split: str = "test"
    protocol: str = "sampled"
    seed: int = 0
    k: int = 10
    latency_warmup: int = 1000
    latency_calls: int = 6000
    bootstrap_resamples: int = 1000
    new_users_fraction: float = 0.2
    new_users_salt: str = "new-users"


def from_mapping(cls: type[T], section: Mapping[str, Any] | None, name: str) -> T:
    """Build the frozen dataclass ``cls`` from a TOML section, refusing unknown keys.

    Lists become tuples; ints are accepted where floats are expected.
    """
    return cls(**coerce_section(cls, section, name))


# Keys that were renamed: the configuration saved in an older model folder still loads.
RENAMED_KEYS = {("log", "untimed_fractions"): "split_fractions"}


def coerce_section(cls: type, section: Mapping[str, Any] | None, name: str) -> dict[str, Any]:
    """The values of a TOML section checked against the fields (and default types) of ``cls``."""
    section = dict(section or {})
    for (table, old), new in RENAMED_KEYS.items():
        if table == name and old in section and new not in section:
            section[new] = section.pop(old)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(section) - set(fields))
    if unknown:
        raise ConfigError(f"[{name}] has unknown key(s) {unknown}; known keys are {sorted(fields)}")
    defaults = cls()
    return {key: _coerce(raw, getattr(defaults, key), f"{name}.{key}") for key, raw in section.items()}


def _coerce(raw: Any, default: Any, where: str) -> Any:
    if default == ():  # a list of any length, of strings
        if not isinstance(raw, (list, tuple)) or not all(isinstance(v, str) for v in raw):
            raise ConfigError(f"{where} must be a list of strings, got {raw!r}")
        return tuple(raw)
    if isinstance(default, tuple):
        if not isinstance(raw, (list, tuple)) or len(raw) != len(default):
            raise ConfigError(f"{where} must be a list of {len(default)} values, got {raw!r}")
        return tuple(_coerce(r, d, where) for r, d in zip(raw, default))
    if isinstance(default, bool):
        if not isinstance(raw, bool):
            raise ConfigError(f"{where} must be true or false, got {raw!r}")
        return raw
    if isinstance(default, float):
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise ConfigError(f"{where} must be a number, got {raw!r}")
        return float(raw)
    if isinstance(default, int):
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ConfigError(f"{where} must be a whole number, got {raw!r}")
        return raw
    if isinstance(default, str):
        if not isinstance(raw, str):
            raise ConfigError(f"{where} must be a string, got {raw!r}")
        return raw
    return raw
