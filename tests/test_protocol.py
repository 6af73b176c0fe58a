"""Client frames: what is accepted, and the error code and seq of everything that is not."""

from __future__ import annotations

import json

import pytest

from autocomplete.completer import Completion
from autocomplete.protocol import (
    FrameTooBig,
    InputMessage,
    Limits,
    ProtocolError,
    SubmitMessage,
    completions,
    encode,
    error,
    parse_client_frame,
)

LIMITS = Limits(max_frame_bytes=200, max_prefix_chars=10, max_query_chars=20, max_k=5)


def test_input_and_submit_frames_parse() -> None:
    assert parse_client_frame('{"type": "input", "seq": 3, "text": "ro"}', LIMITS) == InputMessage(3, "ro")
    assert parse_client_frame('{"type": "input", "seq": 0, "text": "", "k": 5}', LIMITS) == InputMessage(
        0, "", 5
    )
    assert parse_client_frame('{"type": "submit", "text": " house plants "}', LIMITS) == SubmitMessage(
        "house plants"
    )
    assert (
        parse_client_frame(json.dumps({"type": "input", "seq": 1, "text": "é日本"}), LIMITS).text == "é日本"
    )


@pytest.mark.parametrize(
    ("frame", "code", "seq"),
    [
        ("not json", "bad_json", None),
        ("[1, 2]", "bad_frame", None),
        (b'{"type": "input"}', "bad_frame", None),
        ('{"seq": 1, "text": "a"}', "unknown_type", 1),
        ('{"type": "hello", "seq": 4}', "unknown_type", 4),
        ('{"type": "input", "seq": "1", "text": "a"}', "bad_field", None),
        ('{"type": "input", "seq": -1, "text": "a"}', "bad_field", None),
        ('{"type": "input", "seq": true, "text": "a"}', "bad_field", None),
        ('{"type": "input", "seq": 1.5, "text": "a"}', "bad_field", None),
        ('{"type": "input", "seq": 9007199254740992, "text": "a"}', "bad_field", None),
        ('{"type": "input", "seq": 2, "text": 5}', "bad_field", 2),
        ('{"type": "input", "seq": 2}', "bad_field", 2),
        ('{"type": "input", "seq": 2, "text": "abcdefghijk"}', "too_long", 2),
        ('{"type": "input", "seq": 2, "text": "a\\u0000b"}', "control_characters", 2),
        ('{"type": "input", "seq": 2, "text": "a\\nb"}', "control_characters", 2),
        ('{"type": "input", "seq": 2, "text": "a\\u0085"}', "control_characters", 2),
        ('{"type": "input", "seq": 2, "text": "\\ud800"}', "control_characters", 2),
        ('{"type": "input", "seq": 2, "text": "a", "k": 0}', "bad_field", 2),
        ('{"type": "input", "seq": 2, "text": "a", "k": 6}', "bad_field", 2),
        ('{"type": "submit", "text": "   "}', "bad_field", None),
        ('{"type": "submit", "seq": 7, "text": "' + "x" * 21 + '"}', "too_long", 7),
        ('{"type": "submit", "seq": -9223372036854775809}', "bad_field", None),  # not a valid seq
        ('{"type": "nope", "seq": 9007199254740992}', "unknown_type", None),
    ],
)
def test_bad_frames_raise_protocol_error_with_code_and_seq(
    frame: str | bytes, code: str, seq: int | None
) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_client_frame(frame, LIMITS)
    assert caught.value.code == code
    assert caught.value.seq == seq
    assert not isinstance(caught.value, FrameTooBig)
    answer = encode(error(caught.value.code, caught.value.message, caught.value.seq))
    assert json.loads(answer) == {"type": "error", "seq": seq, "code": code, "message": caught.value.message}


@pytest.mark.parametrize("text", ["a" * 201, "é" * 101, "日" * 67])
def test_frames_over_the_byte_limit_are_too_big(text: str) -> None:
    with pytest.raises(FrameTooBig) as caught:
        parse_client_frame(text, LIMITS)
    assert caught.value.close_code == 1009


def test_completions_frame_is_json_with_finite_scores() -> None:
    found = [Completion("rose", 0.5), Completion("roses", float("nan"))]
    frame = completions(4, "ro", found, 0.123456)
    assert (
        json.loads(encode(frame))
        == json.loads(json.dumps(frame, allow_nan=False))
        == {
            "type": "completions",
            "seq": 4,
            "text": "ro",
            "ms": 0.123,
            "items": [{"text": "rose", "score": 0.5}, {"text": "roses", "score": 0.0}],
        }
    )


def test_text_is_too_long_when_normalization_expands_it() -> None:
    limits = Limits(max_prefix_chars=100)
    ligature = "\ufdfa"  # one character, 18 after NFKC
    with pytest.raises(ProtocolError) as refused:
        parse_client_frame(json.dumps({"type": "input", "seq": 1, "text": ligature * 10}), limits)
    assert refused.value.code == "too_long" and "normalization" in refused.value.message
    assert parse_client_frame(json.dumps({"type": "input", "seq": 1, "text": ligature * 5}), limits).seq == 1
    assert parse_client_frame(json.dumps({"type": "input", "seq": 2, "text": "é" * 100}), limits).seq == 2
