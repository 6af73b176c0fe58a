"""A person's history as the service serves it (``autocomplete.history``, wired into the websocket
and the HTTP API): read once per connection, handed to every keystroke, added to by every submit,
forgotten at once, and never anybody else's. In-process (Starlette's TestClient) with a real
model wrapped by a spy that keeps the history each keystroke was given."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from serving_stubs import SpyCompleter
from starlette.testclient import TestClient

from autocomplete.completer import load_completer
from autocomplete.config import ServeConfig
from autocomplete.server import create_app
from sessions.history import MemoryHistoryStore
from sessions.users import UserKeys, sign_user

HOST_SECRET = "the host's shared secret, 16+"
SERVER_SECRET = "this service's own secret, 16+"
ALICE = sign_user("alice", HOST_SECRET)
BOB = sign_user("bob", HOST_SECRET)
FORGED = [
    "alice",  # unsigned
    "alice." + "0" * 64,  # a made-up mac
    sign_user("alice", "a secret the host does not have"),  # another secret
    "alice." + BOB.split(".")[1],  # bob's mac on alice's id
]
ALICE_IN_STORE = UserKeys(HOST_SECRET, SERVER_SECRET).user(ALICE)
TOKEN = "metrics-token-for-tests"


class CountingHistory(MemoryHistoryStore):
    """Counts reads: a connection reads its person's history once, not per keystroke."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.reads = 0

    async def read(self, user: str, n: int):
        self.reads += 1
        return await super().read(user, n)


@pytest.fixture(scope="module")
def model(mpc_model: Path):
    return load_completer(mpc_model, warm_up=False)


@contextmanager
def service(
    model, store: MemoryHistoryStore | None = None, **config
) -> Iterator[tuple[TestClient, SpyCompleter]]:
    spy = SpyCompleter(model)
    settings = {
        "allowed_hosts": ("testserver",),
        "history_secret": HOST_SECRET,
        "session_secret": SERVER_SECRET,
        "history_refresh_seconds": 3600.0,
        "metrics_token": TOKEN,
        **config,
    }
    app = create_app(config=ServeConfig(**settings), completer=spy, history_store=store)
    with TestClient(app) as client:
        yield client, spy


def connect(client: TestClient, user: str | None = None, query: str = ""):
    protocols = ["autocomplete.v1"] + ([f"autocomplete.user.{user}"] if user else [])
    ws = client.websocket_connect(f"/v1/ws{query}", subprotocols=protocols)
    return ws


def hello(ws) -> None:
    assert ws.receive_json()["type"] == "hello"


def ask(ws, frame: dict) -> dict:
    ws.send_json(frame)
    return ws.receive_json()


def keystroke_history(ws, spy: SpyCompleter, text: str = "ro") -> dict:
    assert ask(ws, {"type": "input", "seq": 1, "text": text})["type"] == "completions"
    return spy.histories[-1]


def recent(ws, k: int = 10) -> list[str]:
    answer = ask(ws, {"type": "recent", "seq": 5, "k": k})
    assert answer["type"] == "recent" and answer["seq"] == 5
    return [item["text"] for item in answer["items"]]


def test_every_keystroke_gets_the_persons_history_read_once_per_connection(model) -> None:
    store = CountingHistory()
    with service(model, store) as (client, spy):
        with connect(client, ALICE) as ws:
            hello(ws)
            assert keystroke_history(ws, spy) == {}
            assert ask(ws, {"type": "submit", "text": "Garden Hose"})["stored"] is True
            assert ask(ws, {"type": "submit", "text": "roses"})["stored"] is True
            assert ask(ws, {"type": "submit", "text": "garden hose"})["stored"] is True
            for text in ("g", "ga", "gar"):
                history = keystroke_history(ws, spy, text)
            assert set(history) == {"garden hose", "roses"}  # normalized as the session stores it
            assert history["garden hose"][0] == 2 and 0 <= history["garden hose"][1] < 0.01
            assert recent(ws) == ["garden hose", "roses"]
            assert recent(ws, k=1) == ["garden hose"]
        assert store.reads == 1
        with connect(client, ALICE) as ws:  # another connection, later: read from the store
            hello(ws)
            assert set(keystroke_history(ws, spy)) == {"garden hose", "roses"}
        assert store.reads == 2


def test_a_forgotten_query_is_gone_from_the_next_answer_of_every_open_connection_and_the_store(
    model,
) -> None:
    store = MemoryHistoryStore()
    with service(model, store) as (client, spy):
        with connect(client, ALICE) as one, connect(client, ALICE) as two:
            hello(one)
            hello(two)
            for query in ("garden hose", "roses", "tulips"):
                ask(one, {"type": "submit", "text": query})
            assert set(keystroke_history(two, spy)) == {"garden hose", "roses", "tulips"}
            answer = ask(one, {"type": "forget", "seq": 3, "query": "Roses"})
            assert answer == {"type": "forgotten", "seq": 3, "query": "Roses", "forgotten": True}
            assert set(keystroke_history(one, spy)) == {"garden hose", "tulips"}
            assert set(keystroke_history(two, spy)) == {"garden hose", "tulips"}  # the other tab too
            assert recent(two) == ["tulips", "garden hose"]
            # the whole history, over HTTP, while both are open
            deleted = client.delete("/v1/history", headers={"X-Autocomplete-User": ALICE})
            assert deleted.json() == {"type": "forgotten", "seq": None, "query": None, "forgotten": True}
            assert keystroke_history(one, spy) == {} and keystroke_history(two, spy) == {}
            assert recent(one) == [] and recent(two) == []
            ask(one, {"type": "submit", "text": "pansies"})
            assert set(keystroke_history(two, spy, "pa")) == {"pansies"}  # later submits are kept
        assert store.queries(ALICE_IN_STORE) == 1
        with connect(client, ALICE) as ws:
            hello(ws)
            assert set(keystroke_history(ws, spy)) == {"pansies"}
            ask(ws, {"type": "forget"})
            assert keystroke_history(ws, spy) == {}
        assert store.queries(ALICE_IN_STORE) == 0
        assert client.get("/v1/history", headers={"X-Autocomplete-User": ALICE}).json()["items"] == []


@pytest.mark.parametrize("forged", FORGED)
def test_a_forged_key_or_another_persons_reads_nothing_and_writes_nothing(model, forged: str) -> None:
    store = MemoryHistoryStore()
    with service(model, store) as (client, spy):
        with connect(client, ALICE) as ws:
            hello(ws)
            ask(ws, {"type": "submit", "text": "alices secret query"})
        for key in (forged, BOB):
            with connect(client, key) as ws:
                hello(ws)
                assert keystroke_history(ws, spy, "al") == {}
                assert recent(ws) == []
                ask(ws, {"type": "submit", "text": f"written with {key[:3]}"})
                assert ask(ws, {"type": "forget"})["forgotten"] is True  # looks like any other answer
            answer = client.get("/v1/history", headers={"X-Autocomplete-User": key})
            assert answer.status_code == 200
            assert all("alice" not in item["text"] for item in answer.json()["items"])
            client.get("/v1/complete", params={"q": "al"}, headers={"X-Autocomplete-User": key})
            assert spy.histories[-1] == {}
            assert client.delete("/v1/history", params={"user": key}).status_code == 200
        # nothing was deleted or added for alice; the forged key wrote nowhere, bob only his own
        alice = client.get("/v1/history", headers={"X-Autocomplete-User": ALICE}).json()["items"]
        assert [item["text"] for item in alice] == ["alices secret query"]
        assert len(store) == 1  # bob's "forget" emptied his own; the forged key has none
        metrics = client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"}).text
        assert "autocomplete_user_keys_refused_total 4.0" in metrics  # ws, GET, GET, DELETE


def test_without_a_user_key_the_browser_cookie_keeps_the_history(model) -> None:
    with service(model) as (client, spy):
        with connect(client) as ws:
            hello(ws)
            ask(ws, {"type": "submit", "text": "roses"})
            cookies = [v.decode() for k, v in ws.extra_headers if k == b"set-cookie"]
        (browser_cookie,) = [c for c in cookies if c.startswith("ac_user=")]
        assert "HttpOnly" in browser_cookie and "Max-Age=31536000" in browser_cookie
        browser = browser_cookie.split(";")[0].split("=", 1)[1]
        client.cookies.set("ac_user", browser)
        with client.websocket_connect("/v1/ws", headers={"cookie": f"ac_user={browser}"}) as ws:
            hello(ws)
            assert set(keystroke_history(ws, spy)) == {"roses"}
        assert client.get("/v1/history").json()["items"] == [{"text": "roses"}]
        client.get("/v1/complete", params={"q": "ro"})
        assert set(spy.histories[-1]) == {"roses"}
        client.cookies.set("ac_user", browser[:-2] + ("AA" if browser[-2:] != "AA" else "BB"))
        assert client.get("/v1/history").json()["items"] == []  # a forged cookie: nobody


def test_history_false_reads_and_writes_nothing(model) -> None:
    store = CountingHistory()
    with service(model, store) as (client, spy):
        with connect(client, ALICE) as ws:
            hello(ws)
            ask(ws, {"type": "submit", "text": "roses"})
        with connect(client, ALICE, "?history=false") as ws:
            hello(ws)
            assert keystroke_history(ws, spy) == {} and recent(ws) == []
            ask(ws, {"type": "submit", "text": "private query"})
        client.post(
            "/v1/submit",
            json={"text": "private too", "history": False},
            headers={"X-Autocomplete-User": ALICE},
        )
        client.get(
            "/v1/complete", params={"q": "ro", "history": "false"}, headers={"X-Autocomplete-User": ALICE}
        )
        assert spy.histories[-1] == {}
        assert store.reads == 0  # a submit writes without reading; history=false reads nothing
        items = client.get("/v1/history", headers={"X-Autocomplete-User": ALICE}).json()["items"]
        assert items == [{"text": "roses"}]


def test_history_bounded_under_ten_thousand_submits_through_the_service(model) -> None:
    store = MemoryHistoryStore(max_queries=50)
    with service(
        model, store, history_max_queries=50, max_inputs_per_second=1e6, max_inputs_per_second_per_ip=1e6
    ) as (
        client,
        spy,
    ):
        with connect(client, ALICE) as ws:
            hello(ws)
            for i in range(10_000):
                ws.send_json({"type": "submit", "text": f"query number {i}"})
            for _ in range(10_000):
                assert ws.receive_json()["type"] == "submitted"
            history = keystroke_history(ws, spy, "qu")
            assert len(history) == 50 and "query number 9999" in history
            assert recent(ws, k=20) == [f"query number {i}" for i in range(9_999, 9_979, -1)]
        assert len(store) == 1 and store.queries(ALICE_IN_STORE) == 50


def test_a_history_store_that_fails_means_answers_without_history(model) -> None:
    from test_user_history import BrokenHistory

    backing = BrokenHistory()
    with service(model, backing) as (client, spy):
        with connect(client, ALICE) as ws:
            hello(ws)
            assert keystroke_history(ws, spy) == {}
            assert client.get("/readyz").json()["history_store"] == "degraded"
            assert ask(ws, {"type": "submit", "text": "roses"})["stored"] is True  # the session took it
            assert ask(ws, {"type": "forget"})["forgotten"] is False
        assert (
            client.get("/v1/complete", params={"q": "ro"}, headers={"X-Autocomplete-User": ALICE}).status_code
            == 200
        )


def test_no_user_key_or_query_text_in_the_logs(model, caplog: pytest.LogCaptureFixture) -> None:
    from test_user_history import BrokenHistory

    with caplog.at_level(logging.DEBUG), service(model, BrokenHistory()) as (client, spy):
        for key in (ALICE, FORGED[1]):
            with connect(client, key) as ws:
                hello(ws)
                ask(ws, {"type": "submit", "text": "zanzibarquery"})
                ask(ws, {"type": "input", "seq": 1, "text": "zanzibarprefix"})
                ask(ws, {"type": "forget", "query": "zanzibarquery"})
            client.delete(
                "/v1/history", params={"query": "zanzibarquery"}, headers={"X-Autocomplete-User": key}
            )
    lines = [r.getMessage() for r in caplog.records if not r.name.startswith("httpx")]
    assert any("history store" in line for line in lines)  # the failures were logged...
    assert not [line for line in lines if "zanzibar" in line or "alice" in line or ALICE[6:] in line]
