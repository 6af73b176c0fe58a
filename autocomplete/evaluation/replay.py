"""``autocomplete replay``: a log's sessions typed through a running server, scored like ``eval``.

Each session of the split is one websocket connection with a fresh server session. Its first
query is only submitted; every later query is typed (``keystroke``: every prefix, one input per
keystroke; ``sampled``: the one prefix ``make_examples`` draws for it) and then submitted, so the
server's session store supplies the previous query as context, exactly as for a person. The
prefixes are those of :func:`autocomplete.evaluation.make_examples` for the same split and seed,
and the answers are scored by :func:`~autocomplete.evaluation.score_answers`: on the sampled
protocol at full speed, replay and ``autocomplete eval`` see the same completions. Sessions with
one query have nothing to score and are left out.

``max`` speed sends the next frame as soon as the previous one is answered (closed loop);
``human`` speed types with realistic pauses without waiting for answers (open loop), so the server
may answer stale keystrokes ``superseded``. Only inputs answered with completions are scored;
superseded, refused and unanswered inputs are counted instead.

The client also checks the protocol: every frame answered exactly once, in order, completions
that start with the typed text, no error frames. A dropped connection is reopened with
``?session=ID`` and the unanswered frames are sent again, so a session survives a worker restart
when the server keeps sessions in Redis. Reports hold aggregate figures only, never query text.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import multiprocessing
import random
import time
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import numpy as np
from tqdm import tqdm
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from autocomplete.evaluation.metrics import Seen
from autocomplete.evaluation.replay_plan import ReplayPlan, ReplaySession, ReplayTally, build_report
from indexer.errors import AutocompleteError

SPEEDS = ("human", "max")
_CLOSED = (ConnectionClosed, OSError)  # the connection went away
_CONNECT_FAILED = (ConnectionClosed, InvalidHandshake, OSError, TimeoutError)


def _keeps_prefix(item: Any, typed: str) -> bool:
    """A completion starts with the typed text, or is a correction saying which of its characters
    stand for it (``matched``, ``corrected``: docs/protocol.md)."""
    if not isinstance(item, dict) or not isinstance(item.get("text"), str):
        return False
    if item.get("corrected") is True:
        span = item.get("matched")
        return isinstance(span, list) and len(span) == 2 and 0 <= span[0] <= span[1] <= len(item["text"])
    return bool(item["text"].startswith(typed))


class ReplayError(AutocompleteError, RuntimeError):
    """The server could not be reached, or a session's connection could not be reopened."""


@dataclasses.dataclass
class _Pending:
    frame: str
    kind: str  # "input" or "submit"
    seq: int | None
    text: str
    example: int | None
    sent_at: float
    future: asyncio.Future


class _SessionClient:
    """One replayed session's websocket: sends frames, matches answers to them, reconnects."""

    def __init__(self, url: str, number: int, tally: ReplayTally, *, k: int, timeout: float) -> None:
        self.url = url
        self.number = number
        self.tally = tally
        self.k = k
        self.timeout = timeout
        self.session_id: str | None = None
        self.pending: collections.deque[_Pending] = collections.deque()
        self.skipped: set[int] = set()  # seqs an answer overtook: missing unless they come later
        self.answered: set[int] = set()
        self.given_up: set[int] = set()  # seqs counted missing after the timeout
        self.ws: Any = None
        self.lost: asyncio.Future = asyncio.get_running_loop().create_future()
        self.receiver: asyncio.Task | None = None
        self.seq = 0

    # -------------------------------------------------------- connection

    async def connect(self, deadline: float, *, resend: bool = False) -> None:
        """Open the websocket (resuming the session once it has one), retrying until ``deadline``;
        with ``resend``, send the unanswered frames again."""
        pause = 0.05
        while True:
            await self._drop()
            try:
                await self._open()
                if resend:
                    for entry in self.pending:
                        await self.ws.send(entry.frame)
                break
            except _CONNECT_FAILED as exc:
                if time.monotonic() + pause > deadline:
                    raise ReplayError(
                        f"could not connect to {self.url}: {type(exc).__name__}: {exc}"
                    ) from exc
                await asyncio.sleep(pause)
                pause = min(pause * 2, 1.0)
        if resend:
            self.tally.reconnects += 1
            self.tally.frames_resent += len(self.pending)

    async def _open(self) -> None:
        url = self.url
        if self.session_id is not None:
            parts = urlsplit(url)
            query = "&".join(filter(None, [parts.query, urlencode({"session": self.session_id})]))
            url = urlunsplit(parts._replace(query=query))
        self.ws = await ws_connect(
            url, compression=None, open_timeout=self.timeout, ping_interval=None, max_size=1 << 20
        )
        hello = json.loads(await asyncio.wait_for(self.ws.recv(), self.timeout))
        if not isinstance(hello, dict) or hello.get("type") != "hello":
            self.tally.violation("missing_hello", self.number, None)
        elif self.session_id is not None and hello.get("session") != self.session_id:
            self.tally.sessions_not_resumed += 1
        if isinstance(hello, dict) and isinstance(hello.get("session"), str):
            self.session_id = hello["session"]
        self.lost = asyncio.get_running_loop().create_future()
        self.receiver = asyncio.create_task(self._receive(self.ws, self.lost))

    async def close(self) -> None:
        await self._drop()

    async def _drop(self) -> None:
        if self.receiver is not None:
            self.receiver.cancel()
            self.receiver = None
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.close(), 2.0)
            except Exception:  # noqa: BLE001 - the connection is going away either way
                pass
            self.ws = None

    # -------------------------------------------------------- sending

    async def send_input(self, text: str, example: int) -> _Pending:
        self.seq += 1
        frame = json.dumps({"type": "input", "seq": self.seq, "text": text, "k": self.k}, ensure_ascii=False)
        self.tally.inputs_sent += 1
        return await self._send(_Pending(frame, "input", self.seq, text, example, 0.0, self._future()))

    async def send_submit(self, text: str) -> _Pending:
        frame = json.dumps({"type": "submit", "text": text}, ensure_ascii=False)
        self.tally.submits_sent += 1
        return await self._send(_Pending(frame, "submit", None, text, None, 0.0, self._future()))

    def _future(self) -> asyncio.Future:
        return asyncio.get_running_loop().create_future()

    async def _send(self, entry: _Pending) -> _Pending:
        self.pending.append(entry)
        entry.sent_at = time.perf_counter()
        try:
            await self.ws.send(entry.frame)
        except _CLOSED:
            await self.connect(time.monotonic() + self.timeout, resend=True)
        return entry

    async def wait(self, entry: _Pending) -> None:
        """Until ``entry`` is answered; reconnect if the connection drops; count it missing on timeout."""
        deadline = time.monotonic() + self.timeout
        while not entry.future.done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._give_up(entry)
                return
            await asyncio.wait(
                {entry.future, self.lost}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            if not entry.future.done() and self.lost.done():
                await self.connect(time.monotonic() + self.timeout, resend=True)
                deadline = time.monotonic() + self.timeout

    def _give_up(self, entry: _Pending) -> None:
        if entry in self.pending:
            self.pending.remove(entry)
        self.tally.violation("missing_answer", self.number, entry.seq)
        if entry.seq is not None:
            self.given_up.add(entry.seq)
        entry.future.cancel()

    def finish(self) -> None:
        """The session is over: whatever is still unanswered is missing."""
        for seq in sorted(self.skipped):
            self.tally.violation("missing_answer", self.number, seq)
        for entry in self.pending:
            self.tally.violation("missing_answer", self.number, entry.seq)
        self.skipped.clear()
        self.pending.clear()

    # -------------------------------------------------------- receiving

    async def _receive(self, ws: Any, lost: asyncio.Future) -> None:
        try:
            async for raw in ws:
                self._on_frame(raw, time.perf_counter())
        except _CLOSED:
            pass
        finally:
            if not lost.done():
                lost.set_result(None)

    def _on_frame(self, raw: str | bytes, now: float) -> None:
        tally = self.tally
        try:
            frame = json.loads(raw)
        except ValueError:
            frame = None
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            tally.violation("malformed_answer", self.number, None)
            return
        kind = frame["type"]
        seq = frame.get("seq")
        if kind == "stored":
            return  # what became of a submit answered "pending": not the answer to a frame
        if kind == "submitted" or (kind == "error" and seq is None):
            entry = self._match(lambda e: e.kind == "submit" or kind == "error", None)
        elif kind in ("completions", "superseded", "error") and isinstance(seq, int):
            entry = self._match(lambda e: e.seq == seq, seq)
        else:
            tally.violation("unexpected_answer", self.number, seq if isinstance(seq, int) else None)
            return
        if entry is None:
            return
        if kind == "completions":
            self._on_completions(entry, frame, now)
        elif kind == "superseded":
            tally.superseded += 1
        elif kind == "submitted":
            if frame.get("text") != entry.text.strip():
                tally.violation("wrong_submitted_text", self.number, None)
            if frame.get("stored") is not True:
                tally.submits_not_stored += 1
        else:
            tally.errors[str(frame.get("code"))] += 1
            tally.violation("error_frame", self.number, entry.seq)
        if not entry.future.done():
            entry.future.set_result(frame)

    def _match(self, wanted: Any, seq: int | None) -> _Pending | None:
        """The pending frame this answer is for; answers overtaking older frames are flagged."""
        for position, entry in enumerate(self.pending):
            if wanted(entry):
                for skipped in list(self.pending)[:position]:
                    if skipped.seq is not None:
                        self.skipped.add(skipped.seq)
                    self.pending.remove(skipped)
                    if not skipped.future.done():
                        skipped.future.set_result(None)
                self.pending.remove(entry)
                if entry.seq is not None:
                    self.answered.add(entry.seq)
                return entry
        if seq is not None and seq in self.skipped:
            self.skipped.discard(seq)
            self.answered.add(seq)
            self.tally.violation("out_of_order_answer", self.number, seq)
        elif seq is not None and seq in self.answered:
            self.tally.violation("duplicated_answer", self.number, seq)
        elif seq is not None and seq in self.given_up:
            self.given_up.discard(seq)
            self.tally.violation("late_answer", self.number, seq)
        else:
            self.tally.violation("unexpected_answer", self.number, seq)
        return None

    def _on_completions(self, entry: _Pending, frame: dict[str, Any], now: float) -> None:
        tally = self.tally
        items = frame.get("items")
        if frame.get("text") != entry.text or not isinstance(items, list):
            tally.violation("wrong_completions_frame", self.number, entry.seq)
            return
        texts = [item.get("text") if isinstance(item, dict) else None for item in items]
        if not all(_keeps_prefix(item, entry.text) for item in items):
            tally.violation("completion_without_prefix", self.number, entry.seq)
        if len(texts) > self.k:
            tally.violation("too_many_completions", self.number, entry.seq)
        tally.completions += 1
        tally.latencies.append(now - entry.sent_at)
        tally.answered_at.append(now)  # one monotonic clock for all client processes of a host
        if isinstance(frame.get("ms"), (int, float)):
            tally.server_ms.append(float(frame["ms"]))
        if entry.example is not None:
            tally.answers[entry.example] = [t for t in texts if isinstance(t, str)]


@dataclasses.dataclass(frozen=True)
class Pace:
    """Human typing: a lognormal pause per keystroke (median ``key_pause`` s, at most 1 s) and a
    uniform think pause of ``query_pause`` s before each typed query."""

    key_pause: float = 0.15
    key_sigma: float = 0.5
    query_pause: tuple[float, float] = (0.5, 2.0)


async def _replay_session(
    url: str,
    number: int,
    session: ReplaySession,
    tally: ReplayTally,
    *,
    speed: str,
    k: int,
    timeout: float,
    rng: random.Random,
    pace: Pace,
) -> None:
    client = _SessionClient(url, number, tally, k=k, timeout=timeout)
    try:
        await client.connect(time.monotonic() + timeout)
        await client.wait(await client.send_submit(session.queries[0]))
        example = session.first_example
        for query, prefixes in zip(session.queries[1:], session.prefixes, strict=True):
            if speed == "human":
                await asyncio.sleep(rng.uniform(*pace.query_pause))
            for prefix in prefixes:
                entry = await client.send_input(prefix, example)
                example += 1
                if speed == "max":
                    await client.wait(entry)
                else:
                    await asyncio.sleep(min(1.0, rng.lognormvariate(np.log(pace.key_pause), pace.key_sigma)))
            await client.wait(await client.send_submit(query))
        client.finish()
    finally:
        await client.close()


async def replay_async(
    url: str,
    sessions: Sequence[tuple[int, ReplaySession]],
    *,
    concurrency: int = 1,
    speed: str = "max",
    k: int = 10,
    timeout: float = 10.0,
    seed: int = 0,
    pace: Pace = Pace(),
    progress: tqdm | None = None,
) -> ReplayTally:
    """Replay numbered sessions, ``concurrency`` connections at a time; the tally of what came back."""
    if speed not in SPEEDS:
        raise ValueError(f"unknown speed {speed!r}; choose one of {SPEEDS}")
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    tally = ReplayTally()
    queue: Iterator[tuple[int, ReplaySession]] = iter(sessions)

    async def worker() -> None:
        for number, session in queue:
            rng = random.Random(seed * 1_000_003 + number)
            try:
                await _replay_session(
                    url, number, session, tally, speed=speed, k=k, timeout=timeout, rng=rng, pace=pace
                )
                tally.sessions_done += 1
            except ReplayError:
                tally.sessions_failed += 1
                tally.violation("connection_lost", number, None)
            if progress is not None:
                progress.update(1)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, max(len(sessions), 1)))))
    return tally


def run_replay(
    url: str,
    plan: ReplayPlan,
    *,
    concurrency: int = 1,
    speed: str = "max",
    k: int = 10,
    timeout: float = 10.0,
    seed: int = 0,
    pace: Pace = Pace(),
    progress: bool = False,
    processes: int = 1,
    seen: Seen = None,
) -> tuple[dict[str, Any], ReplayTally]:
    """Replay ``plan`` against ``url`` (``ws://HOST:PORT/v1/ws``): the report, and the raw tally
    (whose ``answers`` hold the completions of every scored example; keep them out of files).

    ``processes`` > 1 deals the sessions and the ``concurrency`` out to that many client
    processes (one Python client saturates a core before a server does); the tallies are merged
    and the throughput is taken over the span from the first process's start to the last one's end.
    ``seen`` (the model's training labels, e.g. ``metrics.training_labels(folder)``) adds the
    seen/unseen figures to the report.
    """
    if processes < 1:
        raise ValueError(f"processes must be at least 1, got {processes}")
    _check_reachable(url, timeout)
    numbered = list(enumerate(plan.sessions))
    options: dict[str, Any] = {"speed": speed, "k": k, "timeout": timeout, "seed": seed, "pace": pace}
    bar = tqdm(total=len(numbered), desc="replaying", unit=" sessions", disable=not progress)
    with bar:
        if processes == 1:
            started = time.perf_counter()
            tally = _run_loop(replay_async(url, numbered, concurrency=concurrency, progress=bar, **options))
            seconds = time.perf_counter() - started
        else:
            tally, seconds = _replay_in_processes(url, numbered, concurrency, processes, options, bar)
    report = build_report(plan, tally, seconds, url=url, concurrency=concurrency, speed=speed, k=k, seen=seen)
    return report, tally


def _replay_in_processes(
    url: str,
    numbered: list[tuple[int, ReplaySession]],
    concurrency: int,
    processes: int,
    options: dict[str, Any],
    bar: tqdm,
) -> tuple[ReplayTally, float]:
    jobs = []
    for i in range(min(processes, concurrency, len(numbered))):
        share = concurrency // processes + (1 if i < concurrency % processes else 0)
        jobs.append((url, numbered[i::processes], dict(options, concurrency=max(share, 1))))
    tally = ReplayTally()
    spans = []
    with multiprocessing.get_context("spawn").Pool(len(jobs)) as pool:
        for part, span in pool.imap_unordered(_replay_shard, jobs):
            tally.merge(part)
            spans.append(span)
            bar.update(part.sessions_done + part.sessions_failed)
    return tally, max(end for _, end in spans) - min(start for start, _ in spans)


def _replay_shard(
    job: tuple[str, list[tuple[int, ReplaySession]], dict[str, Any]],
) -> tuple[ReplayTally, tuple[float, float]]:
    """One client process: its sessions, and its wall-clock span (comparable across processes)."""
    url, numbered, options = job
    started = time.time()
    tally = _run_loop(replay_async(url, numbered, **options))
    return tally, (started, time.time())


def _run_loop(coroutine: Any) -> ReplayTally:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


def _check_reachable(url: str, timeout: float) -> None:
    async def probe() -> None:
        async with ws_connect(url, open_timeout=timeout, compression=None) as ws:
            await asyncio.wait_for(ws.recv(), timeout)

    try:
        asyncio.run(probe())
    except _CONNECT_FAILED as exc:
        raise ReplayError(
            f"cannot open a websocket to {url} ({type(exc).__name__}: {exc}); start the server with "
            "autocomplete serve and pass its ws://HOST:PORT/v1/ws"
        ) from exc
