import json

import pytest

from autocomplete.cli import main


def train(log, out, *extra):
    argv = ["train", "--config", "configs/demo.toml", "--log", str(log), "--out", str(out), "--quiet", *extra]
    return main(argv)


def test_train_then_eval_an_mpc_model_writes_the_report_keys(synthetic_log, tmp_path, capsys):
    out = tmp_path / "model"
    assert train(synthetic_log, out, "--model", "mpc", "--set", "privacy.min_users=1") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["labels"] > 0 and summary["removed_min_users"] == 0
    assert set(summary["seconds"]) >= {"read_log", "labels", "total"}

    report_path = tmp_path / "report.json"
    argv = ["eval", "--model", str(out), "--log", str(synthetic_log), "--json", str(report_path), "--quiet",
            "--set", "eval.latency_calls=50", "--config", "configs/demo.toml"]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(report_path.read_text())
    for key in ("examples", "mrr", "bleu", "success_at_1", "success_at_10", "by_prefix_length", "latency_ms"):
        assert key in report
    assert set(report["by_prefix_length"]) == {"1", "2", "3", "4-6", "7+"}
    assert report["latency_ms"]["p50"] > 0 and report["mrr"] > 0.1
    # the honest figures: strict below the plain MRR, seen above unseen, MPC gains nothing from context
    assert 0 < report["strict_mrr"] <= report["mrr"] and report["strict"]["examples"] < report["examples"]
    assert report["seen"]["mrr"] > report["unseen"]["mrr"] >= 0
    assert report["seen"]["examples"] + report["unseen"]["examples"] == report["examples"]
    gain = report["context_gain"]
    assert gain["gain"] == 0.0 and gain["ci95"] == [0.0, 0.0] and gain["mrr_with"] == report["mrr"]


def test_eval_reads_the_config_saved_in_the_model_folder(synthetic_log, tmp_path, capsys):
    out = tmp_path / "model"
    assert train(synthetic_log, out, "--model", "mpc", "--set", "eval.latency_calls=10") == 0
    capsys.readouterr()
    assert main(["eval", "--model", str(out), "--log", str(synthetic_log), "--quiet", "--limit", "50"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["examples"] == 50 and report["latency_ms"]["calls"] == 10 and report["kind"] == "mpc"


def test_a_bad_override_is_a_clear_error_not_a_trace(synthetic_log, tmp_path, capsys):
    assert train(synthetic_log, tmp_path / "m", "--set", "tree.depth=3") == 2
    assert "unknown key" in capsys.readouterr().err


def test_min_users_removes_rare_queries_and_says_how_many(synthetic_log, tmp_path, capsys):
    assert train(synthetic_log, tmp_path / "m", "--model", "mpc", "--set", "privacy.min_users=3") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["removed_min_users"] > 0
    assert summary["labels"] == summary["label_candidates"] - summary["removed_min_users"]


def test_demo_builds_the_model_once(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--users", "40", "--quiet"]) == 0
    assert "built" in capsys.readouterr().out
    assert main(["demo", "--out", str(out), "--quiet"]) == 0
    assert "already" in capsys.readouterr().out


def test_demo_rebuilds_a_model_it_cannot_load(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--users", "40", "--quiet"]) == 0
    (out / "weights_data.npy").write_bytes(b"truncated")
    capsys.readouterr()
    assert main(["demo", "--out", str(out), "--users", "40", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "weights_data.npy" in captured.err and "built" in captured.out


def test_a_missing_log_is_a_one_line_error_with_exit_code_2(tmp_path, capsys):
    assert train(tmp_path / "no-such-log.tsv", tmp_path / "m") == 2
    err = capsys.readouterr().err
    assert "no-such-log.tsv does not exist" in err and "Traceback" not in err


def test_an_internal_bug_keeps_its_traceback(synthetic_log, tmp_path, monkeypatch):
    import indexer.pipeline

    def broken(*args, **kwargs):
        raise RuntimeError("a bug, not a user error")

    monkeypatch.setattr(indexer.pipeline, "build_model", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        train(synthetic_log, tmp_path / "m")


def test_eval_keystroke_protocol_reports_accepted_and_saved_at_5_per_query(synthetic_log, tmp_path, capsys):
    out = tmp_path / "model"
    assert train(synthetic_log, out, "--model", "mpc") == 0
    capsys.readouterr()
    argv = ["eval", "--model", str(out), "--log", str(synthetic_log), "--quiet", "--protocol", "keystroke",
            "--limit", "40"]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    keys = report["keystrokes"]
    assert report["protocol"] == "keystroke" and keys["queries"] == 40
    assert 0 < keys["saved_at_5"] < keys["accepted_at_5"] <= 1
    assert keys["seen"]["queries"] + keys["unseen"]["queries"] == 40


def test_new_users_are_held_out_of_training_and_only_they_are_scored(synthetic_log, tmp_path, capsys):
    everyone, held_out = tmp_path / "everyone", tmp_path / "held-out"
    assert train(synthetic_log, everyone, "--model", "mpc") == 0
    assert train(synthetic_log, held_out, "--model", "mpc", "--set", "log.holdout_new_users=true") == 0
    capsys.readouterr()
    argv = ["eval", "--log", str(synthetic_log), "--quiet", "--users", "new", "--no-context-gain"]
    assert main([*argv, "--model", str(everyone)]) == 2
    assert "log.holdout_new_users=true" in capsys.readouterr().err
    assert main([*argv, "--model", str(held_out)]) == 0
    new = json.loads(capsys.readouterr().out)
    assert main(["eval", "--log", str(synthetic_log), "--quiet", "--model", str(held_out)]) == 0
    all_users = json.loads(capsys.readouterr().out)
    assert new["users"] == "new" and "context_gain" not in new
    assert 0 < new["examples"] < all_users["examples"] / 2
    held = json.loads((held_out / "params.json").read_text())["summary"]
    full = json.loads((everyone / "params.json").read_text())["summary"]
    assert held["pairs_train"] < full["pairs_train"]


def test_eval_with_typos_writes_a_markdown_report_and_its_plot(mpc_model, synthetic_log, tmp_path, capsys):
    report_path = tmp_path / "report.md"
    argv = ["eval", "--model", str(mpc_model), "--log", str(synthetic_log), "--quiet", "--typos", "A",
            "--markdown", str(report_path), "--no-context-gain", "--set", "eval.latency_calls=20",
            "--config", "configs/demo.toml"]  # fmt: skip
    assert main(argv) == 0
    typoed = json.loads(capsys.readouterr().out)
    assert typoed["typos"] == "A" and typoed["examples"] > 0
    text = report_path.read_text()
    assert "one typo per prefix (variant A)" in text and "| 7+ |" in text
    assert report_path.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.redis
def test_exported_submits_retrain_the_model_with_the_original_log(synthetic_log, tmp_path, capsys):
    import asyncio
    import datetime as dt
    import uuid

    import redis

    from autocomplete.evaluation.server_process import drop_redis_keys
    from indexer.labels import LabelSet
    from sessions.livecounts import RedisLiveCounts, session_key

    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379 (make test starts one)")
    prefix = f"test-{uuid.uuid4().hex}:"
    day = dt.datetime(2006, 4, 2, 10, tzinfo=dt.UTC).timestamp()  # inside the demo's training dates

    async def serve_submits() -> None:  # what the service stores: two sessions, each a pair of queries
        store = RedisLiveCounts(url, prefix=prefix)
        for n, session in enumerate(("one", "two")):
            for i, query in enumerate(("garden hose", "zanzibar quokka tours")):
                await store.record(query, session_key(session), day + 3600 * n + 60 * i)
        await store.close()

    try:
        asyncio.run(serve_submits())
        stream = tmp_path / "stream.tsv.gz"
        assert main(["export-stream", "--redis-url", url, "--prefix", prefix, "--out", str(stream)]) == 0
        assert "4 submits written" in capsys.readouterr().out
        out = tmp_path / "model"
        assert train(synthetic_log, out, "--model", "mpc", "--log", str(stream)) == 0
    finally:
        drop_redis_keys(url, prefix)
    summary = json.loads(capsys.readouterr().out)
    assert str(stream) in summary["log"]
    assert LabelSet.load(out).id_of("zanzibar quokka tours") >= 0  # two sessions of the stream: min_users 2


def test_export_stream_without_redis_says_what_to_pass(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("AUTOCOMPLETE_REDIS_URL", raising=False)
    assert main(["export-stream", "--out", str(tmp_path / "s.tsv")]) == 2
    assert "--redis-url" in capsys.readouterr().err
