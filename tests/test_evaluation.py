import random

import pytest
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from autocomplete.evaluation.metrics import score_answers, weighted_bleu
from autocomplete.evaluation.protocols import bucket, make_examples
from indexer.querylog import Pairs

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
