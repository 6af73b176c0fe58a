"""Live labels and live features in the chain: a new query becomes a suggestion without retraining."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from autocomplete.candidates import Feature, Request
from autocomplete.completer import load_completer, xmr_chain
from autocomplete.live import LiveView, view_for
from autocomplete.ranking import LearnedRanker
from indexer.model import load_model
from indexer.params import LiveParams, PrivacyParams
from indexer.privacy import Blocklist
from sessions.livecounts import MemoryLiveCounts

NOW = 1.7e9
NEW = "zanzibar quokka tours"  # no synthetic session has it


def fed(view: LiveView, store: MemoryLiveCounts, *submits: tuple[str, str]) -> LiveView:
    for query, session in submits:
        store.add(query, session, NOW)
    view.apply(store.changes_since(view.seq, NOW), now=NOW)
    return view


def test_a_query_becomes_a_live_label_at_min_sessions_distinct_sessions_never_when_blocklisted():
    blocklist = Blocklist(frozenset({"secret"}), ())
    view, store = LiveView(LiveParams(), 2, blocklist), MemoryLiveCounts()
    fed(view, store, (NEW, "s1"), (NEW, "s1"), ("my secret query", "s1"), ("my secret query", "s2"))
    assert view.labels == []  # one session twice is not two sessions; the blocked one never
    fed(view, store, (NEW, "s2"))
    assert view.labels == [NEW] and view.top_labels("zanz", 5) == [NEW]
    view.set_blocklist(Blocklist(frozenset({"quokka"}), ()))
    assert view.labels == []


def test_live_labels_are_bounded_the_least_popular_go_and_the_most_popular_come_first():
    view, store = LiveView(LiveParams(max_labels=3), 1), MemoryLiveCounts()
    submits = [(f"tour {n}", f"s{i}") for n in range(5) for i in range(n + 1)]  # "tour 4" most popular
    fed(view, store, *submits)
    assert view.labels == ["tour 2", "tour 3", "tour 4"]
    assert view.top_labels("tour", 2) == ["tour 4", "tour 3"]
    assert view.top_labels("tour", 5, skip=lambda t: t == "tour 4") == ["tour 3", "tour 2"]


def test_a_query_submitted_by_two_sessions_is_suggested_by_the_live_model_only(demo_model: Path):
    view = view_for(LiveParams(), PrivacyParams(min_users=2))
    live, frozen = load_completer(demo_model, live=view), load_completer(demo_model)
    store = MemoryLiveCounts()
    fed(view, store, (NEW, "s1"), (NEW, "s2"))
    found = {c.text: c.source for c in live.complete("zanzibar q", [], 10)}
    assert found.get(NEW) == "live"
    assert NEW not in [c.text for c in frozen.complete("zanzibar q", [], 10)]
    assert NEW in [c.text for c in live.complete("zanzibar", ["garden hose"], 10)]


def test_the_ranker_reads_the_live_counts_of_every_candidate(demo_model: Path):
    model = load_model(demo_model)
    label = model.labels.text(0)
    view, store = LiveView(LiveParams(), 2), MemoryLiveCounts()
    fed(view, store, (label, "s1"), (label, "s2"), (label, "s3"))
    ranker = LearnedRanker(model.labels, model.pairs_, None, live=view)
    chain = xmr_chain(model, learned=True, live=view)
    request: Request = chain.request(label[:1], "", 10)
    texts, _, X, _, _ = ranker.features(request, chain.batches(request))
    row = X[texts.index(label)]
    assert np.expm1(row[Feature.LIVE_LONG]) == pytest.approx(3.0)  # three submits just now
    assert row[Feature.LIVE_SESSIONS] == 3 and row[Feature.LIVE_TREND] == pytest.approx(0.0, abs=1e-6)
    others = [i for i, t in enumerate(texts) if t != label]
    assert not X[others][:, Feature.LIVE_LONG].any()


def test_the_popular_baseline_orders_by_training_plus_live_count_and_merges_live_labels(mpc_model: Path):
    view = LiveView(LiveParams(), 1)
    live, frozen = load_completer(mpc_model, live=view), load_completer(mpc_model)
    before = [c.text for c in frozen.complete("", [], 10)]
    last = before[-1]
    store = MemoryLiveCounts()
    fed(view, store, *[(last, f"s{i}") for i in range(10_000)], (NEW, "s1"))
    after = [c.text for c in live.complete("", [], 10)]
    assert after[0] == last  # ten thousand live submits outweigh any training count
    assert [c.source for c in live.complete("zanz", [], 10)] == ["live"]


def test_a_burst_of_new_labels_is_merged_in_one_pass_and_stays_sorted_and_bounded():
    view, store = LiveView(LiveParams(max_labels=50), 1), MemoryLiveCounts()
    for n in range(200):  # 200 in one refresh; each submitted by more sessions than the one before
        for i in range(n // 20 + 1):
            store.add(f"q{n:03d}", f"s{i}", NOW)
    view.apply(store.changes_since(view.seq, NOW), now=NOW)
    assert view.labels == sorted(view.labels) and len(view.labels) == 50
    assert {f"q{n}" for n in range(160, 200)} <= set(view.labels)  # the most popular stayed
    assert view.top_labels("q", 1)[0] >= "q180" and view.admitted == 200


def test_one_worker_without_redis_suggests_a_query_two_sessions_submitted_at_once(mpc_model: Path):
    from starlette.testclient import TestClient

    from autocomplete.config import ServeConfig
    from autocomplete.server import create_app

    app = create_app(mpc_model, ServeConfig(model_snapshot_dir=str(mpc_model.parent / "snapshots")))
    with TestClient(app, base_url="http://localhost") as client:
        for _ in range(2):  # two fresh sessions (no cookie kept between them)
            client.cookies.clear()
            assert client.post("/v1/submit", json={"text": NEW}).json()["stored"] is True
        items = client.get("/v1/complete", params={"q": "zanzibar"}).json()["items"]
    assert NEW in [item["text"] for item in items]
