"""Time in loan periods, and interest accrued on the principal actually owed.

One clock for everything a loan computes (its interest, its APR, the
borrower's IRR): time since the start in *unit periods* — days for daily
loans, 7-day weeks for weekly ones, and for monthly loans whole months
counted from the start date (as the due dates are) plus the days since the
last of them over the days in that month of the loan. So every day costs
something (the 31st of a month too), a whole period is exactly one unit,
and every due date falls on a whole number of periods.

Interest is simple interest on the principal outstanding (the U.S. Rule of
Regulation Z, appendix J): over a stretch of δ periods a balance B accrues
B·r·δ at the periodic rate r = annual rate / periods a year. Unpaid interest
never bears interest itself, and a payment pays accrued interest before
principal. The interest of a stretch of time therefore depends only on the
principal outstanding over it and its length — not on how often the
borrower pays: cutting a stretch in two changes the sum only by rounding.
Each accrual is rounded DOWN to the msat, once per payment, in the
borrower's favour (so a payment that reduces no principal moves the loan's
total interest by under one msat).
"""
from __future__ import annotations

from datetime import date
from fractions import Fraction

from marketplace.domain.loans.calendar import add_months

BPS_PER_UNIT = 10_000


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
        while add_months(start, months) > when:
            months -= 1
        begin = add_months(start, months)
        length = (add_months(start, months + 1) - begin).days
        return months + Fraction((when - begin).days, length)
    return Fraction(days * periods_per_year, 365)


def interest_between(principal_msat: int, annual_rate_bps: int, periods_per_year: int,
                     begin: Fraction, end: Fraction) -> int:
    """Simple interest on `principal_msat` from period position `begin` to `end`, rounded down to the msat."""
    if end <= begin or principal_msat <= 0 or annual_rate_bps <= 0:
        return 0
    span = end - begin
    return principal_msat * annual_rate_bps * span.numerator // (BPS_PER_UNIT * periods_per_year * span.denominator)

