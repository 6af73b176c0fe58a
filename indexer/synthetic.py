"""A seeded generator of realistic-looking search sessions, for tests and the demo.

Users have favourite topics; a session stays on one topic most of the time, refines queries
("running shoes" -> "running shoes women" -> "trail running shoes") and sometimes drifts to
another topic. Topics deliberately share prefixes ("ro" is "rose bush" for a gardener and "rock
band" for a musician), so the previous query visibly changes the best completion. Output is the
same TSV as the benchmark logs (``AnonID``, ``Query``, ``QueryTime``), with raw casing and
punctuation for the normalizer to clean.

:func:`write_scale_log` streams much larger logs for scale runs (never for quality claims):
millions of distinct queries of made-up words with Zipf-like popularity, shared topic words,
refinements and sessions, seeded and in bounded memory (:class:`ScaleLogParams`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import random
from collections.abc import Iterator
from pathlib import Path

TOPICS: dict[str, tuple[list[str], list[str]]] = {
    "gardening": (
        [
            "house plants",
            "rose of jericho plant",
            "rose bush pruning",
            "roses climbing",
            "potting soil",
            "tomato seedlings",
            "succulent care",
            "orchid repotting",
            "raised garden bed",
            "compost bin",
            "lavender plants",
            "herb garden",
            "garden hose reel",
            "tulip bulbs",
            "hydrangea colors",
        ],
        ["indoor", "care", "for sale", "tips", "problems", "near me"],
    ),
    "music": (
        [
            "rock band t shirts",
            "rolling stones tour",
            "rose royce car wash",
            "guitar chords",
            "piano lessons",
            "concert tickets",
            "vinyl records",
            "drum set",
            "jazz festival",
            "hip hop beats",
            "taylor swift songs",
            "guitar tabs",
            "band posters",
            "rock climbing music",
        ],
        ["2006", "lyrics", "cheap", "online", "for beginners", "used"],
    ),
    "travel": (
        [
            "rome hotels",
            "road trip planner",
            "cheap flights",
            "rental car",
            "beach resorts",
            "paris museums",
            "hotels in new york",
            "travel insurance",
            "passport renewal",
            "train tickets",
            "hostels in rome",
            "roadside attractions",
            "tokyo travel guide",
            "cruise deals",
        ],
        ["cheap", "deals", "reviews", "last minute", "map", "2006"],
    ),
    "running": (
        [
            "running shoes",
            "trail running shoes",
            "marathon training plan",
            "running socks",
            "running watch",
            "half marathon",
            "running injuries",
            "road race calendar",
            "track spikes",
            "running shorts",
        ],
        ["women", "men", "sale", "reviews", "best", "for beginners"],
    ),
    "cooking": (
        [
            "roast chicken recipe",
            "banana bread",
            "chocolate chip cookies",
            "pasta sauce",
            "slow cooker chili",
            "rolls recipe",
            "pancake mix",
            "grilled salmon",
            "vegetable soup",
            "apple pie",
            "rice pudding",
            "pizza dough",
            "tacos recipe",
        ],
        ["easy", "recipe", "healthy", "quick", "best", "from scratch"],
    ),
    "finance": (
        [
            "roth ira limits",
            "mortgage rates",
            "credit card offers",
            "tax refund status",
            "stock quotes",
            "retirement calculator",
            "savings account",
            "car loan",
            "credit score",
            "home equity loan",
        ],
        ["2006", "calculator", "best", "online", "compare", "rates"],
    ),
    "pets": (
        [
            "dog training",
            "puppy food",
            "cat litter",
            "rottweiler puppies",
            "dog beds",
            "aquarium fish",
            "bird cages",
            "hamster care",
            "dog grooming",
            "pet insurance",
            "rabbit hutch",
        ],
        ["tips", "for sale", "near me", "cheap", "best", "reviews"],
    ),
    "tech": (
        [
            "router setup",
            "laptop deals",
            "ipod nano",
            "digital camera",
            "wireless mouse",
            "windows xp help",
            "flat screen tv",
            "cell phone plans",
            "printer ink",
            "usb flash drive",
            "robot vacuum",
        ],
        ["reviews", "cheap", "best", "sale", "help", "comparison"],
    ),
}

_START = dt.datetime(2006, 3, 1, tzinfo=dt.UTC)
_DAYS = 92  # 2006-03-01 .. 2006-05-31


def _zipf_choice(rng: random.Random, items: list[str], exponent: float = 1.1) -> str:
    weights = [1.0 / (rank + 1) ** exponent for rank in range(len(items))]
    return rng.choices(items, weights)[0]


def _refine(rng: random.Random, query: str, modifiers: list[str]) -> str:
    roll = rng.random()
    if roll < 0.55:
        return f"{query} {_zipf_choice(rng, modifiers)}"
    if roll < 0.8:
        return f"{_zipf_choice(rng, modifiers)} {query}"
    words = query.split()
    return " ".join(words[:-1]) if len(words) > 1 else query


def _raw_form(rng: random.Random, query: str) -> str:
    """How a person might type it: sometimes capitalized, sometimes with stray punctuation."""
    roll = rng.random()
    if roll < 0.1:
        return query.title()
    if roll < 0.15:
        return query + "?"
    if roll < 0.18:
        return query.replace(" ", "  ")
    return query


def generate_sessions(
    n_users: int = 300, seed: int = 0, sessions_per_user: float = 20.0
) -> list[tuple[str, str, dt.datetime]]:
    """Rows ``(user, raw query, time)`` sorted by user then time."""
    rng = random.Random(seed)
    topics = sorted(TOPICS)
    rows: list[tuple[str, str, dt.datetime]] = []
    for u in range(n_users):
        user = str(100000 + u * 37)
        favourites = rng.sample(topics, 2)
        n_sessions = max(1, int(rng.expovariate(1.0 / sessions_per_user)))
        starts = sorted(rng.uniform(0, _DAYS * 86400 - 7200) for _ in range(n_sessions))
        last_end = -1e18
        for start in starts:
            when = max(start, last_end + 1801)
            if when >= _DAYS * 86400:
                break
            topic = rng.choice(favourites) if rng.random() < 0.85 else rng.choice(topics)
            bases, modifiers = TOPICS[topic]
            query = _zipf_choice(rng, bases)
            for step in range(max(1, min(8, int(rng.expovariate(1 / 3.0)) + 1))):
                if step:
                    roll = rng.random()
                    if roll < 0.15:
                        topic = rng.choice(topics)
                        bases, modifiers = TOPICS[topic]
                        query = _zipf_choice(rng, bases)
                    elif roll < 0.55:
                        query = _zipf_choice(rng, bases)
                    else:
                        query = _refine(rng, query, modifiers)
                    when += rng.uniform(5, 600)
                rows.append((user, _raw_form(rng, query), _START + dt.timedelta(seconds=int(when))))
            last_end = when
    return rows


def generate_log(
    path: str | Path, n_users: int = 300, seed: int = 0, sessions_per_user: float = 20.0
) -> Path:
    """Write a synthetic log (``.gz`` suffix: gzip) in the benchmark's TSV format; return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8", newline="") as fh:
        fh.write("AnonID\tQuery\tQueryTime\n")
        for user, query, when in generate_sessions(n_users, seed, sessions_per_user):
            fh.write(f"{user}\t{query}\t{when:%Y-%m-%d %H:%M:%S}\n")
    return path


# ----------------------------------------------------------------------------------------------
# Scale logs: millions of distinct queries, streamed to disk (for scale runs, never quality claims)

_CONSONANTS = "bcdfghjklmnprstvwz"
_VOWELS = "aeiou"
_MASK64 = (1 << 64) - 1
# words per query (beyond the topic word): 0, 1, 2, 3 extra words
_EXTRA_WORDS = (0,) * 5 + (1,) * 8 + (2,) * 5 + (3,) * 2


@dataclasses.dataclass(frozen=True)
class ScaleLogParams:
    """The shape of a synthetic scale log.

    Parameters
    ----------
    sessions : int
        Number of sessions (each 1-8 queries, about 2.5 on average).
    queries : int
        Size of the universe of base queries the sessions draw from, by Zipf-like popularity
        (``query_exponent``); refinements add a few more distinct queries per base query.
    words : int
        Vocabulary size; words are drawn by Zipf-like popularity (``word_exponent``), so queries
        share words. A base query's first word is its topic: 16 neighbouring base queries share it.
    users : int
        Distinct user ids (0: one per ten sessions).
    seed : int
    """

    sessions: int = 100_000
    queries: int = 20_000_000
    words: int = 50_000
    users: int = 0
    query_exponent: float = 0.8
    word_exponent: float = 1.0
    seed: int = 0

    def check(self) -> None:
        for name in ("sessions", "queries", "words"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(
                    f"ScaleLogParams: {name} must be a whole number >= 1, got {getattr(self, name)!r}"
                )
        if self.users < 0:
            raise ValueError(f"ScaleLogParams: users must be >= 0 (0 = sessions // 10), got {self.users!r}")
        if self.query_exponent <= 0 or self.word_exponent <= 0:
            raise ValueError("ScaleLogParams: query_exponent and word_exponent must be > 0")


def _mix(x: int) -> int:
    """SplitMix64's finalizer: 64 well-mixed bits of ``x``."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _zipf_rank(u: float, n: int, exponent: float) -> int:
    """Rank in ``[0, n)`` for a uniform ``u`` in [0, 1): density ~ rank ** -exponent (inverse CDF)."""
    if exponent == 1.0:
        x = (n + 1.0) ** u
    else:
        a = 1.0 - exponent
        x = (1.0 + u * ((n + 1.0) ** a - 1.0)) ** (1.0 / a)
    return min(int(x) - 1, n - 1)


def _word(i: int, order: list[str]) -> str:
    """The ``i``-th word: bijective base-``len(order)`` numeral over syllables (short words first)."""
    base = len(order)
    parts = []
    i += 1
    while i > 0:
        i -= 1
        parts.append(order[i % base])
        i //= base
    return "".join(parts)


class _Universe:
    """Deterministic text of every base query and refinement, with a bounded cache."""

    def __init__(self, params: ScaleLogParams, cache_size: int = 1 << 20) -> None:
        rng = random.Random(params.seed)
        syllables = [c + v for c in _CONSONANTS for v in _VOWELS]
        rng.shuffle(syllables)
        self.params = params
        self.syllables = syllables
        self.salt = _mix(params.seed)
        self.cache: dict[int, str] = {}
        self.cache_size = cache_size

    def _uniform(self, *keys: int) -> float:
        h = self.salt
        for key in keys:
            h = _mix(h ^ key)
        return (h >> 11) * (1.0 / (1 << 53))

    def word(self, *keys: int) -> str:
        p = self.params
        return _word(_zipf_rank(self._uniform(*keys), p.words, p.word_exponent), self.syllables)

    def text(self, q: int) -> str:
        text = self.cache.get(q)
        if text is None:
            if len(self.cache) >= self.cache_size:
                self.cache.clear()  # bounded memory; popular queries come back quickly
            words = [self.word(1, q >> 4)]  # the topic word, shared by 16 neighbouring queries
            extra = _EXTRA_WORDS[int(self._uniform(2, q) * len(_EXTRA_WORDS))]
            words += [self.word(3, q, k) for k in range(extra)]
            text = self.cache[q] = " ".join(words)
        return text

    def base(self, u: float) -> int:
        p = self.params
        return _zipf_rank(u, p.queries, p.query_exponent)


def generate_scale_rows(params: ScaleLogParams) -> Iterator[tuple[str, str, int]]:
    """Rows ``(user, query, seconds after 2006-03-01)``, session by session in order of their start.

    A session starts at a base query; each next query refines the current one (adds a word drawn
    from the query's own few popular modifiers), moves to a neighbouring base query of the same
    topic, or starts over at a new base query. Memory stays bounded whatever the size.
    """
    params.check()
    universe = _Universe(params)
    rng = random.Random(params.seed + 1)
    users = params.users or max(1, params.sessions // 10)
    span = _DAYS * 86400 - 7200
    for s in range(params.sessions):
        user = str(1_000_000 + rng.randrange(users))
        when = int(span * s / params.sessions) + rng.randrange(60)
        q = universe.base(rng.random())
        text = universe.text(q)
        length = min(8, 1 + int(rng.expovariate(1 / 1.5)))
        for step in range(length):
            if step:
                roll = rng.random()
                if roll < 0.45 and text.count(" ") < 5:
                    # a refinement: one of the query's modifiers, the first ones most often
                    r = _zipf_rank(rng.random(), 8, 1.2)
                    word = universe.word(4, q, r)
                    if word not in text.split():
                        text = f"{text} {word}"
                elif roll < 0.75:
                    q = (q & ~15) | rng.randrange(16)
                    q = min(q, params.queries - 1)
                    text = universe.text(q)
                else:
                    q = universe.base(rng.random())
                    text = universe.text(q)
                when += rng.randrange(5, 600)
            yield user, text, when


def write_scale_log(path: str | Path, params: ScaleLogParams) -> dict[str, int]:
    """Stream a scale log to ``path`` (TSV as :func:`generate_log`; ``.gz`` suffix: gzip, fast
    level); return its row and session counts."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    start = int(_START.timestamp())
    with (
        gzip.open(path, "wt", encoding="utf-8", newline="", compresslevel=1)
        if path.suffix == ".gz"
        else open(path, "w", encoding="utf-8", newline="")
    ) as fh:
        fh.write("AnonID\tQuery\tQueryTime\n")
        lines: list[str] = []
        for user, query, when in generate_scale_rows(params):
            stamp = dt.datetime.fromtimestamp(start + when, dt.UTC)
            lines.append(f"{user}\t{query}\t{stamp:%Y-%m-%d %H:%M:%S}\n")
            if len(lines) >= 65536:
                fh.writelines(lines)
                rows += len(lines)
                lines.clear()
        fh.writelines(lines)
        rows += len(lines)
    return {"rows": rows, "sessions": params.sessions}
