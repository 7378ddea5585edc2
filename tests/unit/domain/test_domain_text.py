"""The character rules of string fields and of client_data (docs/input_rules.md)."""

from __future__ import annotations

import math

import pytest

from sgt.domain.client_data import MAX_CLIENT_DATA_DEPTH, check_client_data
from sgt.domain.text import (
    IDENTIFIER_COLUMN_CHARS,
    check_text_field,
    is_encodable,
    is_valid_identifier,
    safe_for_message,
)
from sgt.errors import InvalidRequest


def nested(levels: int) -> object:
    value: object = 1
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("name", ["arm", "Bras gauche", "腕", "arm 😀", "a.b-c_d/e", ""])
def test_printable_names_of_any_script_are_identifiers(name: str) -> None:
    check_text_field("name", name, max_chars=256)
    assert is_valid_identifier(name)


@pytest.mark.parametrize(
    ("text", "shown"),
    [("a\x00b", "\\u0000"), ("tab\there", "\\u0009"), ("line\n", "\\u000a"), ("\x7f", "\\u007f")],
)
def test_an_identifier_with_a_control_character_is_refused_naming_it(text: str, shown: str) -> None:
    with pytest.raises(InvalidRequest, match="app_name holds") as raised:
        check_text_field("app_name", text, max_chars=256)
    assert shown in raised.value.message and "control characters" in raised.value.message
    assert not is_valid_identifier(text)


def test_other_text_may_hold_controls_but_not_nul() -> None:
    check_text_field("doc", "two\nlines\tand a tab", max_chars=256)
    with pytest.raises(InvalidRequest, match=r"doc holds \\u0000 at position 3; text may not"):
        check_text_field("doc", "abc\x00", max_chars=256)


@pytest.mark.parametrize("field", ["name", "secret_key", "doc"])
def test_a_lone_surrogate_is_refused_in_every_field(field: str) -> None:
    with pytest.raises(InvalidRequest, match=r"lone UTF-16 surrogate \(\\ud800\) at position 1"):
        check_text_field(field, "a\ud800", max_chars=256)
    assert not is_encodable("a\ud800") and is_encodable("a\U0001f600")


def test_identifiers_are_bounded_by_their_columns_even_when_the_setting_is_wider() -> None:
    wide = IDENTIFIER_COLUMN_CHARS + 88
    check_text_field("doc", "x" * 600, max_chars=wide)  # doc is a text column: no width
    with pytest.raises(InvalidRequest, match="name is 513 characters; the limit is 512"):
        check_text_field("name", "x" * 513, max_chars=wide)


def test_messages_quoting_a_surrogate_can_be_encoded() -> None:
    assert safe_for_message("x\udfffy") == "x\\udfffy"
    assert safe_for_message("plain") == "plain"


def test_client_data_may_be_any_standard_json_value() -> None:
    for value in (None, True, 3, -(2**63), 2**64 - 1, 2.5, "nul \x00 inside", [], {"a": [{}]}):
        check_client_data(value)
    check_client_data(nested(MAX_CLIENT_DATA_DEPTH))


def test_client_data_deeper_than_the_limit_is_refused_naming_the_limit() -> None:
    with pytest.raises(InvalidRequest, match=f"deeper than {MAX_CLIENT_DATA_DEPTH} levels"):
        check_client_data(nested(MAX_CLIENT_DATA_DEPTH + 1))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": [1, math.nan]}, r"client_data\.a\[1\] is NaN"),
        ([math.inf], r"client_data\[0\] is Infinity"),
        ({"big": 2**64}, r"client_data\.big is an integer of 65 bits"),
        ({"k": "\ud800"}, r"client_data\.k holds a lone UTF-16 surrogate"),
        ({"\udc00": 1}, r"client_data key '\\udc00' holds a lone UTF-16 surrogate"),
    ],
)
def test_client_data_that_could_not_be_answered_as_it_came_is_refused(
    value: object, expected: str
) -> None:
    with pytest.raises(InvalidRequest, match=expected):
        check_client_data(value)
