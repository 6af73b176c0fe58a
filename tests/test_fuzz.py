"""Hypothesis against the websocket and HTTP inputs: arbitrary Unicode, surrogates, huge numbers,
nested JSON, wrong types. The server answers every frame (an error or completions), never a 500,
and neither the fuzzed connection nor an unrelated one is dropped."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving_stubs import EchoCompleter
from starlette.testclient import TestClient

from autocomplete.config import ServeConfig
from autocomplete.server import create_app

CODES = {
    "bad_json",
    "bad_frame",
    "unknown_type",
    "bad_field",
    "too_long",
    "control_characters",
    "frame_too_big",
    "rate_limited",
}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = (
    st.none()
    | st.booleans()
    | st.text()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.just(2**53)
    | st.just(2**53 - 1)
    | st.just(-1)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
# frames that look almost right: the known keys with values of any type
near_frames = st.fixed_dictionaries(
    {"type": st.sampled_from(["input", "submit", "Input", "", "hello"]) | json_values},
    optional={
        "seq": json_values | st.integers(min_value=-(2**64), max_value=2**64),
        "text": json_values | st.text(),
        "k": json_values | st.integers(min_value=-100, max_value=100),
    },
)
surrogate_text = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3)


def escaped(value: object) -> str:
    """JSON text; lone surrogates travel as \\uXXXX escapes (a websocket text frame is UTF-8)."""
    return json.dumps(value, ensure_ascii=True, allow_nan=True)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = create_app(
        completer=EchoCompleter(),
        config=ServeConfig(
            max_inputs_per_second=1e9, max_inputs_per_second_per_ip=1e9, allowed_hosts=("testserver",)
        ),
    )
    with TestClient(app) as test_client:
        yield test_client


def check_answer(sent: str, answer: dict) -> None:
    assert answer["type"] in ("completions", "error", "submitted", "superseded"), answer
    if answer["type"] == "error":
        assert answer["code"] in CODES and isinstance(answer["message"], str) and answer["message"]


def still_usable(ws, seq: int = 424242) -> None:
    ws.send_text(json.dumps({"type": "input", "seq": seq, "text": "ro"}))
    answer = ws.receive_json()
    assert (answer["type"], answer["seq"]) == ("completions", seq)


@FUZZ
@given(
    frames=st.lists(
        near_frames.map(escaped)
        | json_values.map(escaped)
        | st.text(max_size=300)
        | surrogate_text.map(lambda s: escaped({"type": "input", "seq": 1, "text": s})),
        min_size=1,
        max_size=6,
    )
)
def test_websocket_answers_every_frame_and_stays_usable(client: TestClient, frames: list[str]) -> None:
    with client.websocket_connect("/v1/ws") as bystander, client.websocket_connect("/v1/ws") as ws:
        bystander.receive_json()
        ws.receive_json()
        for frame in frames:
            ws.send_text(frame)
            check_answer(frame, ws.receive_json())
        still_usable(ws)
        still_usable(bystander)


@pytest.mark.parametrize("depth", [10, 1000, 2000])
def test_deeply_nested_json_is_refused_not_fatal(client: TestClient, depth: int) -> None:
    frame = "[" * depth + "]" * depth
    with client.websocket_connect("/v1/ws") as ws:
        ws.receive_json()
        ws.send_text(frame)
        assert ws.receive_json()["code"] in ("bad_frame", "bad_json")
        still_usable(ws)
    response = client.post("/v1/submit", content=frame, headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["code"] in ("bad_frame", "bad_json")


@FUZZ
@given(
    q=st.text(max_size=150) | surrogate_text,
    k=st.none() | st.text(max_size=30) | st.integers().map(str),
    session=st.none() | st.text(max_size=40),
)
def test_http_complete_is_answered_or_refused_with_a_json_4xx(
    client: TestClient, q: str, k: str | None, session: str | None
) -> None:
    params = {"q": q.encode("utf-8", "surrogatepass").decode("utf-8", "replace")}
    if k is not None:
        params["k"] = k
    if session is not None:
        params["session"] = session
    response = client.get("/v1/complete", params=params)
    assert response.status_code in (200, 400), response.text
    body = response.json()
    assert body["type"] == ("completions" if response.status_code == 200 else "error")


@FUZZ
@given(
    body=json_values.map(escaped)
    | near_frames.map(escaped)
    | st.binary(max_size=200).map(bytes.hex)
    | st.text(max_size=200),
    content_type=st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", ""]),
)
def test_http_submit_never_fails_with_a_500(client: TestClient, body: str, content_type: str) -> None:
    response = client.post(
        "/v1/submit", content=body.encode("utf-8", "surrogatepass"), headers={"content-type": content_type}
    )
    assert response.status_code in (200, 400, 413, 415), response.text
    answer = response.json()
    assert answer["type"] == ("submitted" if response.status_code == 200 else "error")


@FUZZ
@given(
    path=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="?#"), max_size=40),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
)
def test_unknown_routes_and_methods_get_json_errors(client: TestClient, path: str, method: str) -> None:
    response = client.request(method, "/" + path.lstrip("/"))
    assert response.status_code < 500
    if response.status_code >= 400:
        assert response.json()["type"] == "error"
