"""Money is an integer number of millisatoshis; these helpers never touch floats."""
from __future__ import annotations

MSAT_PER_SAT = 1000
MSAT_PER_BTC = 100_000_000_000


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


def parse_sat(text: str) -> int:
    """A whole, positive number of sat typed by a person; msat result. Raises ValueError."""
    cleaned = text.strip().replace(",", "").replace("_", "")
    if not cleaned.isdigit():
        raise ValueError("Enter a whole number of sat, like 50000.")
    amount_sat = int(cleaned)
    if amount_sat <= 0:
        raise ValueError("The amount must be more than 0 sat.")
    return sat_to_msat(amount_sat)
