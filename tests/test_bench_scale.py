"""bench/scale.py on a small synthetic log: the runs it reports, and the served-model figures."""

from __future__ import annotations

import json

import pytest

from bench.scale import main as scale_main


@pytest.mark.slow
def test_scale_bench_trains_scores_and_serves(synthetic_log, tmp_path):
    config = tmp_path / "small.toml"
    config.write_text('[log]\nnormalization = "unicode"\n[eval]\nlatency_warmup = 20\nlatency_calls = 200\n')
    out, scratch = tmp_path / "bench", tmp_path / "scratch"
    argv = [
        "--log",
        str(synthetic_log),
        "--config",
        str(config),
        "--out",
        str(out),
        "--scratch",
        str(scratch),
    ]
    assert scale_main([*argv, "--runs", "aol1m"]) == 0
    run = json.loads((out / "scale.json").read_text())["runs"]["aol1m"]
    assert run["labels"] > 100 and run["train_seconds"] > 0 and run["peak_rss_mb"] > 50
    assert run["model_bytes"] > 0 and 0 < run["mrr"] <= 1 and run["latency_ms"]["calls"] == 200
    assert {"read_log", "features", "tree", "scorers", "total"} <= set(run["stage_seconds"])

    (scratch / "syn1m").symlink_to(scratch / "aol1m")  # serve the model just trained
    assert scale_main([*argv, "--runs", "serve"]) == 0
    report = json.loads((out / "scale.json").read_text())["runs"]
    assert set(report) == {"aol1m", "serve"}  # runs are merged into the file, not replaced
    served = report["serve"]
    assert served["ready_seconds"] > 0 and len(served["workers"]) == 2
    assert all(w["rss_mb"] > 0 and 0 < w["pss_mb"] <= w["rss_mb"] for w in served["workers"])
    table = (out / "scale.md").read_text()
    assert "| aol1m |" in table and "| syn1m |" in table


def test_unknown_runs_are_refused(tmp_path):
    with pytest.raises(SystemExit):
        scale_main(["--log", "x", "--out", str(tmp_path), "--runs", "aol1m,bogus"])
