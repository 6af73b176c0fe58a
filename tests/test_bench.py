import json

from bench.cooccurrence import CooccurrenceCompleter
from bench.quality import main as bench_main
from bench.word_completion import WordCompletionCompleter
from indexer.labels import LabelSet
from indexer.pipeline import TrainingData
from indexer.querylog import LogStats, Pairs, QueryLog, Session


def test_bench_trains_and_scores_each_system_side_by_side(synthetic_log, tmp_path):
    config = tmp_path / "bench.toml"
    config.write_text(
        '[log]\nnormalization = "unicode"\n[privacy]\nmin_users = 2\n'
        "[eval]\nlatency_warmup = 20\nlatency_calls = 100\nbootstrap_resamples = 200\n"
    )
    out = tmp_path / "bench"
    argv = ["--log", str(synthetic_log), "--config", str(config), "--out", str(out),
            "--systems", "mpc,cooccurrence,mpc+words,xmr", "--keystroke-pairs", "150",
            "--new-users-systems", "xmr"]  # fmt: skip
    assert bench_main(argv) == 0
    report = json.loads((out / "results.json").read_text())
    systems = {r["system"]: r for r in report["systems"]}
    assert list(systems) == ["mpc", "cooccurrence", "mpc+words", "xmr"]
    for r in systems.values():
        assert r["train_seconds"] > 0 and r["latency_ms"]["calls"] == 100
        assert r["strict_mrr"] <= r["mrr"] and r["seen"]["mrr"] > r["unseen"]["mrr"]
        assert r["keystrokes"]["queries"] == 150 and 0 < r["keystrokes"]["saved_at_5"] < 1
    assert systems["mpc"]["model_bytes"] > 0 and systems["cooccurrence"]["model_bytes"] is None
    assert systems["xmr"]["mrr"] > systems["mpc"]["mrr"]
    # the synthetic users' next query depends on the previous one: memorized pairs beat popularity
    assert systems["cooccurrence"]["mrr"] > systems["mpc"]["mrr"]
    assert systems["mpc+words"]["unseen"]["mrr"] >= systems["mpc"]["unseen"]["mrr"]
    gain = systems["xmr"]["context_gain"]
    assert gain["ci95"][0] <= gain["gain"] <= gain["ci95"][1] and gain["gain"] > 0
    assert "context_gain" not in systems["mpc"]
    [new] = report["new_users"]
    assert (
        new["system"] == "xmr" and 0 < new["examples"] < report["examples"] and "ci95" in new["context_gain"]
    )
    table = (out / "results.md").read_text()
    for row in (
        "| mpc |",
        "| cooccurrence |",
        "| mpc+words |",
        "| xmr |",
        "accepted@5",
        "New-users protocol",
    ):
        assert row in table
    assert table.index("strict MRR") < table.index("| MRR |")  # strict MRR is quoted first
    assert (out / "mrr_by_prefix_length.png").read_bytes()[:4] == b"\x89PNG"


def _data(pairs: list[tuple[str, str]]) -> TrainingData:
    """Each (previous, next) pair one training session of its own."""
    nxt = [n for _, n in pairs]
    counts = {q: nxt.count(q) for q in nxt}
    labels = LabelSet(list(counts), list(counts.values()))
    sessions = {"train": [Session("u", 0.0, pair) for pair in pairs], "valid": [], "test": []}
    return TrainingData(
        QueryLog(sessions, LogStats()), labels, Pairs([p for p, _ in pairs], nxt, ["u"] * len(pairs)), {}
    )


TRAINING = [
    ("garden", "rose bush"),
    ("garden", "rose bush"),
    ("garden", "roses"),
    ("music", "rock band"),
    ("x", "rock band"),
    ("x", "rock band"),
    ("x", "roses"),
    ("y", "roses"),
    ("y", "roses"),
    ("y", "flights to paris"),
]


def texts(completer, prefix, previous=()):
    return [c.text for c in completer.complete(prefix, list(previous), 10)]


def test_cooccurrence_answers_this_previous_querys_followers_then_mpc_then_tails():
    completer = CooccurrenceCompleter(_data(TRAINING), "unicode")
    # after "garden": its followers by count (rose bush 2, roses 1), then MPC (rock band 3)
    assert texts(completer, "ro", ["garden"]) == ["rose bush", "roses", "rock band"]
    # an unknown previous query: MPC alone (roses 4, rock band 3, rose bush 2)
    assert texts(completer, "ro", ["never seen"]) == ["roses", "rock band", "rose bush"]
    assert texts(completer, "ro") == texts(completer, "ro", ["never seen"])
    # nothing starts with the prefix: the head kept, the longest matching tail completed
    assert texts(completer, "cheap flights to p", ["garden"]) == ["cheap flights to paris"]
    assert texts(completer, "zzz") == []


def test_word_completion_completes_the_last_word_from_the_vocabulary_before_the_tail_rule():
    completer = WordCompletionCompleter(_data(TRAINING), "unicode")
    assert texts(completer, "ro") == ["roses", "rock band", "rose bush"]  # labels start with it: MPC
    # no label starts with it: "ro" -> roses (4), rock (3), rose (2) by frequency, typed words kept,
    # then the tail rule's completions of "ro" not already there
    assert texts(completer, "red ro") == [
        "red roses",
        "red rock",
        "red rose",
        "red rock band",
        "red rose bush",
    ]
    # the last word is finished (a space): no word to complete, the tail rule answers
    assert texts(completer, "cheap flights ") == ["cheap flights to paris"]
    assert texts(completer, "cheap fl") == ["cheap flights", "cheap flights to paris"]
