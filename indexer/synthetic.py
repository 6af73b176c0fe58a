"""A seeded generator of realistic-looking search sessions, for tests and the demo.

Users have favourite topics; a session stays on one topic most of the time, refines queries
("running shoes" -> "running shoes women" -> "trail running shoes") and sometimes drifts to
another topic. Topics deliberately share prefixes ("ro" is "rose bush" for a gardener and "rock
band" for a musician), so the previous query visibly changes the best completion. Output is the
same TSV as the benchmark logs (``AnonID``, ``Query``, ``QueryTime``), with raw casing and
punctuation for the normalizer to clean.
"""

from __future__ import annotations

import datetime as dt
import gzip
import random
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
