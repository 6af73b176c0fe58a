"""The app in-process (Starlette's TestClient): websocket protocol, HTTP API, health, metrics."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from serving_stubs import EchoCompleter, FailingCompleter
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from autocomplete.completer import load_completer
from autocomplete.config import ServeConfig
from autocomplete.server import create_app, nameless_background_errors
from sessions.base import SessionStoreError, is_session_id
from sessions.ids import SessionIds
from sessions.memory import MemorySessionStore

TOKEN = "metrics-token-for-tests"


@contextmanager
def client_for(completer=None, store=None, model: Path | None = None, **config) -> Iterator[TestClient]:
    # TestClient's Host is "testserver" and its client "testclient" (not a loopback address)
    config = {"allowed_hosts": ("testserver",), "metrics_token": TOKEN, **config}
    app = create_app(model, ServeConfig(**config), completer=completer, store=store)
    with TestClient(app) as client:
        yield client


def metrics(client: TestClient) -> str:
    return client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"}).text


def made_up_id() -> str:
    return SessionIds().issue()  # the right shape, signed by another key


@pytest.fixture
def echo_client() -> Iterator[TestClient]:
    with client_for(EchoCompleter()) as client:
        yield client


def hello(ws) -> str:
    frame = ws.receive_json()
    assert frame["type"] == "hello" and frame["protocol"] == 1 and is_session_id(frame["session"])
    return frame["session"]


def test_websocket_answers_inputs_with_the_models_completions(mpc_model: Path) -> None:
    model = load_completer(mpc_model)
    with client_for(model=mpc_model) as client, client.websocket_connect("/v1/ws") as ws:
        hello(ws)
        for seq, text in enumerate(["c", "ch", "x", ""]):
            ws.send_json({"type": "input", "seq": seq, "text": text})
            frame = ws.receive_json()
            expected = [c.text for c in model.complete(text, (), 10)]
            assert (frame["type"], frame["seq"], frame["text"]) == ("completions", seq, text)
            assert [item["text"] for item in frame["items"]] == expected
            assert frame["ms"] >= 0
        ws.send_json({"type": "input", "seq": 9, "text": "c", "k": 2})
        assert len(ws.receive_json()["items"]) == min(2, len(model.complete("c", (), 10)))


def test_submit_becomes_the_context_of_the_next_inputs(echo_client: TestClient) -> None:
    with echo_client.websocket_connect("/v1/ws") as ws:
        hello(ws)
        ws.send_json({"type": "input", "seq": 1, "text": "ro"})
        assert ws.receive_json()["items"][0]["text"] == "ro after nothing"
        ws.send_json({"type": "submit", "text": "garden hose"})
        assert ws.receive_json() == {"type": "submitted", "text": "garden hose", "stored": True}
        ws.send_json({"type": "input", "seq": 2, "text": "ro"})
        assert ws.receive_json()["items"][0]["text"] == "ro after garden hose"


def test_a_submitted_query_is_prepared_as_the_next_inputs_context() -> None:
    completer = EchoCompleter()
    with client_for(completer) as client:
        with client.websocket_connect("/v1/ws") as ws:
            hello(ws)
            ws.send_json({"type": "submit", "text": "garden hose"})
            assert ws.receive_json()["stored"] is True
        client.post("/v1/submit", json={"text": "house plants"})
    assert completer.prepared == [("garden hose",), ("house plants",)]


class _PrepareFails(EchoCompleter):
    def prepare(self, previous) -> None:
        raise RuntimeError("the model broke")


def test_a_failed_prepare_loses_neither_the_submit_nor_the_next_answer() -> None:
    with client_for(_PrepareFails()) as client, client.websocket_connect("/v1/ws") as ws:
        hello(ws)
        ws.send_json({"type": "submit", "text": "garden hose"})
        assert ws.receive_json() == {"type": "submitted", "text": "garden hose", "stored": True}
        ws.send_json({"type": "input", "seq": 1, "text": "ro"})
        assert ws.receive_json()["items"][0]["text"] == "ro after garden hose"


@pytest.mark.parametrize(("refresh", "seen"), [(0.0, "tulips"), (3600.0, "roses")])
def test_another_tabs_submit_becomes_context_after_the_refresh_interval(refresh: float, seen: str) -> None:
    with client_for(EchoCompleter(), context_refresh_seconds=refresh) as client:
        with client.websocket_connect("/v1/ws") as ws:
            session = hello(ws)
            ws.send_json({"type": "submit", "text": "roses"})
            ws.receive_json()
            ws.send_json({"type": "input", "seq": 1, "text": "x"})
            assert ws.receive_json()["items"][0]["text"] == "x after roses"
            client.post("/v1/submit", json={"session": session, "text": "tulips"})  # another tab
            ws.send_json({"type": "input", "seq": 2, "text": "x"})
            assert ws.receive_json()["items"][0]["text"] == f"x after {seen}"
            ws.send_json({"type": "submit", "text": "lilies"})  # its own submit: read again at once
            ws.receive_json()
            ws.send_json({"type": "input", "seq": 3, "text": "x"})
            assert ws.receive_json()["items"][0]["text"] == "x after lilies"


def test_a_session_resumes_by_id_and_never_adopts_unknown_ids(echo_client: TestClient) -> None:
    with echo_client.websocket_connect("/v1/ws") as ws:
        session = hello(ws)
        ws.send_json({"type": "submit", "text": "roses"})
        ws.receive_json()
    with echo_client.websocket_connect(f"/v1/ws?session={session}") as ws:
        assert hello(ws) == session
        ws.send_json({"type": "input", "seq": 1, "text": "x"})
        assert ws.receive_json()["items"][0]["text"] == "x after roses"
    echo_client.cookies.set("ac_session", session)
    with echo_client.websocket_connect("/v1/ws") as ws:
        assert hello(ws) == session
    echo_client.cookies.clear()
    for requested in (made_up_id(), "malformed", "a" * 300):
        with echo_client.websocket_connect(f"/v1/ws?session={requested}") as ws:
            fresh = hello(ws)
            assert fresh not in (requested, session)
            ws.send_json({"type": "input", "seq": 1, "text": "x"})
            assert ws.receive_json()["items"][0]["text"] == "x after nothing"


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{oops", "bad_json"),
        ('{"type": "shout"}', "unknown_type"),
        ('{"type": "input", "seq": 5, "text": 3}', "bad_field"),
        ('{"type": "input", "seq": 5, "text": "' + "a" * 101 + '"}', "too_long"),
        ('{"type": "input", "seq": 5, "text": "a\\u0007"}', "control_characters"),
    ],
)
def test_bad_frames_get_an_error_and_the_connection_stays_usable(
    echo_client: TestClient, frame, code
) -> None:
    with echo_client.websocket_connect("/v1/ws") as ws:
        hello(ws)
        ws.send_text(frame)
        error = ws.receive_json()
        assert error["type"] == "error" and error["code"] == code and error["message"]
        ws.send_json({"type": "input", "seq": 6, "text": "ok"})
        assert ws.receive_json()["seq"] == 6


def test_binary_frames_get_an_error(echo_client: TestClient) -> None:
    with echo_client.websocket_connect("/v1/ws") as ws:
        hello(ws)
        ws.send_bytes(b'{"type": "input", "seq": 1, "text": "a"}')
        assert ws.receive_json()["code"] == "bad_frame"


def test_a_frame_over_the_size_limit_closes_with_1009(echo_client: TestClient) -> None:
    with echo_client.websocket_connect("/v1/ws") as ws:
        hello(ws)
        ws.send_text('{"type": "submit", "text": "' + "a" * 5000 + '"}')
        assert ws.receive_json()["code"] == "frame_too_big"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1009


def test_inputs_over_the_rate_limit_get_an_error_each() -> None:
    with (
        client_for(EchoCompleter(), max_inputs_per_second=3) as client,
        client.websocket_connect("/v1/ws") as ws,
    ):
        hello(ws)
        for seq in range(8):
            ws.send_json({"type": "input", "seq": seq, "text": "a"})
        answers = [ws.receive_json() for _ in range(8)]
    assert [a["seq"] for a in answers] == list(range(8))
    limited = [a for a in answers if a["type"] == "error"]
    assert limited and all(a["code"] == "rate_limited" for a in limited)


def test_idle_connections_are_closed() -> None:
    with (
        client_for(EchoCompleter(), idle_timeout_seconds=0.2) as client,
        client.websocket_connect("/v1/ws") as ws,
    ):
        hello(ws)
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1000


@pytest.mark.parametrize(
    ("origin", "allowed", "accepted"),
    [
        (None, (), True),
        ("http://testserver", (), True),
        ("https://evil.example", (), False),
        ("http://testserver.evil.example", (), False),
        ("https://app.example", ("https://app.example",), True),
        ("http://testserver", ("https://app.example",), False),
    ],
)
def test_websocket_origin_allow_list(origin: str | None, allowed: tuple[str, ...], accepted: bool) -> None:
    headers = {"origin": origin} if origin else {}
    with client_for(EchoCompleter(), allowed_origins=allowed) as client:
        if accepted:
            with client.websocket_connect("/v1/ws", headers=headers) as ws:
                hello(ws)
        else:
            # accepted, then closed: a browser's close event shows the code and the reason
            with (
                pytest.raises(WebSocketDisconnect) as refused,
                client.websocket_connect("/v1/ws", headers=headers) as ws,
            ):
                ws.receive_json()
            assert (refused.value.code, refused.value.reason) == (1008, "origin not allowed")


def cors_headers(response) -> dict[str, str]:
    return {k.lower(): v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


@pytest.mark.parametrize(
    ("origin", "allowed", "listed"),
    [
        ("https://app.example", ("https://app.example",), True),
        ("https://app.example", ("https://app.example/", "https://b.example"), True),
        ("https://other.example", ("*",), True),
        ("https://evil.example", ("https://app.example",), False),
        ("https://app.example.evil.example", ("https://app.example",), False),
        ("https://app.example", (), False),
        ("http://testserver", ("https://app.example",), False),  # same origin: no CORS needed
    ],
)
def test_http_fallback_is_open_to_listed_origins_only(
    origin: str, allowed: tuple[str, ...], listed: bool
) -> None:
    with client_for(EchoCompleter(), allowed_origins=allowed) as client:
        preflight = client.options(
            "/v1/submit",
            headers={
                "origin": origin,
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type",
            },
        )
        complete = client.get("/v1/complete", params={"q": "ro"}, headers={"origin": origin})
        submit = client.post("/v1/submit", json={"text": "roses"}, headers={"origin": origin})
        assert complete.status_code == 200 and complete.json()["items"][0]["text"] == "ro after nothing"
        assert submit.status_code == 200 and submit.json()["stored"] is True
        if listed:
            assert preflight.status_code == 200
            assert cors_headers(preflight)["access-control-allow-origin"] == origin
            assert "POST" in cors_headers(preflight)["access-control-allow-methods"]
            assert "content-type" in cors_headers(preflight)["access-control-allow-headers"].lower()
            for response in (preflight, complete, submit):
                assert cors_headers(response)["access-control-allow-origin"] == origin
                assert cors_headers(response)["access-control-allow-credentials"] == "true"
        else:
            assert preflight.status_code == 405
            for response in (preflight, complete, submit):
                assert cors_headers(response) == {}


def test_cors_answers_carry_the_json_error_bodies_too() -> None:
    with client_for(EchoCompleter(), allowed_origins=("https://app.example",)) as client:
        response = client.get("/v1/complete", headers={"origin": "https://app.example"})
        assert response.status_code == 400 and response.json()["code"] == "bad_field"
        assert cors_headers(response)["access-control-allow-origin"] == "https://app.example"


def test_a_completer_failure_is_an_error_frame_not_a_dropped_connection() -> None:
    with client_for(FailingCompleter()) as client, client.websocket_connect("/v1/ws") as ws:
        hello(ws)
        ws.send_json({"type": "input", "seq": 1, "text": "boom"})
        assert ws.receive_json() == {
            "type": "error",
            "seq": 1,
            "code": "internal",
            "message": "the server could not complete this input",
        }
        ws.send_json({"type": "input", "seq": 2, "text": "fine"})
        assert ws.receive_json()["type"] == "completions"


def test_http_complete_answers_like_the_websocket(mpc_model: Path) -> None:
    with client_for(model=mpc_model) as client:
        with client.websocket_connect("/v1/ws") as ws:
            hello(ws)
            ws.send_json({"type": "input", "seq": 1, "text": "ch", "k": 3})
            over_ws = ws.receive_json()
        response = client.get("/v1/complete", params={"q": "ch", "k": 3})
        assert response.status_code == 200
        body = response.json()
        assert body["items"] == over_ws["items"] and body["text"] == "ch" and body["session"] is None


def test_http_submit_and_session_trail(echo_client: TestClient) -> None:
    response = echo_client.post("/v1/submit", json={"text": "garden hose"})
    assert response.status_code == 200
    session = response.json()["session"]
    assert is_session_id(session) and response.cookies.get("ac_session") == session
    echo_client.post("/v1/submit", json={"session": session, "text": "house plants"})
    trail = echo_client.get("/v1/session", params={"session": session}).json()
    assert trail == {"session": session, "previous": ["garden hose", "house plants"]}
    completed = echo_client.get("/v1/complete", params={"q": "ro", "session": session}).json()
    assert completed["items"][0]["text"] == "ro after house plants"
    echo_client.cookies.clear()
    stranger = echo_client.get("/v1/session", params={"session": made_up_id()}).json()
    assert stranger["previous"] == [] and stranger["session"] != session


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("get", "/v1/complete", {}, 400, "bad_field"),
        ("get", "/v1/complete", {"params": {"q": "a", "k": "many"}}, 400, "bad_field"),
        ("get", "/v1/complete", {"params": {"q": "a", "k": "99"}}, 400, "bad_field"),
        ("get", "/v1/complete", {"params": {"q": "a" * 101}}, 400, "too_long"),
        ("get", "/v1/complete", {"params": {"q": "a\x01"}}, 400, "control_characters"),
        (
            "post",
            "/v1/submit",
            {"content": "text=hello", "headers": {"content-type": "text/plain"}},
            415,
            "unsupported_media_type",
        ),
        (
            "post",
            "/v1/submit",
            {"content": "{", "headers": {"content-type": "application/json"}},
            400,
            "bad_json",
        ),
        ("post", "/v1/submit", {"json": ["a"]}, 400, "bad_frame"),
        ("post", "/v1/submit", {"json": {"text": ""}}, 400, "bad_field"),
        ("get", "/v1/submit", {}, 405, "method_not_allowed"),
        ("get", "/nowhere", {}, 404, "not_found"),
    ],
)
def test_every_4xx_has_a_json_error_body(echo_client: TestClient, method, path, kwargs, status, code) -> None:
    response = getattr(echo_client, method)(path, **kwargs)
    assert response.status_code == status
    body = response.json()
    assert body["type"] == "error" and body["code"] == code and body["message"]


def test_health_readiness_and_the_demo_page(echo_client: TestClient) -> None:
    assert echo_client.get("/healthz").json() == {"status": "ok"}
    ready = echo_client.get("/readyz").json()
    assert {
        "status": "ready",
        "model": "echo",
        "model_id": "echo",
        "session_store": "ok",
    }.items() <= ready.items()
    page = echo_client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")


def test_metrics_count_inputs_superseded_errors_and_connections() -> None:
    with client_for(EchoCompleter(delay=0.03)) as client:
        with client.websocket_connect("/v1/ws") as ws:
            hello(ws)
            for seq in range(5):
                ws.send_json({"type": "input", "seq": seq, "text": "abcde"[: seq + 1]})
            ws.send_text("nope")
            answers = [ws.receive_json() for _ in range(6)]
            open_now = metrics(client)
        text = metrics(client)
    superseded = sum(a["type"] == "superseded" for a in answers)
    assert 'autocomplete_inputs_total{transport="websocket"} 5.0' in text
    assert f"autocomplete_superseded_total {float(superseded)}" in text
    assert 'autocomplete_errors_total{code="bad_json"} 1.0' in text
    assert (
        "autocomplete_complete_seconds_count" in text and "autocomplete_session_store_seconds_count" in text
    )
    assert "autocomplete_open_connections 1.0" in open_now and "autocomplete_open_connections 0.0" in text


class DownStore(MemorySessionStore):
    async def resume(self, session_id: str | None) -> str:
        raise SessionStoreError("down")

    async def previous(self, session_id: str, n: int) -> list[str]:
        raise SessionStoreError("down")

    async def record(self, session_id: str, query: str, key: str | None = None) -> None:
        raise SessionStoreError("down")

    async def ping(self) -> None:
        raise SessionStoreError("down")


def test_a_dead_session_store_still_answers_without_context() -> None:
    with client_for(EchoCompleter(), store=DownStore()) as client:
        with client.websocket_connect("/v1/ws") as ws:
            hello(ws)
            ws.send_json({"type": "submit", "text": "roses"})
            # kept in the outbox and retried, not dropped
            assert ws.receive_json() == {"type": "submitted", "text": "roses", "stored": "pending"}
            ws.send_json({"type": "input", "seq": 1, "text": "x"})
            assert ws.receive_json()["items"][0]["text"] == "x after nothing"
        assert client.get("/readyz").json()["session_store"] == "degraded"
        text = metrics(client)
        assert 'autocomplete_session_store_errors_total{op="previous"}' in text
        assert "autocomplete_submits_pending 1.0" in text


def test_info_logs_hold_no_session_ids_or_query_texts(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO), client_for(EchoCompleter()) as client:
        with client.websocket_connect("/v1/ws") as ws:
            session = hello(ws)
            ws.send_json({"type": "submit", "text": "secretquery"})
            ws.receive_json()
            ws.send_json({"type": "input", "seq": 1, "text": "secretprefix"})
            ws.receive_json()
        client.get("/v1/complete", params={"q": "secretprefix", "session": session})
    server_lines = [
        r.getMessage() for r in caplog.records if not r.name.startswith("httpx")
    ]  # httpx: the client
    assert server_lines  # the app did log (startup), just not these
    assert not [line for line in server_lines if session in line or "secret" in line]


def test_a_session_id_from_a_link_never_sets_the_cookie(echo_client: TestClient) -> None:
    victim_of = echo_client.post("/v1/submit", json={"text": "attackers trail"}).json()["session"]
    echo_client.cookies.clear()
    # a link with somebody else's id: answered for that id, but the browser's cookie stays its own
    for response in (
        echo_client.get("/v1/session", params={"session": victim_of}),
        echo_client.get("/v1/complete", params={"q": "ro", "session": victim_of}),
        echo_client.get("/v1/session", headers={"x-autocomplete-session": victim_of}),
    ):
        assert response.status_code == 200 and "ac_session" not in response.headers.get("set-cookie", "")
    with echo_client.websocket_connect(f"/v1/ws?session={victim_of}") as ws:
        assert hello(ws) == victim_of
    assert "ac_session" not in echo_client.cookies
    own = echo_client.get("/v1/session")  # no id at all: a fresh one, and its cookie
    assert own.cookies.get("ac_session") == own.json()["session"] != victim_of


def test_the_widget_sends_its_session_in_the_subprotocol_header(echo_client: TestClient) -> None:
    with echo_client.websocket_connect("/v1/ws") as ws:
        session = hello(ws)
        ws.send_json({"type": "submit", "text": "roses"})
        ws.receive_json()
    echo_client.cookies.clear()
    offered = ["autocomplete.v1", f"autocomplete.session.{session}"]
    with echo_client.websocket_connect("/v1/ws", subprotocols=offered) as ws:
        assert ws.accepted_subprotocol == "autocomplete.v1"
        assert hello(ws) == session
        ws.send_json({"type": "input", "seq": 1, "text": "x"})
        assert ws.receive_json()["items"][0]["text"] == "x after roses"


def test_hosts_outside_the_allow_list_are_refused_with_the_json_error() -> None:
    with client_for(EchoCompleter(), allowed_hosts=("autocomplete.example", "*.shop.example")) as client:
        for host in ("testserver", "autocomplete.example.evil", "shop.example", "!!", "a b", "x.example/a"):
            refused = client.get("/healthz", headers={"host": host})
            assert refused.status_code == 400 and refused.json()["code"] == "bad_host", host
        for host in ("autocomplete.example", "AUTOCOMPLETE.example:8080", "eu.shop.example"):
            assert client.get("/healthz", headers={"host": host}).status_code == 200, host
        with pytest.raises(WebSocketDisconnect), client.websocket_connect("/v1/ws") as ws:
            ws.receive_json()


def test_metrics_need_the_bearer_token_or_a_loopback_client() -> None:
    with client_for(EchoCompleter()) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"authorization": "Bearer wrong"}).status_code == 401
        assert "autocomplete_inputs_total" in metrics(client)
    with client_for(EchoCompleter(), metrics_token="") as client:
        refused = client.get("/metrics")  # the test client is not on the loopback
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"


def test_an_oversized_body_gets_a_json_413(echo_client: TestClient) -> None:
    big = '{"text": "' + "a" * 5000 + '"}'
    for headers in ({"content-type": "application/json"},):
        response = echo_client.post("/v1/submit", content=big, headers=headers)
        assert response.status_code == 413 and response.json()["code"] == "too_big"

    def chunks():
        yield b'{"text": "'
        for _ in range(10):
            yield b"a" * 1000
        yield b'"}'

    streamed = echo_client.post("/v1/submit", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413 and streamed.json()["code"] == "too_big"


def test_readyz_and_metrics_name_the_model_and_count_what_was_answered(mpc_model):
    with client_for(model=mpc_model) as client:
        ready = client.get("/readyz").json()
        assert ready["model"] == "mpc" and len(ready["model_id"]) == 12 and ready["labels"] > 0
        assert ready["trained_at"].startswith("20")
        client.get("/v1/complete", params={"q": "r"})
        client.get("/v1/complete", params={"q": "zzzzqqqq"})
        client.post("/v1/submit", json={"text": "rose", "rank": 2})
        text = metrics(client)
    assert f'autocomplete_model_info{{id="{ready["model_id"]}",kind="mpc"' in text
    assert "autocomplete_empty_answers_total 1.0" in text
    assert 'autocomplete_completion_sources_total{source="popular"}' in text
    assert 'autocomplete_chosen_rank_bucket{le="2.0"} 1.0' in text


def test_a_submitted_rank_outside_the_answer_is_a_clear_error(mpc_model):
    with client_for(model=mpc_model) as client:
        response = client.post("/v1/submit", json={"text": "rose", "rank": 99})
    assert response.status_code == 400 and response.json()["code"] == "bad_field"
    assert "rank" in response.json()["message"]


def test_an_error_no_code_awaited_is_logged_by_its_type_never_its_message(caplog):
    async def fails() -> None:
        raise ValueError("zanzibar hose for alice")

    loop = asyncio.new_event_loop()
    try:
        loop.set_exception_handler(nameless_background_errors)
        task = loop.create_task(fails())
        loop.run_until_complete(asyncio.wait([task]))
        del task
        with caplog.at_level(logging.ERROR):
            gc.collect()  # a task whose exception nobody retrieved reports it when it is freed
    finally:
        loop.close()
    assert "ValueError" in caplog.text
    assert "zanzibar" not in caplog.text and "alice" not in caplog.text and "Traceback" not in caplog.text
