"""Live labels on real servers: a query submitted by two sessions reaches every worker within 5 s."""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
import redis

from autocomplete.evaluation.server_process import drop_redis_keys
from indexer.config import load_train_config
from indexer.pipeline import build_model

REDIS_URL = "redis://127.0.0.1:6379/0"
ROOT = Path(__file__).resolve().parent.parent
NEW = "zanzibar quokka tours"  # in no synthetic session
BLOCKED = "zanzibar forbidden tours"
pytestmark = [pytest.mark.slow, pytest.mark.redis]


@pytest.fixture(scope="module")
def blocklisted_model(synthetic_log: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MPC model trained with min_users = 2 and a blocklist naming "forbidden"."""
    folder = tmp_path_factory.mktemp("live-model")
    blocklist = folder / "blocklist.txt"
    blocklist.write_text("forbidden\n", encoding="utf-8")
    config = load_train_config(ROOT / "configs" / "demo.toml", [f'privacy.blocklist="{blocklist}"'])
    build_model(synthetic_log, dataclasses.replace(config, model="mpc"), folder / "mpc")
    return folder / "mpc"


def submit(url: str, text: str) -> None:
    """One submit from a fresh session (no cookie, no session id: the server issues one)."""
    body = json.dumps({"text": text}).encode()
    request = urllib.request.Request(
        f"{url}/v1/submit", data=body, headers={"content-type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())["stored"] is True


def suggested(url: str, text: str) -> list[str]:
    query = urllib.parse.urlencode({"q": text, "k": 10})
    with urllib.request.urlopen(f"{url}/v1/complete?{query}", timeout=10) as response:  # a new connection
        return [item["text"] for item in json.loads(response.read())["items"]]


def seconds_until_suggested(url: str, limit: float = 5.0) -> float:
    started = time.monotonic()
    while NEW not in suggested(url, "zanzibar"):
        assert time.monotonic() - started < limit, f"{NEW!r} not suggested by {url} within {limit} s"
        time.sleep(0.1)
    return time.monotonic() - started


def test_two_sessions_make_a_live_label_on_every_worker_a_blocklisted_query_never(
    live_server, blocklisted_model: Path
) -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379 (make test starts one)")
    prefix = f"test-{uuid.uuid4().hex}:"
    env = {"AUTOCOMPLETE_REDIS_PREFIX": prefix}
    try:
        two = live_server(blocklisted_model, redis_url=REDIS_URL, workers=2, env=env)
        one = live_server(blocklisted_model, redis_url=REDIS_URL, workers=1, env=env)
        submit(two.url, NEW)
        submit(two.url, BLOCKED)
        assert NEW not in suggested(one.url, "zanzibar")  # one session is not enough
        submit(one.url, NEW)  # a second session, on another server
        submit(one.url, BLOCKED)
        for server in (two, one):
            seconds_until_suggested(server.url)
        # both workers of the two-worker server (each fresh connection goes to either); each reads
        # the live counts every second, so the second may see the label up to a refresh later
        started = time.monotonic()
        while not all(NEW in suggested(two.url, "zanzibar q") for _ in range(12)):
            assert time.monotonic() - started < 5.0, f"a worker of {two.url} does not suggest {NEW!r}"
            time.sleep(0.2)
        assert all(BLOCKED not in suggested(s.url, "zanzibar") for s in (two, one) for _ in range(6))
        one.stop()
        restarted = live_server(blocklisted_model, redis_url=REDIS_URL, workers=1, env=env)
        assert NEW in suggested(restarted.url, "zanzibar")  # the counts were in Redis: at once
        log = two.output() + restarted.output()
        assert "zanzibar" not in log and "quokka" not in log
    finally:
        drop_redis_keys(REDIS_URL, prefix)
