"""A product's own log, end to end: a CSV export with ISO times trains, evaluates and serves with
nothing but the four [log] keys docs/configuration.md shows, for both model kinds."""

from __future__ import annotations

import csv
import datetime as dt
import json
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from test_configuration_doc import documented_tables

from autocomplete.cli import main
from autocomplete.completer import load_completer
from indexer.synthetic import generate_sessions

pytestmark = pytest.mark.slow
CONFIG = """\
[log]
format = "csv"
user_column = "user_id"
query_column = "query"
time_column = "timestamp"
"""


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The synthetic sessions as a product would export them: 2024 dates, ISO times with ``Z``,
    rows in time order (users interleaved), quoted by the csv module where needed."""
    folder = tmp_path_factory.mktemp("own")
    rows = generate_sessions(n_users=150, seed=11)
    shift = dt.datetime(2024, 5, 1, tzinfo=dt.UTC) - min(when for _, _, when in rows)
    path = folder / "export.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["user_id", "query", "timestamp"])
        for user, query, when in sorted(rows, key=lambda r: r[2]):
            writer.writerow([f"user-{user}", query, (when + shift).strftime("%Y-%m-%dT%H:%M:%SZ")])
    config = folder / "mine.toml"
    config.write_text(CONFIG, encoding="utf-8")
    return path, config


def test_the_config_uses_only_documented_log_keys(export):
    import tomllib

    assert set(tomllib.loads(CONFIG)) == {"log"}
    assert set(tomllib.loads(CONFIG)["log"]) <= set(documented_tables()["log"])


@pytest.mark.parametrize("kind", ["mpc", "xmr"])
def test_a_csv_export_with_iso_times_trains_evaluates_and_serves(export, tmp_path, capsys, live_server, kind):
    log, config = export
    model = tmp_path / kind
    argv = [
        "train",
        "--config",
        str(config),
        "--log",
        str(log),
        "--out",
        str(model),
        "--model",
        kind,
        "--quiet",
    ]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["malformed_total"] == 0 and summary["labels"] > 50
    assert summary["split_train"].startswith("2024-05-01")  # the log's own span, not 2006
    assert all(summary[f"pairs_{split}"] > 0 for split in ("train", "valid", "test"))

    argv = ["eval", "--model", str(model), "--log", str(log), "--config", str(config), "--quiet"]
    assert main([*argv, "--set", "eval.latency_warmup=10", "--set", "eval.latency_calls=50"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kind"] == kind and report["examples"] > 100 and report["mrr"] > 0.2

    server = live_server(model)
    with urllib.request.urlopen(
        f"{server.url}/v1/complete?{urllib.parse.urlencode({'q': 'ro'})}"
    ) as response:
        served = [item["text"] for item in json.loads(response.read())["items"]]
    assert served and all(text.startswith("ro") for text in served)
    assert served == [c.text for c in load_completer(model, warm_up=False).complete("ro", (), len(served))]


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            'train = ["2006-03-01", "2006-05-15"]\nvalid = ["2006-05-16", "2006-05-23"]\n'
            'test = ["2006-05-24", "2006-05-31"]\n',
            "train 2006-03-01..2006-05-15 holds no rows; the log spans 2024-05-01..2024-07-31: set [log] "
            "train/valid/test",
        ),
        ('time_format = "%d/%m/%Y"\n', "were rejected: bad_time"),
    ],
)
def test_train_stops_before_any_model_work_with_the_fix_in_words(export, tmp_path, capsys, extra, message):
    log, config = export
    bad = tmp_path / "bad.toml"
    bad.write_text(CONFIG + extra, encoding="utf-8")
    out = tmp_path / "never"
    assert main(["train", "--config", str(bad), "--log", str(log), "--out", str(out), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("autocomplete train: ") and message in error
    assert not out.exists()
