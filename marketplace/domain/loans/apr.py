"""The APR a borrower sees: the internal rate of return of the real cash flows.

US Truth-in-Lending style (Regulation Z, appendix J, "actuarial method"): find
the periodic rate r at which the payments, discounted over their time in unit
periods, are worth exactly the principal received; the APR is r x periods per
year. Because it is computed from the payments actually scheduled (rounded to
the msat, fees included), it cannot hide a cost that the nominal rate leaves
out.

Time is counted in unit periods: days for daily loans, 7-day weeks for weekly
ones, and for monthly loans whole calendar months from the start date (so each
monthly installment is exactly one period whatever the month's length) plus
leftover days / 30.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from fractions import Fraction

from marketplace.domain.errors import InvalidInput
from marketplace.domain.loans.schedules import Schedule, add_months

# The search runs over whole hundredths of a basis point of annual rate.
_STEPS_PER_BPS = 100
_STEPS_PER_UNIT = 10_000 * _STEPS_PER_BPS
# A ceiling to stop doubling: 10,000,000 % a year is no loan.
_MAX_STEPS = 100_000 * _STEPS_PER_UNIT
_CONTEXT = Context(prec=50)


def unit_periods(start: date, when: date, periods_per_year: int) -> Fraction:
    """How many unit periods lie between `start` and `when` (see module docstring)."""
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
        return months + Fraction(leftover_days, 30)
    return Fraction(days * periods_per_year, 365)


def _present_value_minus_principal(
    steps: int, principal_msat: int, flows: Sequence[tuple[Fraction, int]], periods_per_year: int
) -> Decimal:
    with localcontext(_CONTEXT):
        growth = 1 + Decimal(steps) / (_STEPS_PER_UNIT * periods_per_year)
        total = Decimal(0)
        for periods, amount_msat in flows:
            if periods.denominator == 1:
                factor = growth ** int(periods)
            else:
                factor = growth ** (Decimal(periods.numerator) / Decimal(periods.denominator))
            total += Decimal(amount_msat) / factor
        return total - principal_msat


def apr_bps(
    principal_msat: int,
    start: date,
    payments: Sequence[tuple[date, int]],
    periods_per_year: int,
) -> int:
    """APR in whole basis points: bisection to 0.01 bp, then rounded half-up."""
    if principal_msat <= 0:
        raise InvalidInput("The loan amount must be more than 0 sat.")
    if periods_per_year < 1:
        raise InvalidInput("A year has at least one period.")
    if not payments:
        raise InvalidInput("An APR needs at least one payment.")
    flows: list[tuple[Fraction, int]] = []
    for when, amount_msat in payments:
        if when < start:
            raise InvalidInput("A payment cannot fall before the loan starts.")
        if amount_msat < 0:
            raise InvalidInput("A payment cannot be negative.")
        flows.append((unit_periods(start, when, periods_per_year), amount_msat))
    if sum(amount for _, amount in flows) == 0:
        raise InvalidInput("An APR needs payments that add up to more than 0 sat.")

    def f(steps: int) -> Decimal:
        return _present_value_minus_principal(steps, principal_msat, flows, periods_per_year)

    # f falls as the rate rises (every payment is discounted more), so the root
    # is bracketed by a rate where f >= 0 and one where f <= 0.
    at_zero = f(0)
    if at_zero == 0:
        return 0
    if at_zero > 0:
        low, high = 0, _STEPS_PER_UNIT
        while f(high) > 0:
            low, high = high, high * 2
            if high > _MAX_STEPS:
                raise InvalidInput("These payments imply an APR beyond any sensible loan.")
    else:
        # Payments worth less than the principal: a negative rate, above -100 %
        # per period (where every future payment would be worth infinitely much).
        low, high = -_STEPS_PER_UNIT * periods_per_year + 1, 0
    while high - low > 1:
        middle = (low + high) // 2
        if f(middle) > 0:
            low = middle
        else:
            high = middle
    # The root lies between two neighbouring hundredths of a bp; keep the
    # nearer one, then round that once, half-up, to whole basis points.
    best = low if abs(f(low)) <= abs(f(high)) else high
    return int((Decimal(best) / _STEPS_PER_BPS).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def schedule_apr_bps(schedule: Schedule, start: date | None = None, fees_msat: int = 0) -> int:
    """The APR of a schedule; an up-front fee is kept out of what the borrower receives."""
    begin = start if start is not None else schedule.start_date
    if begin is None:
        raise InvalidInput("The schedule needs a start date to compute its APR.")
    received = schedule.principal_msat - fees_msat
    payments = [(i.due_date, i.total_msat) for i in schedule.installments]
    return apr_bps(received, begin, payments, schedule.frequency.periods_per_year)


def total_cost_msat(schedule: Schedule, fees_msat: int = 0) -> int:
    """What the loan costs the borrower beyond the principal: interest plus fees."""
    if fees_msat < 0:
        raise InvalidInput("A fee cannot be negative.")
    return schedule.total_interest_msat + fees_msat
