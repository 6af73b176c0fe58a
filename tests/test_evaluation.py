import gc
import random

import numpy as np
import pytest
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from autocomplete.completer import Completion
from autocomplete.evaluation.metrics import (
    bootstrap_ci,
    evaluate,
    evaluate_keystrokes,
    interleaved_latency,
    measure_latency,
    score_answers,
    score_keystrokes,
    weighted_bleu,
)
from autocomplete.evaluation.protocols import Examples, bucket, make_examples
from autocomplete.evaluation.replay_plan import ReplayPlan, ReplayTally, build_report, markdown
from indexer.config import load_train_config
from indexer.querylog import Pairs, is_new_user, read_query_log, without_new_users

PAIRS = Pairs(["a", "b", "c"], ["rose bush", "tulip", "rock band t shirts"], ["u", "u", "v"])


def test_the_sampled_protocol_draws_one_length_per_pair_in_file_order_with_seed_0():
    examples = make_examples(PAIRS, "sampled", seed=0)
    rng = random.Random(0)
    expected = [q[: rng.randint(1, len(q))] for q in PAIRS.next]
    assert examples.prefix == expected
    assert examples.previous == PAIRS.previous and examples.target == PAIRS.next


def test_the_keystroke_protocol_takes_every_prefix_length():
    examples = make_examples(Pairs(["x"], ["abc"], ["u"]), "keystroke")
    assert examples.prefix == ["a", "ab", "abc"] and examples.target == ["abc"] * 3


def test_mrr_and_success_by_hand():
    examples = make_examples(Pairs(["", "", ""], ["rose", "rock", "tulip"], ["u"] * 3), "keystroke")
    answers = []
    for target in examples.target:
        if target == "rose":
            answers.append(["roses", "rose"])  # rank 2: 1/2
        elif target == "rock":
            answers.append(["rock"])  # rank 1
        else:
            answers.append([])  # empty
    report = score_answers(examples, answers)
    n = len(examples)  # 4 + 4 + 5 prefixes
    assert n == 13
    assert report["mrr"] == pytest.approx((4 * 0.5 + 4 * 1.0) / 13)
    assert report["success_at_1"] == pytest.approx(4 / 13)
    assert report["success_at_10"] == pytest.approx(8 / 13)
    assert report["empty_rate"] == pytest.approx(5 / 13)
    by_length = report["by_prefix_length"]
    assert by_length["4-6"]["examples"] == 4  # "rose", "rock", "tuli", "tulip"
    assert by_length["4-6"]["mrr"] == pytest.approx((0.5 + 1.0) / 4)
    assert by_length["1"]["examples"] == 3


def test_weighted_bleu_weights_rank_i_by_one_over_i():
    smooth = SmoothingFunction().method1
    ref = "rose of jericho plant"
    cands = ["rose of jericho plant", "rose bush"]
    b1 = sentence_bleu([ref.split()], cands[0].split(), smoothing_function=smooth)
    b2 = sentence_bleu([ref.split()], cands[1].split(), smoothing_function=smooth)
    assert b1 == pytest.approx(1.0)
    assert weighted_bleu(cands, ref) == pytest.approx((b1 + b2 / 2) / 1.5)
    assert weighted_bleu([], ref) == 0.0


@pytest.mark.parametrize(
    ("length", "name"), [(1, "1"), (2, "2"), (3, "3"), (4, "4-6"), (6, "4-6"), (7, "7+"), (30, "7+")]
)
def test_prefix_length_buckets(length, name):
    assert bucket(length) == name


def test_unknown_protocol_is_refused():
    with pytest.raises(ValueError, match="keystroke"):
        make_examples(PAIRS, "random")


# ---------------------------------------------------------------- honest metrics


def _examples(rows):
    """(previous, prefix, target) rows -> Examples, each its own pair."""
    return Examples([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])


def test_seen_and_unseen_examples_are_scored_apart_by_hand():
    examples = _examples(
        [("", "ro", "rose"), ("", "tu", "tulip"), ("", "da", "daisy chain"), ("", "ir", "iris")]
    )
    answers = [["rose"], ["tulips", "tulip"], ["daisy"], []]
    report = score_answers(examples, answers, seen={"rose", "tulip", "tulips"})
    assert report["mrr"] == pytest.approx((1 + 0.5 + 0 + 0) / 4)
    assert report["seen_rate"] == pytest.approx(0.5)
    assert report["seen"]["examples"] == 2 and report["seen"]["mrr"] == pytest.approx(0.75)
    assert report["seen"]["success_at_10"] == pytest.approx(1.0)
    assert report["unseen"]["examples"] == 2 and report["unseen"]["mrr"] == 0.0
    assert report["unseen"]["empty_rate"] == pytest.approx(0.5)
    assert report["unseen"]["bleu"] == pytest.approx(weighted_bleu(["daisy"], "daisy chain") / 2)
    same = score_answers(examples, answers, seen=lambda q: q in {"rose", "tulip"})
    assert same["seen"] == report["seen"]  # a predicate and a set say the same


def test_strict_mrr_leaves_out_prefixes_that_are_the_whole_query():
    examples = _examples([("", "rose", "rose"), ("", "ros", "rose"), ("", "tul", "tulip")])
    answers = [["rose"], ["roses", "rose"], ["tulip"]]
    report = score_answers(examples, answers)
    assert report["mrr"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert report["strict"]["examples"] == 2
    assert report["strict_mrr"] == pytest.approx((0.5 + 1) / 2) == report["strict"]["mrr"]
    assert report["strict"]["bleu"] == pytest.approx(
        (weighted_bleu(["roses", "rose"], "rose") + weighted_bleu(["tulip"], "tulip")) / 2
    )
    assert "seen" not in report  # no label set given: no seen/unseen figures


def test_accepted_and_saved_at_5_from_keystroke_answers_by_hand():
    pairs = Pairs(["", "", ""], ["rose", "tulip", "ab"], ["u"] * 3)
    examples = make_examples(pairs, "keystroke")
    shown = {
        "r": ["a", "b", "c", "d", "e", "rose"],  # sixth: not shown at 5
        "ro": ["x", "rose"],  # accepted after 2 of 4 characters: saved 2/4
        "ros": ["rose"],  # later keystrokes do not change it
        "tulip": ["tulip"],  # fully typed: does not count
        "a": [],
        "ab": ["ab"],
    }
    answers = [shown.get(p, []) for p in examples.prefix]
    report = score_keystrokes(examples, answers, seen={"rose", "ab"})
    assert report["queries"] == 3
    assert report["accepted_at_5"] == pytest.approx(1 / 3)
    assert report["saved_at_5"] == pytest.approx((0.5 + 0 + 0) / 3)
    assert report["seen"]["queries"] == 2 and report["seen"]["saved_at_5"] == pytest.approx(0.25)
    assert report["unseen"]["accepted_at_5"] == 0.0


class _Table:
    """A completer that answers from a table of (context, prefix) -> texts, and counts its calls."""

    kind = "table"

    def __init__(self, table):
        self.table = table
        self.calls = 0

    def complete(self, prefix, previous=(), k=10):
        self.calls += 1
        context = previous[-1] if previous else ""
        texts = self.table.get((context, prefix), self.table.get(("*", prefix), []))
        return [Completion(t, 1.0) for t in texts[:k]]

    def prepare(self, previous):
        return None


def test_the_keystroke_pass_stops_typing_a_query_once_it_is_accepted():
    completer = _Table({("garden", "r"): ["rose"], ("*", "tu"): ["a", "b", "c", "d", "e", "tulip"]})
    pairs = Pairs(["garden", "garden", ""], ["rose", "tulip", "rose"], ["u"] * 3)
    report = evaluate_keystrokes(completer, pairs, seen={"rose"})
    # rose after garden: accepted at 1 of 4 (saved 3/4); tulip never shown within 5; rose without
    # context is never proposed (this table knows it only after "garden")
    assert report["accepted_at_5"] == pytest.approx(1 / 3)
    assert report["saved_at_5"] == pytest.approx(0.75 / 3)
    assert report["seen"]["queries"] == 2 and report["seen"]["saved_at_5"] == pytest.approx(0.375)
    assert completer.calls == report["keystrokes_scored"] == 1 + 4 + 3


def test_latency_is_timed_with_the_heap_frozen_as_in_a_server_worker_and_the_collector_restored():
    frozen = []

    class Watching(_Table):
        def complete(self, prefix, previous=(), k=10):
            frozen.append(gc.get_freeze_count() > 0)
            return super().complete(prefix, previous, k)

    completer = Watching({("*", "r"): ["rose"]})
    examples = make_examples(Pairs(["garden"] * 3, ["rose"] * 3, ["u"] * 3), "sampled", 0)
    gc.unfreeze()  # a process whose heap nobody froze (a server test in this worker may have)
    report = measure_latency(completer.complete, examples, 5, warmup=2, calls=4, prepare=completer.prepare)
    assert report["calls"] == 4 and report["p99"] > 0
    assert frozen == [False, False, True, True, True, True]  # the warm-up is not timed, not frozen
    assert gc.get_freeze_count() == 0


def test_side_by_side_latency_times_each_set_in_turn_in_blocks_so_all_see_the_same_machine():
    asked = []

    class Recording(_Table):
        def complete(self, prefix, previous=(), k=10):
            asked.append(prefix)
            return super().complete(prefix, previous, k)

    completer = Recording({})
    sets = {
        "with": make_examples(Pairs(["garden"] * 3, ["apple"] * 3, ["u"] * 3), "sampled", 0),
        "without": make_examples(Pairs(["garden"] * 3, ["beans"] * 3, ["u"] * 3), "sampled", 0),
        "empty": make_examples(Pairs([], [], []), "sampled", 0),
    }
    report = interleaved_latency(completer.complete, sets, 5, warmup=1, calls=5, block=2)
    firsts = "".join(prefix[0] for prefix in asked)
    assert firsts == "ab" + "aabb" + "aabb" + "ab"  # the warm-ups, then blocks of two in turn
    assert report["with"]["calls"] == report["without"]["calls"] == 5 and report["empty"]["calls"] == 0


def test_the_keystroke_pass_agrees_with_scoring_every_keystroke():
    completer = _Table({("a", "ro"): ["rose"], ("*", "tul"): ["tulip"], ("*", "t"): ["tulip", "t"]})
    pairs = Pairs(["a", "b", "c"], ["rose", "tulip", "tea"], ["u"] * 3)
    examples = make_examples(pairs, "keystroke")
    answers = [
        [c.text for c in completer.complete(p, [v], 5)] for v, p in zip(examples.previous, examples.prefix)
    ]
    full = score_keystrokes(examples, answers)
    fast = evaluate_keystrokes(completer, pairs)
    for key in ("queries", "accepted_at_5", "saved_at_5"):
        assert fast[key] == pytest.approx(full[key])


def test_the_bootstrap_interval_holds_the_mean_and_repeats_under_its_seed():
    rng = np.random.default_rng(1)
    diff = rng.normal(0.02, 0.3, size=2000)
    lo, hi = bootstrap_ci(diff, resamples=500, seed=3)
    assert lo < diff.mean() < hi
    assert (lo, hi) == bootstrap_ci(diff, resamples=500, seed=3)
    assert (lo, hi) != bootstrap_ci(diff, resamples=500, seed=4)
    # about +-1.96 standard errors
    assert hi - lo == pytest.approx(2 * 1.96 * diff.std() / np.sqrt(diff.size), rel=0.15)


def test_context_gain_is_with_minus_without_on_the_same_examples():
    examples = _examples([("garden", "r", "rose"), ("", "t", "tulip"), ("music", "r", "rock")])
    completer = _Table(
        {("garden", "r"): ["rose", "rock"], ("*", "r"): ["rock", "rose"], ("*", "t"): ["tulip"]}
    )
    report = evaluate(completer, examples, latency_calls=0, with_context_gain=True, resamples=200, seed=0)
    gain = report["context_gain"]
    # with context: 1, 1, 1 (music falls back to *); without: 1/2, 1, 1
    assert gain["mrr_with"] == pytest.approx(1.0) and gain["mrr_without"] == pytest.approx(2.5 / 3)
    assert gain["gain"] == pytest.approx(0.5 / 3)
    lo, hi = gain["ci95"]
    assert 0.0 <= lo <= gain["gain"] <= hi
    assert gain["by_prefix_length"]["1"]["gain"] == pytest.approx(0.5 / 3)


def test_new_users_are_a_stable_disjoint_share_of_the_users():
    users = [f"user{i}" for i in range(5000)]
    new = {u for u in users if is_new_user(u, 0.2, "salt")}
    assert 0.17 < len(new) / len(users) < 0.23
    assert new == {u for u in users if is_new_user(u, 0.2, "salt")}  # stable
    assert new != {u for u in users if is_new_user(u, 0.2, "other salt")}
    assert {u for u in users if is_new_user(u, 0.1, "salt")} <= new  # a smaller share is a subset
    assert not any(is_new_user(u, 0.0, "salt") for u in users)


def test_a_log_without_the_new_users_and_one_with_only_them_split_the_sessions(synthetic_log):
    query_log = read_query_log(synthetic_log, load_train_config("configs/demo.toml").log)
    new = query_log.only_users(lambda u: is_new_user(u, 0.3))
    old = without_new_users(query_log, 0.3)
    for split in ("train", "test"):
        new_users = {s.user for s in new.sessions[split]}
        old_users = {s.user for s in old.sessions[split]}
        assert new_users and old_users and not new_users & old_users
        assert len(new.sessions[split]) + len(old.sessions[split]) == len(query_log.sessions[split])


def test_a_keystroke_replay_report_gives_accepted_and_saved_at_5_and_the_strict_figures():
    examples = make_examples(Pairs(["", ""], ["rose", "iris"], ["u", "v"]), "keystroke")
    plan = ReplayPlan([], examples, "keystroke", "test")
    tally = ReplayTally()
    for j, prefix in enumerate(examples.prefix):
        if j != 1:  # "ro" was superseded: never answered
            tally.answers[j] = ["rose"] if prefix.startswith("r") else []
    report = build_report(plan, tally, 1.0, url="ws://x", concurrency=1, speed="max", k=10, seen={"rose"})
    assert report["keystrokes"]["queries"] == 2 and report["keystrokes"]["saved_at_5"] == pytest.approx(
        0.75 / 2
    )
    assert report["quality"]["strict"]["examples"] == 5  # 7 answered, 2 of them fully typed
    assert report["quality"]["seen"]["mrr"] == pytest.approx(1.0)
    text = markdown(report)
    assert "accepted@5 0.5000" in text and "Strict MRR" in text and "| unseen |" in text
