"""Money is an integer number of millisatoshis; these helpers never touch floats."""
from __future__ import annotations

import re

from marketplace.domain import numbers
from marketplace.domain.messages import N_

_SAT_MSAT = re.compile(r"^([0-9]{1,15})(?:\.([0-9]{1,3}))?$")

MSAT_PER_SAT = 1000
MSAT_PER_BTC = 100_000_000_000
# 21 million bitcoin in sat: no amount anyone types can be larger.
SAT_MAX = 21_000_000 * 100_000_000


def sat_to_msat(amount_sat: int) -> int:
    return amount_sat * MSAT_PER_SAT


def msat_to_sat_floor(amount_msat: int) -> int:
    return amount_msat // MSAT_PER_SAT


def format_msat(amount_msat: int) -> str:
    """'1,234 sat' or '1,234.567 sat': whole sats unless there are msats to show."""
    sign = "-" if amount_msat < 0 else ""
    whole, rest = divmod(abs(amount_msat), MSAT_PER_SAT)
    if rest:
        return f"{sign}{whole:,}.{rest:03d} sat"
    return f"{sign}{whole:,} sat"


def plain_sat(amount_msat: int, signed: bool = False) -> str:
    """For machines (CSV, forms): '1234.5', '-20000', '+20000' with `signed`; no separators."""
    sign = "-" if amount_msat < 0 else ("+" if signed else "")
    whole, rest = divmod(abs(amount_msat), MSAT_PER_SAT)
    return f"{sign}{whole}" if not rest else f"{sign}{whole}.{rest:03d}".rstrip("0")


def parse_sat(text: str) -> int:
    """A whole, positive number of sat typed by a person ('50000', '50,000'); msat result.

    Read by the one set of number rules (`marketplace.domain.numbers`): ASCII
    digits only. Raises NumberRefused (an InvalidInput) with the reason.
    """
    amount_sat = numbers.whole(
        text, label=N_("amount"), minimum=1, maximum=SAT_MAX, grouping=True,
        not_number=N_("Enter a whole number of sat, like 50000."),
        too_small=N_("The amount must be more than 0 sat."),
        too_big=N_("The amount can be at most %(most)s sat (all the bitcoin there will ever be).",
                   most=format(SAT_MAX, ",")))
    return sat_to_msat(amount_sat)


def parse_sat_msat(text: str) -> int:
    """A positive amount of sat with up to three decimals ('1234', '1,234.5', '0.001'); msat result.

    ASCII digits only: '١٠٠٠' or '²' are refused, not read as numbers. Raises ValueError.
    """
    cleaned = text.strip().replace(",", "").replace("_", "")
    found = _SAT_MSAT.match(cleaned)
    if found is None:
        raise ValueError(N_("Enter an amount in sat, like 5000 or 5000.125 (at most three decimals)."))
    whole, fraction = found.group(1), (found.group(2) or "").ljust(3, "0")
    amount_msat = int(whole) * MSAT_PER_SAT + int(fraction)
    if amount_msat <= 0:
        raise ValueError(N_("The amount must be more than 0 sat."))
    return amount_msat
