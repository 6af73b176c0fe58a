"""Replay through the live service: the plan, the consistency check with ``eval``, the protocol checks."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from server_support import uvicorn_in_thread
from serving_stubs import EchoCompleter
from websockets.asyncio.server import serve

from autocomplete.cli import main
from autocomplete.completer import Completer, load_completer
from autocomplete.config import ServeConfig
from autocomplete.evaluation.metrics import evaluate
from autocomplete.evaluation.protocols import make_examples
from autocomplete.evaluation.replay import Pace, ReplayError, run_replay
from autocomplete.evaluation.replay_plan import ReplayPlan, ReplaySession, plan_replay
from autocomplete.evaluation.server_process import free_port
from autocomplete.server import create_app
from indexer.config import load_train_config
from indexer.querylog import QueryLog, read_query_log

ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = ROOT / "configs" / "demo.toml"
REDIS_URL = "redis://127.0.0.1:6379/0"
FAST = {
    "AUTOCOMPLETE_MAX_INPUTS_PER_SECOND": "100000",
    "AUTOCOMPLETE_MAX_INPUTS_PER_SECOND_PER_IP": "100000",  # every session comes from 127.0.0.1
    "AUTOCOMPLETE_LOG_LEVEL": "warning",
    "AUTOCOMPLETE_LIVE": "false",  # scored as eval: the model as trained, not learning from submits
    "AUTOCOMPLETE_HISTORY_ENABLED": "false",  # ... nor from the replayed person's own submits
}
# a loaded shared machine must not turn a slow store call into "no context" in a consistency check
PATIENT_STORE = {
    "AUTOCOMPLETE_STORE_TIMEOUT_SECONDS": "2",
    "AUTOCOMPLETE_REDIS_SOCKET_TIMEOUT": "2",
    "AUTOCOMPLETE_REDIS_CONNECT_TIMEOUT": "2",
}


@pytest.fixture(scope="module")
def query_log(synthetic_log: Path) -> QueryLog:
    return read_query_log(synthetic_log, load_train_config(DEMO_CONFIG).log)


def expected_answers(model: Completer, plan: ReplayPlan, k: int = 10) -> dict[int, list[str]]:
    ex = plan.examples
    return {
        j: [c.text for c in model.complete(ex.prefix[j], [ex.previous[j]] if ex.previous[j] else [], k)]
        for j in range(len(ex))
    }


# ---------------------------------------------------------------- the plan


@pytest.mark.parametrize("protocol", ["sampled", "keystroke"])
def test_plan_types_exactly_the_examples_eval_scores(query_log: QueryLog, protocol: str) -> None:
    plan = plan_replay(query_log, "test", protocol, seed=0)
    reference = make_examples(query_log.pairs("test"), protocol, 0)
    typed = [p for s in plan.sessions for per_query in s.prefixes for p in per_query]
    assert typed == reference.prefix and plan.examples == reference
    assert len(plan.sessions) == sum(len(s.queries) > 1 for s in query_log.sessions["test"])
    for session in plan.sessions:  # each query after the first is typed, toward that query
        assert len(session.prefixes) == len(session.queries) - 1
        for query, prefixes in zip(session.queries[1:], session.prefixes, strict=True):
            assert all(query.startswith(p) for p in prefixes)
            assert len(prefixes) == (1 if protocol == "sampled" else len(query))


def test_plan_of_the_first_sessions_keeps_their_sampled_prefixes(query_log: QueryLog) -> None:
    whole = plan_replay(query_log, "test", "sampled", seed=0)
    first = plan_replay(query_log, "test", "sampled", seed=0, sessions=10)
    assert first.sessions == whole.sessions[:10]
    assert first.examples.prefix == whole.examples.prefix[: len(first.examples)]
    assert first.sessions[-1].first_example + len(first.sessions[-1].prefixes) == len(first.examples)


# ---------------------------------------------------------------- consistency with eval


def check_replay_equals_eval(ws_url: str, model_folder: Path, plan: ReplayPlan, concurrency: int) -> dict:
    model = load_completer(model_folder, warm_up=False)
    without_context = {
        j: [c.text for c in model.complete(prefix, [], 10)] for j, prefix in enumerate(plan.examples.prefix)
    }
    assert without_context != expected_answers(model, plan), "the model must use the context for this check"
    report, tally = run_replay(ws_url, plan, concurrency=concurrency, speed="max", k=10)
    offline = evaluate(model, plan.examples, k=10, latency_calls=0)
    offline.pop("latency_ms")
    offline.pop("latency_cold_ms")
    assert report["violations"] == {} and report["inputs"]["errors"] == {}
    assert report["inputs"]["scored"] == len(plan.examples) == offline["examples"]
    assert tally.answers == expected_answers(model, plan)  # the same completions, example by example
    assert report["quality"] == offline  # MRR, BLEU, success@k, overall and by prefix length
    assert report["submits"]["not_stored"] == 0
    return report


@pytest.mark.slow
def test_replay_through_the_server_scores_as_eval_with_memory_sessions(
    live_server, demo_model: Path, query_log: QueryLog
) -> None:
    server = live_server(demo_model, env=FAST | PATIENT_STORE)
    plan = plan_replay(query_log, "test", "sampled", seed=0)
    report = check_replay_equals_eval(server.ws_url, demo_model, plan, concurrency=1)
    assert report["sessions"] == {"planned": len(plan.sessions), "done": len(plan.sessions), "failed": 0}


@pytest.mark.slow
@pytest.mark.redis
def test_replay_through_the_server_scores_as_eval_with_redis_sessions(
    live_server, demo_model: Path, query_log: QueryLog
) -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379 (make test starts one)")
    prefix = f"test-replay-{uuid.uuid4().hex}:"
    env = FAST | PATIENT_STORE | {"AUTOCOMPLETE_REDIS_PREFIX": prefix}
    server = live_server(demo_model, redis_url=REDIS_URL, workers=2, env=env)
    try:
        check_replay_equals_eval(server.ws_url, demo_model, plan_replay(query_log, "test", "sampled"), 1)
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)


def test_each_session_gets_its_own_previous_query_as_context(query_log: QueryLog) -> None:
    """The echo model writes its context into the completion: a wrong or missing context shows."""
    completer = EchoCompleter()
    plan = plan_replay(query_log, "test", "keystroke", sessions=12)
    app = create_app(
        completer=completer,
        config=ServeConfig(max_inputs_per_second=100000, max_inputs_per_second_per_ip=100000),
    )
    with uvicorn_in_thread(app) as url:
        report, tally = run_replay(url, plan, concurrency=6, speed="max")
    assert report["violations"] == {} and report["inputs"]["scored"] == len(plan.examples)
    assert tally.answers == expected_answers(EchoCompleter(), plan)
    offline = evaluate(EchoCompleter(), plan.examples, latency_calls=0)
    offline.pop("latency_ms")
    offline.pop("latency_cold_ms")
    assert report["quality"] == offline


def test_client_processes_share_out_the_sessions_and_add_up(query_log: QueryLog) -> None:
    plan = plan_replay(query_log, "test", "keystroke", sessions=12)
    app = create_app(
        completer=EchoCompleter(),
        config=ServeConfig(max_inputs_per_second=100000, max_inputs_per_second_per_ip=100000),
    )
    with uvicorn_in_thread(app) as url:
        report, tally = run_replay(url, plan, concurrency=5, speed="max", processes=2)
    assert report["violations"] == {} and report["sessions"] == {"planned": 12, "done": 12, "failed": 0}
    assert report["inputs"]["sent"] == report["inputs"]["scored"] == len(plan.examples)
    assert tally.answers == expected_answers(EchoCompleter(), plan)  # each with its own context
    assert report["seconds"] > 0 and len(tally.latencies) == len(plan.examples)


def test_human_speed_scores_only_answered_inputs_and_counts_superseded(query_log: QueryLog) -> None:
    plan = plan_replay(query_log, "test", "keystroke", sessions=4)
    app = create_app(
        completer=EchoCompleter(delay=0.02),
        config=ServeConfig(max_inputs_per_second=100000, max_inputs_per_second_per_ip=100000),
    )
    pace = Pace(key_pause=0.004, key_sigma=0.3, query_pause=(0.0, 0.01))
    with uvicorn_in_thread(app) as url:
        report, tally = run_replay(url, plan, concurrency=4, speed="human", pace=pace)
    inputs = report["inputs"]
    assert report["violations"] == {}
    assert inputs["sent"] == len(plan.examples)
    assert inputs["superseded"] > 0
    assert inputs["superseded"] + inputs["answered_with_completions"] == inputs["sent"]
    assert inputs["scored"] == inputs["answered_with_completions"] == len(tally.answers)
    expected = expected_answers(EchoCompleter(), plan)
    assert all(tally.answers[j] == expected[j] for j in tally.answers)
    last_keystroke = {s.first_example + sum(map(len, s.prefixes)) - 1 for s in plan.sessions}
    assert last_keystroke <= set(tally.answers)  # the final keystroke of a session is never stale


# ---------------------------------------------------------------- the protocol checks can fail


def tiny_plan() -> ReplayPlan:
    from autocomplete.evaluation.protocols import Examples

    session = ReplaySession(("garden hose", "roses"), (("r", "ro", "ros"),), first_example=0)
    return ReplayPlan(
        [session], Examples(["garden hose"] * 3, ["r", "ro", "ros"], ["roses"] * 3), "keystroke", "test"
    )


def completions(seq: int, text: str, items: list[str]) -> str:
    return json.dumps(
        {
            "type": "completions",
            "seq": seq,
            "text": text,
            "ms": 0.1,
            "items": [{"text": t, "score": 1.0} for t in items],
        }
    )


def honest(frame: dict) -> list[str]:
    if frame["type"] == "submit":
        return [json.dumps({"type": "submitted", "text": frame["text"], "stored": True})]
    return [completions(frame["seq"], frame["text"], [frame["text"] + "es"])]


MISBEHAVIOURS: dict[str, tuple[Callable[[dict, list], list[str]], str]] = {
    "duplicated": (lambda f, held: honest(f) * 2 if f.get("seq") == 2 else honest(f), "duplicated_answer"),
    "unprefixed": (
        lambda f, held: [completions(f["seq"], f["text"], ["tulips"])] if f.get("seq") == 2 else honest(f),
        "completion_without_prefix",
    ),
    "error": (
        lambda f, held: (
            [json.dumps({"type": "error", "seq": f["seq"], "code": "internal", "message": "x"})]
            if f.get("seq") == 1
            else honest(f)
        ),
        "error_frame",
    ),
    "silent": (lambda f, held: [] if f.get("seq") == 3 else honest(f), "missing_answer"),
    # seq 1 is answered only after seq 2: overtaken, then late
    "out_of_order": (
        lambda f, held: (
            (held.extend(honest(f)) or [])
            if f.get("seq") == 1
            else honest(f) + ([held.pop()] if held else [])
        ),
        "out_of_order_answer",
    ),
}


@contextmanager
def misbehaving_server(answer: Callable[[dict, list], list[str]]) -> Iterator[str]:
    port = free_port()
    ready = threading.Event()
    stop: list[asyncio.Future] = []

    async def handler(ws) -> None:
        await ws.send(json.dumps({"type": "hello", "session": "A" * 22, "protocol": 1}))
        held: list[str] = []
        async for raw in ws:
            for out in answer(json.loads(raw), held):
                await ws.send(out)

    async def run() -> None:
        async with serve(handler, "127.0.0.1", port):
            stop.append(asyncio.get_running_loop().create_future())
            ready.set()
            await stop[0]

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield f"ws://127.0.0.1:{port}/v1/ws"
    finally:
        loop.call_soon_threadsafe(stop[0].set_result, None)
        thread.join(10)


def test_an_honest_server_shows_no_violation() -> None:
    with misbehaving_server(lambda f, held: honest(f)) as url:
        report, tally = run_replay(url, tiny_plan(), timeout=2)
    assert report["violations"] == {} and tally.answers == {0: ["res"], 1: ["roes"], 2: ["roses"]}
    assert report["quality"]["examples"] == 3 and report["quality"]["success_at_1"] == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("name", "speed"),
    [
        (name, speed)
        for name in sorted(MISBEHAVIOURS)
        for speed in ("human", "max")
        if (name, speed) != ("out_of_order", "max")
    ],  # at max speed only one frame is ever in flight
)
def test_every_protocol_violation_is_reported(name: str, speed: str) -> None:
    answer, kind = MISBEHAVIOURS[name]
    with misbehaving_server(answer) as url:
        report, _ = run_replay(url, tiny_plan(), timeout=1, speed=speed, pace=Pace(0.001, 0.1, (0.0, 0.0)))
    assert set(report["violations"]) == {kind}
    sample = report["violation_samples"][0]
    assert (sample["kind"], sample["session"]) == (kind, 0)


def test_an_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(ReplayError, match="autocomplete serve"):
        run_replay(f"ws://127.0.0.1:{free_port()}/v1/ws", tiny_plan(), timeout=1)


# ---------------------------------------------------------------- the command


@pytest.mark.slow
def test_replay_command_writes_json_and_markdown_without_query_text(
    live_server, mpc_model: Path, synthetic_log: Path, query_log: QueryLog, tmp_path: Path, capsys
) -> None:
    server = live_server(mpc_model, env=FAST)
    out_json, out_md = tmp_path / "replay.json", tmp_path / "replay.md"
    code = main(
        [
            "replay",
            "--url",
            server.ws_url,
            "--log",
            str(synthetic_log),
            "--config",
            str(DEMO_CONFIG),
            "--protocol",
            "keystroke",
            "--sessions",
            "15",
            "--concurrency",
            "3",
            "--json",
            str(out_json),
            "--markdown",
            str(out_md),
        ]
    )
    assert code == 0
    report = json.loads(out_json.read_text())
    plan = plan_replay(query_log, "test", "keystroke", sessions=15)
    assert report["inputs"]["scored"] == len(plan.examples) and report["sessions"]["done"] == 15
    assert set(report["latency_ms"]) == {"p50", "p90", "p99", "max", "mean", "calls"}
    assert report["latency_ms"]["p50"] <= report["latency_ms"]["p99"] <= report["latency_ms"]["max"]
    markdown = out_md.read_text()
    assert "| all |" in markdown and "| 7+ |" in markdown and markdown in capsys.readouterr().out
    written = out_json.read_text() + markdown
    assert not any(query in written for s in plan.sessions for query in s.queries if len(query) > 3)


def test_replay_command_without_a_server_exits_2(synthetic_log: Path, capsys) -> None:
    code = main(
        [
            "replay",
            "--url",
            f"ws://127.0.0.1:{free_port()}/v1/ws",
            "--log",
            str(synthetic_log),
            "--config",
            str(DEMO_CONFIG),
            "--sessions",
            "1",
        ]
    )
    assert code == 2 and "autocomplete serve" in capsys.readouterr().err
