"""Every number a person or a program sends in, read by one set of rules.

Pages (path, query string, forms) and the JSON API all come through here, so
"50000" means the same everywhere and anything else is refused with a
sentence, never a crash:

- ASCII digits only. `str.isdigit()` is true for '²' (which `int()` then
  refuses) and `int()` reads '١٠٠٠' and '１２' as numbers: a number typed in
  another script is refused, not silently read.
- Whole numbers may group their digits with ',' or '_' ('50,000') when the
  caller allows it (amounts a person types); nothing else is dropped.
- A minus sign, a fraction, an exponent, NaN or infinity are not whole
  numbers. A negative whole number is reported as out of range.
- Decimals (rates in percent) are digits with one '.' or ',' as the decimal
  mark and at most `places` digits after it; no sign, no exponent.
- Text longer than `TEXT_LENGTH_MAX` is refused before any conversion, so
  10 KB of digits costs nothing (and never reaches `int()`'s own limit).
"""
from __future__ import annotations

import re
from decimal import Decimal

from marketplace.domain.errors import InvalidInput
from marketplace.domain.messages import Message, N_

TEXT_LENGTH_MAX = 40
_WHOLE = re.compile(r"[0-9]+", re.ASCII)
_GROUPED = re.compile(r"[0-9]+(?:[,_][0-9]+)*", re.ASCII)
_DECIMAL = re.compile(r"(?=[.,]?[0-9])([0-9]*)(?:[.,]([0-9]*))?", re.ASCII)




class NumberRefused(InvalidInput):
    """A number that is not one, or out of range (422, code invalid_input as every other bad field)."""


_COUNT_WORDS = {1: N_("one"), 2: N_("two"), 3: N_("three")}
# A label is the field's name inside a sentence ("page number"): mark it with N_() so it is translated
# with the sentence; a plain string (a JSON field's name) is shown as it is.
Label = str | Message
Said = str | Message


def _range_sentence(label: Label, minimum: int, maximum: int | None) -> Message:
    if maximum is None:
        return N_("The %(label)s must be at least %(minimum)s.", label=label, minimum=format(minimum, ","))
    return N_("The %(label)s must be between %(minimum)s and %(maximum)s.", label=label, minimum=format(minimum, ","),
              maximum=format(maximum, ","))


def _decimals(label: Label, places: int) -> Message:
    return N_("Give the %(label)s with at most %(places)s decimals.", label=label,
              places=_COUNT_WORDS.get(places, str(places)))


def whole(
    text: str, *, label: Label, minimum: int = 0, maximum: int | None = None, grouping: bool = False,
    not_number: Said | None = None, too_small: Said | None = None, too_big: Said | None = None,
) -> int:
    """A whole number from text, within [minimum, maximum]; NumberRefused with a sentence otherwise.

    The sentences default to "The {label} must be a whole number." and "The
    {label} must be between {minimum} and {maximum}."; `not_number`,
    `too_small` and `too_big` replace them.
    """
    cleaned = text.strip()
    wrong_kind = not_number or N_("The %(label)s must be a whole number.", label=label)
    below = too_small or _range_sentence(label, minimum, maximum)
    above = too_big or _range_sentence(label, minimum, maximum)
    if len(cleaned) > TEXT_LENGTH_MAX:
        # All digits: a number, just far too big; anything else that long is not a number at all.
        raise NumberRefused(above if _WHOLE.fullmatch(cleaned) else wrong_kind)
    pattern = _GROUPED if grouping else _WHOLE
    if cleaned.startswith("-") and pattern.fullmatch(cleaned[1:]):
        raise NumberRefused(below)  # a number, below every minimum here (none allows negatives)
    if not pattern.fullmatch(cleaned):
        raise NumberRefused(wrong_kind)
    value = int(cleaned.replace(",", "").replace("_", ""))
    if value < minimum:
        raise NumberRefused(below)
    if maximum is not None and value > maximum:
        raise NumberRefused(above)
    return value


def decimal(
    text: str, *, label: Label, places: int, maximum: Decimal,
    not_number: Said | None = None, out_of_range: Said | None = None,
) -> Decimal:
    """A decimal from 0 to `maximum` ('18', '18.5', '18,5', '.5'); NumberRefused otherwise.

    At most `places` digits after the decimal mark (trailing zeros aside).
    """
    cleaned = text.strip()
    wrong_kind = not_number or N_("The %(label)s must be a number, like 12 or 12.5.", label=label)
    outside = out_of_range or N_("The %(label)s must be between 0 and %(maximum)s.", label=label, maximum=str(maximum))
    if len(cleaned) > TEXT_LENGTH_MAX:
        raise NumberRefused(wrong_kind)
    if cleaned.startswith("-") and _DECIMAL.fullmatch(cleaned[1:]) and cleaned[1:].strip("0.,"):
        raise NumberRefused(outside)
    found = _DECIMAL.fullmatch(cleaned)
    if found is None:
        raise NumberRefused(wrong_kind)
    whole_part, fraction = found.group(1) or "0", found.group(2) or ""
    value = Decimal(f"{whole_part}.{fraction or '0'}")
    if value > maximum:
        raise NumberRefused(outside)
    if len(fraction.rstrip("0")) > places:
        raise NumberRefused(_decimals(label, places))
    return value


def scaled(value: Decimal, places: int, *, label: Label) -> int:
    """A decimal already in range as a whole number of 1/10**places units (18.5 % -> 1850 bps)."""
    if not value.is_finite():
        raise NumberRefused(N_("The %(label)s must be a number.", label=label))
    units = value.scaleb(places)
    if units != units.to_integral_value():
        raise NumberRefused(_decimals(label, places))
    return int(units)


def json_whole(value: object, *, label: str, minimum: int = 0, maximum: int | None = None) -> int:
    """A whole number from parsed JSON: an integer literal only (not 1.0, 1e3, "1", true)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise NumberRefused(N_("%(label)s must be a whole number (a JSON integer such as 50000).", label=label))
    if value < minimum or (maximum is not None and value > maximum):
        raise NumberRefused(N_("%(label)s must be from %(minimum)s to %(maximum)s.", label=label,
                               minimum=format(minimum, ","), maximum=format(maximum, ",")) if maximum is not None
                            else N_("%(label)s must be at least %(minimum)s.", label=label, minimum=format(minimum, ",")))
    return value


_ID = re.compile(r"[1-9][0-9]{0,17}")


def strict_id(text: str) -> int | None:
    """An id as it appears in an address: ASCII digits only, no sign, no leading zero, no blanks of any kind
    (not even a no-break space, which `str.strip` would take away), at most 18 digits; None for anything else.

    The one parser for ids in paths: /loans/%C2%A05%C2%A0 names nothing."""
    return int(text) if _ID.fullmatch(text) else None
