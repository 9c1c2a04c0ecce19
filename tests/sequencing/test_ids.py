"""sequencing.ids: the one check for a 32-byte id or key written as 64 hex digits."""

from __future__ import annotations

import pytest

from sequencing.ids import ID_HEX_PATTERN, InvalidId, parse_id32

ID = bytes(range(32))


def test_64_hex_digits_in_either_case_are_the_32_bytes() -> None:
    assert parse_id32(ID.hex()) == ID
    assert parse_id32(ID.hex().upper()) == ID
    assert parse_id32("aB" * 32) == b"\xab" * 32


@pytest.mark.parametrize(("text", "problem"), [
    ("", "0 hex digits, not 64"),
    (ID.hex()[:-2], "62 hex digits, not 64"),
    (ID.hex() + "00", "66 hex digits, not 64"),
    (ID.hex()[:-1], "63 hex digits, not 64"),
    ("zz" * 32, "not hexadecimal"),
    ("0x" + ID.hex(), "has a 0x prefix"),
    ("0X" + ID.hex(), "has a 0x prefix"),
    ("0x" + ID.hex()[2:], "has a 0x prefix"),  # 64 characters, but not 64 digits
    # bytes.fromhex takes whitespace between and around digits: the strings below would be 16 or
    # 31 bytes, or 32 bytes from 66 characters
    ("ab" * 16 + " " * 32, "not hexadecimal"),
    (" ".join(["ab"] * 32)[:64], "not hexadecimal"),
    (" " + ID.hex() + " ", "not hexadecimal"),
    (ID.hex() + "\n", "not hexadecimal"),
    ("\u0660" * 64, "not hexadecimal"),  # ARABIC-INDIC DIGIT ZERO: a digit to str.isdigit, not hex
    ("\uff10" * 64, "not hexadecimal"),  # FULLWIDTH DIGIT ZERO: int() would read it as 0
])
def test_anything_else_is_refused_with_the_reason(text: str, problem: str) -> None:
    with pytest.raises(InvalidId) as refused:
        parse_id32(text, "tx_id")
    assert refused.value.what == "tx_id" and refused.value.problem == problem
    assert str(refused.value).startswith("tx_id must be 64 hex digits (32 bytes), got ")
    assert problem in str(refused.value)


@pytest.mark.parametrize("value", [None, 7, ID, ID.hex().encode()])
def test_a_value_that_is_not_text_is_refused(value: object) -> None:
    with pytest.raises(InvalidId) as refused:
        parse_id32(value)
    assert refused.value.problem == f"not a string but {type(value).__name__}"


def test_invalid_id_is_a_value_error_and_quotes_a_bounded_prefix() -> None:
    with pytest.raises(ValueError) as refused:  # callers that caught ValueError keep working
        parse_id32("x" * 10_000)
    assert len(str(refused.value)) < 200


def test_the_pattern_for_schemas_says_the_same() -> None:
    import re

    for text in [ID.hex(), ID.hex().upper(), "0x" + ID.hex()[2:], "ab" * 16 + " " * 32, ID.hex()[:-2]]:
        try:
            parse_id32(text)
            accepted = True
        except InvalidId:
            accepted = False
        assert (re.fullmatch(ID_HEX_PATTERN, text) is not None) == accepted, text
