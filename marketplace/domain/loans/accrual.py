"""Time in loan periods, and interest accrued on the principal actually owed.

One clock for everything a loan computes (its interest, its APR, the
borrower's IRR): time since the start in *unit periods* — days for daily
loans, 7-day weeks for weekly ones, and for monthly loans whole calendar
months from the start date plus leftover days / 30 (US Regulation Z,
appendix J). Every due date falls on a whole number of periods.

Interest accrues on the principal outstanding at the periodic rate
r = annual rate / periods a year, compounded the actuarial way inside a
period: over a stretch of δ ≤ 1 periods a balance B accrues B((1 + r)^δ − 1),
so a whole period costs exactly B·r and a part of a period never costs more
than the disclosed rate. Accrual restarts at every payment and every due
date, and interest accrued but unpaid never bears interest itself. Together
these make the promise a borrower can check: whatever the pattern of
payments, discounting them at the disclosed rate never gives more than the
principal received — the borrower's IRR never exceeds the APR (proof in
tests/properties/test_fair_interest.py). The result is rounded DOWN to the
msat, once per accrual, in the borrower's favour.
"""
from __future__ import annotations

from datetime import date
from decimal import ROUND_FLOOR, Context, Decimal
from fractions import Fraction
from functools import lru_cache

from marketplace.domain.loans.calendar import add_months

BPS_PER_UNIT = 10_000
_CONTEXT = Context(prec=60)


def unit_periods(start: date, when: date, periods_per_year: int) -> Fraction:
    """How many unit periods lie between `start` and `when` (see the module docstring)."""
    days = (when - start).days
    if periods_per_year == 365:
        return Fraction(days)
    if periods_per_year == 52:
        return Fraction(days, 7)
    if periods_per_year == 12:
        months = (when.year - start.year) * 12 + (when.month - start.month)
        # add_months clamps to the month end, so step back while overshooting.
        while months > 0 and add_months(start, months) > when:
            months -= 1
        leftover_days = (when - add_months(start, months)).days
        # A 31-day month's last day already counts as a whole period.
        return months + min(Fraction(leftover_days, 30), Fraction(1))
    return Fraction(days * periods_per_year, 365)


@lru_cache(maxsize=65_536)
def _part_growth(annual_rate_bps: int, periods_per_year: int, numerator: int, denominator: int) -> Decimal:
    """(1 + r)^δ − 1 for δ = numerator / denominator in (0, 1), to 60 digits."""
    base = _CONTEXT.add(Decimal(1), _CONTEXT.divide(Decimal(annual_rate_bps),
                                                    Decimal(BPS_PER_UNIT * periods_per_year)))
    exponent = _CONTEXT.divide(Decimal(numerator), Decimal(denominator))
    return _CONTEXT.subtract(_CONTEXT.power(base, exponent), Decimal(1))


def interest_between(principal_msat: int, annual_rate_bps: int, periods_per_year: int,
                     begin: Fraction, end: Fraction) -> int:
    """Interest on `principal_msat` from period position `begin` to `end`, rounded down to the msat.

    The stretch is cut at every whole period (every due date): the whole
    periods in between cost r each, the parts at either end (1 + r)^δ − 1.
    """
    if end <= begin or principal_msat <= 0 or annual_rate_bps <= 0:
        return 0
    per_year = BPS_PER_UNIT * periods_per_year
    if begin.denominator == 1 and end.denominator == 1:  # due date to due date: whole periods, in integers
        return principal_msat * annual_rate_bps * (end.numerator - begin.numerator) // per_year
    first_boundary = begin.__floor__() + 1
    if end <= first_boundary:
        head, whole, tail = end - begin, 0, Fraction(0)
    else:
        last_boundary = end.__floor__()
        head = first_boundary - begin
        whole = last_boundary - first_boundary
        tail = end - last_boundary
    whole_periods = whole
    parts: list[Fraction] = []
    for piece in (head, tail):
        if piece == 1:
            whole_periods += 1
        elif piece:
            parts.append(piece)
    # Whole periods are exact rationals; only the parts need the power.
    exact_whole = Fraction(principal_msat * annual_rate_bps * whole_periods, per_year)
    if not parts:
        return exact_whole.__floor__()
    total = _CONTEXT.divide(Decimal(exact_whole.numerator), Decimal(exact_whole.denominator))
    for piece in parts:
        growth = _part_growth(annual_rate_bps, periods_per_year, piece.numerator, piece.denominator)
        total = _CONTEXT.add(total, _CONTEXT.multiply(Decimal(principal_msat), growth))
    return int(total.to_integral_value(rounding=ROUND_FLOOR))


def whole_period_interest_msat(balance_msat: int, annual_rate_bps: int, periods_per_year: int) -> int:
    """One whole period's interest on `balance_msat`: balance x r, rounded down."""
    return balance_msat * annual_rate_bps // (BPS_PER_UNIT * periods_per_year)
