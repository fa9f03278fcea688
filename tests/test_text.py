"""rooms.text: the one check every text from outside goes through."""

from __future__ import annotations

import json

import pytest

from rooms.text import InvalidText, check_json, clean_text, loads_json


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("a\ud800b", "not valid Unicode"),
        ("a\x00b", "control characters"),
        ("bell\x07", "control characters"),
        ("two\nlines", "line breaks"),
        ("tab\there", "line breaks"),
        ("line\u2028separator", "line breaks"),
        ("c1\x85", "control characters"),
        (42, "must be a string"),
        ("x" * 9, "at most 8 characters"),
    ],
)
def test_a_name_refuses_what_cannot_be_stored_or_shown(value: object, why: str) -> None:
    with pytest.raises(InvalidText) as caught:
        clean_text(value, name="userID", max_chars=8)
    assert caught.value.code == "invalid_text"
    assert caught.value.message.startswith("userID ") and why in caught.value.message


def test_a_refusal_never_repeats_the_text_it_refused() -> None:
    with pytest.raises(InvalidText) as caught:
        clean_text("secret\ud800", name="message", max_chars=100, multiline=True)
    assert "secret" not in caught.value.message
    caught.value.message.encode("utf-8")  # always sendable


def test_multiline_text_keeps_line_breaks_and_tabs_but_no_other_control() -> None:
    text = "first line\r\n\tsecond line\u2028third"
    assert clean_text(text, name="message", max_chars=100, multiline=True) == text
    for bad in ["nul\x00", "escape\x1b[31m", "del\x7f", "lone \udfff"]:
        with pytest.raises(InvalidText):
            clean_text(bad, name="message", max_chars=100, multiline=True)


def test_clean_text_returns_its_value_untrimmed_and_may_require_a_character() -> None:
    assert clean_text("  Ada  ", name="userName", max_chars=64) == "  Ada  "
    assert clean_text("Ἀδά 🎙", name="userName", max_chars=64) == "Ἀδά 🎙"
    with pytest.raises(InvalidText, match="may not be empty"):
        clean_text("", name="userName", max_chars=64, min_chars=1)


def test_json_from_outside_nested_5000_deep_is_refused_without_recursing() -> None:
    deep = "[" * 5000 + "]" * 5000
    with pytest.raises(InvalidText, match="nested more than 32 levels"):
        loads_json(deep)
    with pytest.raises(InvalidText, match="nested more than 32 levels"):
        loads_json('{"a":' * 5000 + "1" + "}" * 5000)
    assert loads_json("[" * 32 + "]" * 32) == json.loads("[" * 32 + "]" * 32)


def test_brackets_inside_json_strings_do_not_count_as_depth() -> None:
    text = json.dumps({"text": "[" * 100 + '\\"{' * 100})
    assert loads_json(text, max_depth=1) == json.loads(text)


@pytest.mark.parametrize("text", ["{not json", "NaN", '{"x": Infinity}', b"\xff\xfe", "[1", ""])
def test_malformed_json_is_refused_as_invalid_text(text: str | bytes) -> None:
    with pytest.raises(InvalidText) as caught:
        loads_json(text, name="The message")
    assert caught.value.message.startswith("The message ")


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({"note": "nul\x00"}, "attributes.note "),
        ({"list": [1, "ok", "\ud800"]}, "attributes.list[2] "),
        ({"bad\x00key": 1}, "A key of attributes "),
        ({"n": float("nan")}, "attributes.n "),
        ({"set": {1, 2}}, "attributes.set "),
    ],
)
def test_every_key_and_string_of_a_json_value_is_checked(value: object, where: str) -> None:
    with pytest.raises(InvalidText) as caught:
        check_json(value, name="attributes")
    assert caught.value.message.startswith(where)


def test_a_json_value_has_a_depth_and_a_size_limit() -> None:
    nested: list = []
    for _ in range(5000):  # deeper than Python's recursion limit
        nested = [nested]
    with pytest.raises(InvalidText, match="nested more than 16 levels"):
        check_json(nested, name="attributes")
    with pytest.raises(InvalidText, match="at most 100 characters"):
        check_json({"text": "x" * 100}, name="attributes", max_chars=100)
    fine = {"emoji": "🎉", "lines": "a\nb", "n": [1, 2.5, True, None]}
    assert check_json(fine, name="attributes") is fine
