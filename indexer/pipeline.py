"""``autocomplete train``: a query log and a configuration in, a model folder out.

Stages (each timed in the summary): read the log into sessions and splits; choose the labels
(distinct next queries of the training split that pass the privacy filters) with their counts;
then fit the most-popular baseline or the full XMR model and save it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import multiprocessing
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Protocol

import numpy as np

from indexer.config import TrainConfig
from indexer.cooccurrence import PairCounts
from indexer.errors import ConfigError
from indexer.histories import NO_PAST_QUERIES, History, histories_before
from indexer.labels import LabelSet
from indexer.language import WordLanguageModel
from indexer.model import MpcModel, XmrModel
from indexer.params import LiveParams, PrivacyParams, RankerParams
from indexer.privacy import filter_labels
from indexer.querylog import Pairs, QueryLog, Session, read_query_log, without_new_users
from indexer.ranking import TreeRanker
from indexer.training import training_examples
from indexer.typos import apply_typo
from indexer.wordlinks import WordLinks


@dataclasses.dataclass
class TrainingData:
    """What every model kind trains on: the log, the labels, and the training pairs whose
    next query is a label."""

    log: QueryLog
    labels: LabelSet
    pairs: Pairs
    summary: dict


LogPaths = str | Path | Sequence[str | Path]


def prepare(log_path: LogPaths, config: TrainConfig, progress: bool = False) -> TrainingData:
    t0 = time.perf_counter()
    log = read_query_log(log_path, config.log, progress=progress)
    data = prepare_log(log, config)
    paths = [log_path] if isinstance(log_path, (str, Path)) else list(log_path)
    data.summary.update({"log": ", ".join(str(p) for p in paths)})
    data.summary["seconds"]["read_log"] = time.perf_counter() - t0 - data.summary["seconds"]["labels"]
    return data


def prepare_log(log: QueryLog, config: TrainConfig) -> TrainingData:
    """The labels and training pairs of a log already read (its ``train`` sessions; without the
    new users when ``[log] holdout_new_users``)."""
    seconds: dict[str, float] = {}
    if config.log.holdout_new_users:
        log = without_new_users(log, config.eval.new_users_fraction, config.eval.new_users_salt)
    t0 = time.perf_counter()
    train = log.pairs("train")
    counts = Counter(train.next)
    candidates = sorted(counts)
    kept, removed = filter_labels(
        candidates, log.sessions["train"], config.privacy, untimed=config.log.format == "lines"
    )
    labels = LabelSet(kept, [counts[q] for q in kept])
    allowed = set(kept)
    keep = [i for i, q in enumerate(train.next) if q in allowed]
    pairs = Pairs(
        [train.previous[i] for i in keep], [train.next[i] for i in keep], [train.users[i] for i in keep]
    )
    seconds["labels"] = time.perf_counter() - t0

    summary = dict(log.summary())
    summary.update(
        {
            "label_candidates": len(candidates),
            "labels": len(labels),
            **removed,
            "training_pairs": len(pairs),
            "seconds": seconds,
        }
    )
    return TrainingData(log, labels, pairs, summary)


RowsOf = Callable[[str, str, History], tuple[list[str], np.ndarray]]


class LiveRows(Protocol):
    """A chain's candidate rows with live counts and labels fed by the submits as they happen."""

    def __call__(self, previous: str, prefix: str, history: History) -> tuple[list[str], np.ndarray]: ...

    def submit(self, query: str, session: str, when: float) -> None: ...


FitScorers = Callable[[TrainingData, TrainConfig, bool, dict], XmrModel]  # (data, config, progress, summary)


class CandidateRows(Protocol):
    """``candidate_rows(model)``: (previous query, prefix, history) -> the chain's candidate texts
    and rows;
    ``candidate_rows(model, live=(LiveParams, PrivacyParams))``: the same with live counts and
    labels (:class:`LiveRows`)."""

    def __call__(self, model: XmrModel, live: tuple[LiveParams, PrivacyParams] | None = None) -> RowsOf: ...


def fit_model(
    data: TrainingData,
    config: TrainConfig,
    progress: bool = False,
    candidate_rows: CandidateRows | None = None,
    fit_scorers: FitScorers | None = None,
) -> MpcModel | XmrModel:
    """The model ``config.model`` fitted on prepared data (stage seconds added to its summary).

    ``candidate_rows(model)`` gives, for a fitted model, (previous query, prefix) -> its chain's
    candidate texts and feature rows: the serving code hands it in (indexer never imports it), and
    with it and ``[ranker] kind = "lambdarank"`` a learned ranker is trained and attached.
    ``fit_scorers(data, config, progress, summary)`` fits the XMR tree and scorers (default: in
    this process; :mod:`indexer.distributed` hands in its sharded fit); the other generators and
    the ranker are fit here either way.
    """
    seconds = data.summary["seconds"]
    if config.model == "mpc":
        t0 = time.perf_counter()
        mpc = MpcModel(normalization=config.log.normalization).fit(data.labels)
        seconds["popular"] = time.perf_counter() - t0
        return mpc
    fit_xmr = xmr_fitter(config, progress, fit_scorers)
    if config.ranker.kind == "none" or candidate_rows is None:
        return fit_xmr(data, data.summary)
    if config.ranker.kind != "lambdarank":
        raise ConfigError(f"ranker.kind must be 'lambdarank' or 'none', got {config.ranker.kind!r}")
    t0 = time.perf_counter()
    # without a refit the base is the model served: its stages (features, tree, scorers,
    # generators) go to the summary, and lie within "ranker", the whole stage
    base_summary = {"seconds": {}} if config.ranker.refit else data.summary
    base, (X, y, groups) = ranker_training_rows(data, config, candidate_rows, fit_xmr, base_summary)
    t1 = time.perf_counter()
    ranker = TreeRanker(params=config.ranker).fit(X, y, groups)
    seconds["ranker_fit"] = time.perf_counter() - t1
    seconds["ranker"] = time.perf_counter() - t0
    data.summary["ranker_examples"] = {"groups": len(groups), "rows": int(len(y))}
    model = fit_xmr(data, data.summary) if config.ranker.refit else base
    model.ranker_ = ranker
    return model


# From this many training pairs on, the pair counts, word links and language model are fit in a
# second process while this one fits the XMR scorers (aol1m, 2 cores: 12 s of pure Python that
# overlap the features and the tree); below it, starting that process costs more than it saves.
GENERATORS_APART_PAIRS = 100_000


def xmr_fitter(
    config: TrainConfig, progress: bool = False, fit_scorers: FitScorers | None = None
) -> Callable[[TrainingData, dict], XmrModel]:
    """(data, summary) -> the XMR model of ``data`` with every generator the chain reads; the
    scorers by ``fit_scorers`` (default: :func:`fit_xmr_scorers`, in this process), the other
    generators beside them (:data:`GENERATORS_APART_PAIRS`)."""
    fit = fit_scorers or fit_xmr_scorers

    def fit_xmr(part: TrainingData, summary: dict) -> XmrModel:
        apart = len(part.pairs) >= GENERATORS_APART_PAIRS
        xmr, generators = fit_beside(lambda: fit(part, config, progress, summary), part, config, apart)
        summary["seconds"]["generators"] = generators.seconds
        return generators.attach(xmr)

    return fit_xmr


@dataclasses.dataclass
class Generators:
    """The chain's generators besides the XMR scorers, and the seconds their fit took."""

    pairs: PairCounts
    links: WordLinks | None
    language: WordLanguageModel | None
    seconds: float

    def attach(self, xmr: XmrModel) -> XmrModel:
        xmr.pairs_, xmr.links_, xmr.language_ = self.pairs, self.links, self.language
        return xmr


def fit_beside(
    fit: Callable[[], XmrModel], data: TrainingData, config: TrainConfig, apart: bool
) -> tuple[XmrModel, Generators]:
    """``fit()`` and :func:`fit_generators` of ``data``; with ``apart`` the generators in a
    second process (spawned: this one may already run numba's threads) meanwhile."""
    sessions = data.log.sessions["train"] if config.language.enabled else []  # only the LM reads them
    queries = [q for s in sessions for q in s.queries]
    query_users = None if config.log.format == "lines" else [s.user for s in sessions for _ in s.queries]
    args = (data.pairs, data.labels, queries, query_users, config)
    if not apart:
        xmr = fit()
        return xmr, fit_generators(*args)
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending = pool.submit(fit_generators, *args)
        xmr = fit()
        return xmr, pending.result()


def fit_generators(
    pairs: Pairs,
    labels: LabelSet,
    queries: list[str],
    query_users: list[str] | None,
    config: TrainConfig,
) -> Generators:
    """The pair counts, word links and language model the chain's other links read, from the
    training pairs and the training sessions' queries (with their users, when the log has any)."""
    t0 = time.perf_counter()
    counts = PairCounts().fit(pairs.previous, pairs.next, labels)
    links = language = None
    if config.context.enabled:
        ctx = config.context
        links = WordLinks(
            min_pairs=ctx.min_pairs, min_users=config.privacy.min_users, per_word=ctx.per_word
        ).fit(pairs.previous, pairs.next, labels, pairs.users)
    if config.language.enabled:
        lang = config.language
        language = WordLanguageModel(
            order=lang.order, min_users=config.privacy.min_users, blocklist=config.privacy.blocklist,
            discount=lang.discount,
        ).fit(queries, query_users)  # fmt: skip
    return Generators(counts, links, language, time.perf_counter() - t0)


def fit_xmr_scorers(data: TrainingData, config: TrainConfig, progress: bool, summary: dict) -> XmrModel:
    """The XMR tree and scorers, in this process."""
    seconds = summary["seconds"]
    previous, prefixes, targets = training_examples(
        data.pairs.previous, data.pairs.next, config.training.prefixes_per_pair, config.tree.random_state
    )
    xmr = XmrModel(
        normalization=config.log.normalization,
        features=config.features,
        tree=config.tree,
        training=config.training,
        search=config.search,
        language=config.language,
        fuzzy=config.fuzzy,
        context=config.context,
    ).fit(previous, prefixes, targets, data.labels, progress=progress)
    seconds.update(xmr.seconds_)
    summary.update(xmr.shape_summary())
    return xmr


def ranker_training_rows(
    data: TrainingData,
    config: TrainConfig,
    candidate_rows: CandidateRows,
    fit_xmr: Callable[[TrainingData, dict], XmrModel] | None = None,
    summary: dict | None = None,
) -> tuple[XmrModel, tuple[np.ndarray, np.ndarray, list[int]]]:
    """The generators fit without the late training sessions, and the ranker's rows on those
    (with each person's history before the pair, when the log names people). The base's stage
    seconds and shapes go to ``summary`` (default: nowhere), the rows' to ``data.summary``.

    With ``[live] simulate`` the late sessions are replayed in time order, each submit counted
    live before the next keystroke is asked (:func:`ranker_stream_examples`): the ranker learns
    live counts and labels as a deployed model meets them after its training."""
    summary = summary if summary is not None else {"seconds": {}}
    early, late = split_late(data.log, config.ranker.holdout_fraction)
    base = (fit_xmr or xmr_fitter(config))(prepare_log(early, config), summary)
    t0 = time.perf_counter()
    # a log of one query per line has no people, so no history to learn from
    histories = (
        None
        if config.log.format == "lines"
        else histories_before(early.sessions["train"], late, config.context.history_length)
    )
    if config.live.simulate:
        rows = candidate_rows(base, live=(config.live, config.privacy))
        examples = ranker_stream_examples(rows, late, config.ranker, histories)  # type: ignore[arg-type]
    else:
        late_pairs = Pairs([], [], [])
        for session in late:
            late_pairs.previous.extend(session.queries[:-1])
            late_pairs.next.extend(session.queries[1:])
        examples = ranker_examples(candidate_rows(base), late_pairs, config.ranker, histories)
    data.summary["seconds"]["ranker_rows"] = time.perf_counter() - t0
    return base, examples


def split_late(log: QueryLog, fraction: float) -> tuple[QueryLog, list[Session]]:
    """The log without the last ``fraction`` of its training pairs (sessions by start time), and
    the sessions holding those. A session the cut falls in is cut in two (a log of one query per
    line is a single session), the query at the cut ending the early part and starting the late."""
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"ranker.holdout_fraction must be between 0 and 1, got {fraction!r}")
    train = sorted(log.sessions["train"], key=lambda s: s.start)
    pairs = np.cumsum([len(s.queries) - 1 for s in train])
    total = int(pairs[-1]) if len(pairs) else 0
    keep = total - max(1, int(round(total * fraction)))
    cut = int(np.searchsorted(pairs, keep, side="right"))  # sessions [0, cut) lie wholly before it
    early, late = list(train[:cut]), list(train[cut + 1 :])
    if cut < len(train):
        inside = keep - (int(pairs[cut - 1]) if cut else 0)  # pairs of the cut session kept early
        session = train[cut]
        if inside > 0:
            early.append(
                dataclasses.replace(
                    session, queries=session.queries[: inside + 1], times=session.times[: inside + 1]
                )
            )
        late.insert(
            0, dataclasses.replace(session, queries=session.queries[inside:], times=session.times[inside:])
        )
    return dataclasses.replace(log, sessions={**log.sessions, "train": early}), late


def ranker_examples(
    rows_of: Callable[[str, str, History], tuple[list[str], np.ndarray]],
    pairs: Pairs,
    params: RankerParams,
    histories: Sequence[History] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Candidate rows of sampled prefixes of ``pairs`` (``params.history_share`` of them with the
    person's history before the pair, when given): (X, y = 1 for the next query, group sizes).
    Groups without the next query among their candidates teach a ranker nothing and are left out."""
    rng = random.Random(params.random_state)
    groups = _Groups(_asked_share(params, len(pairs.next)))
    for i, (previous, nxt) in enumerate(zip(pairs.previous, pairs.next)):
        groups.add(rows_of, previous, nxt, histories[i] if histories is not None else None, rng, params)
    return groups.arrays()


def _asked_share(params: RankerParams, n_pairs: int) -> float:
    """The share of the late pairs whose prefixes are asked (``params.max_pairs``; 0: all)."""
    return 1.0 if params.max_pairs <= 0 or n_pairs <= params.max_pairs else params.max_pairs / n_pairs


def ranker_stream_examples(
    rows_of: LiveRows,
    sessions: Sequence[Session],
    params: RankerParams,
    histories: Sequence[History] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """As :func:`ranker_examples`, the queries of ``sessions`` taken in time order: each pair's
    prefixes are asked with the live state of that moment (and, when given, ``histories``: one
    per pair, session by session), then its next query is submitted (a session's first query is
    submitted too)."""
    events = sorted(
        ((s.time_of(i), n, i) for n, s in enumerate(sessions) for i in range(len(s.queries))),
        key=lambda e: (e[0], e[1], e[2]),
    )
    first_pair = np.concatenate([[0], np.cumsum([max(0, len(s.queries) - 1) for s in sessions])])
    rng = random.Random(params.random_state)
    groups = _Groups(_asked_share(params, int(first_pair[-1])))
    for when, n, i in events:
        session = sessions[n]
        query = session.queries[i]
        if i > 0:
            history = histories[int(first_pair[n]) + i - 1] if histories is not None else None
            groups.add(rows_of, session.queries[i - 1], query, history, rng, params)
        rows_of.submit(query, f"{session.user}\x00{session.start}", when)
    return groups.arrays()


class _Groups:
    """The ranker's training groups: candidate rows of sampled prefixes, 1 for the next query."""

    def __init__(self, share: float = 1.0) -> None:
        self.share = share  # of the pairs asked (1: every pair, and no random draw for it)
        self.blocks: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self.sizes: list[int] = []

    def add(
        self,
        rows_of: RowsOf,
        previous: str,
        nxt: str,
        history: History | None,
        rng: random.Random,
        params: RankerParams,
    ) -> None:
        """``params.prefixes_per_pair`` sampled prefixes of ``nxt`` after ``previous``, a
        ``typo_share`` of them typo'd and a ``history_share`` asked with ``history``; only a
        ``share`` of the pairs, drawn at random, are asked at all."""
        if self.share < 1.0 and rng.random() >= self.share:
            return
        for _ in range(params.prefixes_per_pair):
            prefix = nxt[: rng.randint(1, len(nxt))]
            if rng.random() < params.typo_share:
                prefix, _ = apply_typo(prefix, rng, "A")
            asked = (
                history if history is not None and rng.random() < params.history_share else NO_PAST_QUERIES
            )
            texts, X = rows_of(previous, prefix, asked)
            hit = np.array([t == nxt for t in texts], dtype=np.float32)
            if len(texts) > 1 and hit.any():
                self.blocks.append(X)
                self.labels.append(hit)
                self.sizes.append(len(texts))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, list[int]]:
        if not self.sizes:
            raise ConfigError("the ranker has no training example: the late training sessions hold no pairs")
        return np.concatenate(self.blocks), np.concatenate(self.labels), self.sizes


def build_model(
    log_path: LogPaths,
    config: TrainConfig,
    out: str | Path,
    progress: bool = False,
    candidate_rows: CandidateRows | None = None,
) -> dict:
    """Train the model ``config.model`` on ``log_path`` and save it to ``out``; return the summary."""
    t_start = time.perf_counter()
    data = prepare(log_path, config, progress)
    model = fit_model(data, config, progress, candidate_rows)
    summary = data.summary
    t0 = time.perf_counter()
    summary["seconds"]["total"] = t0 - t_start  # the saved summary: log to fitted model
    summary["trained_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    model.save(out, summary={"config": config.to_dict(), **summary})
    summary["seconds"]["save"] = time.perf_counter() - t0
    summary["seconds"]["total"] = time.perf_counter() - t_start
    summary["model_bytes"] = folder_bytes(out)
    return summary


def folder_bytes(folder: str | Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
