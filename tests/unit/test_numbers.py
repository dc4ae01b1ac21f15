"""The one set of number rules: ASCII digits only, every refusal a sentence, never another exception."""
from __future__ import annotations

import unicodedata
from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from marketplace.domain import numbers
from marketplace.domain.money import SAT_MAX, parse_sat
from marketplace.domain.numbers import NumberRefused

# Every character str.isdigit() or int() would take that is not one of 0-9.
FOREIGN_DIGITS = [chr(c) for c in range(0x80, 0x110000)
                  if (chr(c).isdigit() or unicodedata.decimal(chr(c), None) is not None)
                  and unicodedata.category(chr(c)) != "Cs"]


@pytest.mark.parametrize(("text", "value"), [
    ("0", 0), ("7", 7), (" 42 ", 42), ("007", 7), ("9" * 40, None),
])
def test_ascii_digits_are_whole_numbers(text: str, value: int | None) -> None:
    if value is None:
        with pytest.raises(NumberRefused, match="between 0 and 10"):
            numbers.whole(text, label="count", maximum=10)
    else:
        assert numbers.whole(text, label="count") == value


@pytest.mark.parametrize("text", [
    "\u00b2", "\u0661\u0660\u0660\u0660", "\uff11\uff12", "\u0967", "1.5", "1e3", "1E3", "0x10", "+5", "", " ",
    "NaN", "inf", "1 000", "1\x00", "\x00", "[]", "true", "1,000", "1_000", "--1", "- 1", "½", "Ⅻ", "𝟙",
])
def test_anything_else_is_not_a_whole_number(text: str) -> None:
    with pytest.raises(NumberRefused, match="The count must be a whole number."):
        numbers.whole(text, label="count")


def test_negative_and_too_big_are_out_of_range_with_their_own_sentences() -> None:
    rules = {"label": "page", "minimum": 1, "maximum": 9, "too_small": "low", "too_big": "high"}
    with pytest.raises(NumberRefused, match="^low$"):
        numbers.whole("-3", **rules)  # type: ignore[arg-type]
    with pytest.raises(NumberRefused, match="^low$"):
        numbers.whole("0", **rules)  # type: ignore[arg-type]
    with pytest.raises(NumberRefused, match="^high$"):
        numbers.whole("10", **rules)  # type: ignore[arg-type]
    with pytest.raises(NumberRefused, match="^high$"):
        numbers.whole("9" * 10_240, **rules)  # type: ignore[arg-type]  # 10 KB never reaches int()
    with pytest.raises(NumberRefused, match="must be a whole number"):
        numbers.whole("x" * 10_240, label="page")


def test_grouping_is_explicit() -> None:
    assert numbers.whole("50,000", label="amount", grouping=True) == 50_000
    assert numbers.whole("1_000_000", label="amount", grouping=True) == 1_000_000
    for text in (",5", "5,", "5,,0", "5 000", "\u0665,000"):
        with pytest.raises(NumberRefused):
            numbers.whole(text, label="amount", grouping=True)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text_is_a_number_or_a_refusal(text: str) -> None:
    try:
        value = numbers.whole(text, label="n", maximum=10**30, grouping=True)
    except NumberRefused as refusal:
        assert refusal.message
    else:
        digits = text.strip().replace(",", "").replace("_", "")
        assert digits.isascii() and set(digits) <= set("0123456789") and int(digits) == value


def test_no_foreign_digit_is_read() -> None:
    assert len(FOREIGN_DIGITS) > 100
    for digit in FOREIGN_DIGITS:
        with pytest.raises(NumberRefused):
            numbers.whole(digit * 3, label="n")
        with pytest.raises(NumberRefused):
            numbers.decimal(digit, label="rate", places=2, maximum=Decimal(100))
        with pytest.raises(NumberRefused):
            parse_sat("1" + digit)


@pytest.mark.parametrize(("text", "value"), [
    ("18", Decimal("18")), ("18.5", Decimal("18.5")), ("18,5", Decimal("18.5")), (".5", Decimal("0.5")),
    ("18.", Decimal("18")), ("12.250", Decimal("12.25")), ("0", Decimal("0")),
])
def test_decimals(text: str, value: Decimal) -> None:
    assert numbers.decimal(text, label="rate", places=2, maximum=Decimal(100)) == value


@pytest.mark.parametrize(("text", "message"), [
    ("1e2", "must be a number"), ("1e999999999", "must be a number"), ("NaN", "must be a number"),
    ("Infinity", "must be a number"), (".", "must be a number"), ("1.2.3", "must be a number"),
    ("\u00b2", "must be a number"), ("-1", "between 0 and 100"), ("101", "between 0 and 100"),
    ("12.345", "at most two decimals"), ("9" * 50, "must be a number"),
])
def test_decimal_refusals(text: str, message: str) -> None:
    with pytest.raises(NumberRefused, match=message):
        numbers.decimal(text, label="rate", places=2, maximum=Decimal(100))


def test_scaled_is_exact() -> None:
    assert numbers.scaled(Decimal("18.25"), 2, label="rate") == 1825
    assert numbers.scaled(Decimal("1E+2"), 2, label="rate") == 10_000
    with pytest.raises(NumberRefused, match="at most two decimals"):
        numbers.scaled(Decimal("0.001"), 2, label="rate")
    with pytest.raises(NumberRefused):
        numbers.scaled(Decimal("NaN"), 2, label="rate")


@pytest.mark.parametrize("value", [1.0, Decimal("1000"), "1000", True, None, [1000], {"a": 1}])
def test_json_whole_takes_json_integers_only(value: object) -> None:
    with pytest.raises(NumberRefused, match="JSON integer"):
        numbers.json_whole(value, label="amount_sat", minimum=1)


def test_json_whole_range() -> None:
    assert numbers.json_whole(5, label="n", minimum=1, maximum=9) == 5
    with pytest.raises(NumberRefused, match="from 1 to 9"):
        numbers.json_whole(10, label="n", minimum=1, maximum=9)


def test_parse_sat_keeps_its_sentences() -> None:
    assert parse_sat(" 50,000 ") == 50_000_000
    with pytest.raises(NumberRefused, match="Enter a whole number of sat"):
        parse_sat("\u00b2")
    with pytest.raises(NumberRefused, match="more than 0 sat"):
        parse_sat("-5")
    with pytest.raises(NumberRefused, match="at most 2,100,000,000,000,000 sat"):
        parse_sat(str(SAT_MAX + 1))
