"""The streaming evaluation: the test split replayed in time order, frozen vs live."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autocomplete.evaluation.protocols import BUCKETS
from autocomplete.evaluation.streaming import evaluate_stream, stream_events
from bench.streaming import main as bench_main
from indexer.config import load_train_config
from indexer.model import load_model
from indexer.querylog import Session, read_query_log

ROOT = Path(__file__).resolve().parent.parent


def test_events_come_in_time_order_across_sessions():
    sessions = [Session("a", 0.0, ("x", "y"), (0.0, 50.0)), Session("b", 10.0, ("z",), (10.0,))]
    assert stream_events(sessions) == [(0.0, 0, 0), (10.0, 1, 0), (50.0, 0, 1)]


def test_queries_repeated_in_the_test_split_become_live_labels_and_live_is_scored_beside_frozen(
    demo_model: Path, synthetic_log: Path
):
    config = load_train_config(ROOT / "configs" / "demo.toml", ["live.min_users=1"])
    sessions = read_query_log(synthetic_log, config.log).sessions["test"]
    report = evaluate_stream(load_model(demo_model), sessions, config, resamples=50, keystrokes=True)
    for name in ("frozen", "live"):
        assert report[name]["examples"] == report["pairs"] > 0
        assert set(report[name]["by_prefix_length"]) == set(BUCKETS)
        assert 0 <= report["keystrokes"][name]["saved_at_5"] <= 1
    gain = report["live_gain"]
    assert gain["gain"] == pytest.approx(report["live"]["mrr"] - report["frozen"]["mrr"])
    labels = report["live_labels"]
    assert labels["admitted"] > 0 and labels["min_sessions"] == 1
    assert 0 <= labels["unseen_queries_live_before_asked_again"] <= labels["unseen_queries"]


def test_the_bench_driver_writes_aggregates_and_never_a_query(demo_model, synthetic_log, tmp_path):
    assert bench_main(["--model", str(demo_model), "--log", str(synthetic_log), "--splits", "test",
                       "--set", "eval.latency_calls=40", "--out", str(tmp_path)]) == 0  # fmt: skip
    report = json.loads((tmp_path / "streaming.json").read_text())
    assert set(report["splits"]) == {"test"} and "live" in report["splits"]["test"]
    assert report["splits"]["test"]["latency_ms"]["live"]["calls"] == 40
    written = (tmp_path / "streaming.json").read_text() + (tmp_path / "streaming.md").read_text()
    config = load_train_config(ROOT / "configs" / "demo.toml")
    queries = {q for s in read_query_log(synthetic_log, config.log).sessions["test"] for q in s.queries}
    assert not [q for q in queries if len(q) > 6 and q in written]
