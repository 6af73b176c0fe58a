import json

from autocomplete.cli import main


def test_train_then_eval_an_mpc_model_writes_the_report_keys(synthetic_log, tmp_path, capsys):
    out = tmp_path / "model"
    assert (
        main(
            [
                "train",
                "--config",
                "configs/demo.toml",
                "--log",
                str(synthetic_log),
                "--out",
                str(out),
                "--model",
                "mpc",
                "--set",
                "privacy.min_users=1",
                "--quiet",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["labels"] > 0 and summary["removed_min_users"] == 0
    assert set(summary["seconds"]) >= {"read_log", "labels", "total"}

    report_path = tmp_path / "report.json"
    assert (
        main(
            [
                "eval",
                "--model",
                str(out),
                "--log",
                str(synthetic_log),
                "--json",
                str(report_path),
                "--quiet",
                "--set",
                "eval.latency_calls=50",
                "--config",
                "configs/demo.toml",
            ]
        )
        == 0
    )
    report = json.loads(report_path.read_text())
    for key in ("examples", "mrr", "bleu", "success_at_1", "success_at_10", "by_prefix_length", "latency_ms"):
        assert key in report
    assert set(report["by_prefix_length"]) == {"1", "2", "3", "4-6", "7+"}
    assert report["latency_ms"]["p50"] > 0 and report["mrr"] > 0.1


def test_a_bad_override_is_a_clear_error_not_a_trace(synthetic_log, tmp_path, capsys):
    code = main(
        [
            "train",
            "--config",
            "configs/demo.toml",
            "--log",
            str(synthetic_log),
            "--out",
            str(tmp_path / "m"),
            "--set",
            "tree.depth=3",
            "--quiet",
        ]
    )
    assert code == 2
    assert "unknown key" in capsys.readouterr().err


def test_min_users_removes_rare_queries_and_says_how_many(synthetic_log, tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "--config",
                "configs/demo.toml",
                "--log",
                str(synthetic_log),
                "--out",
                str(tmp_path / "m"),
                "--model",
                "mpc",
                "--set",
                "privacy.min_users=3",
                "--quiet",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["removed_min_users"] > 0
    assert summary["labels"] == summary["label_candidates"] - summary["removed_min_users"]
