"""The two annual rates a borrower sees, both the internal rate of return of the real cash flows.

Find the periodic rate r at which the payments, discounted over their time in
unit periods, are worth exactly the principal received. Then:

* APR, US Truth-in-Lending style (Regulation Z, appendix J, "actuarial
  method"): r x periods per year;
* APRC, the EU Consumer Credit Directive's effective annual rate (annex I):
  (1 + r)^periods per year - 1, the same cash flows with compounding — 60 %
  daily is 82.1 %, 60 % monthly 79.6 %.

Because both are computed from the payments actually scheduled (rounded to
the msat, fees included), they cannot hide a cost that the nominal rate
leaves out. Time is counted in unit periods (accrual.unit_periods), the same
clock the interest accrues by: days, 7-day weeks, or whole months from the
start plus the days since over the days of that month of the loan. A
schedule's payments fall on whole periods, where this actuarial APR and the
U.S. Rule's (the simple interest the loan charges) are the same rate.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from fractions import Fraction

from marketplace.domain.errors import InvalidInput
from marketplace.domain.loans.accrual import unit_periods
from marketplace.domain.loans.schedules import Schedule
from marketplace.domain.messages import N_

# The search runs over whole hundredths of a basis point of annual rate.
_STEPS_PER_BPS = 100
_STEPS_PER_UNIT = 10_000 * _STEPS_PER_BPS
# A ceiling to stop doubling: 10,000,000 % a year is no loan.
_MAX_STEPS = 100_000 * _STEPS_PER_UNIT
_CONTEXT = Context(prec=50)


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


def _periodic_steps(
    principal_msat: int,
    start: date,
    payments: Sequence[tuple[date, int]],
    periods_per_year: int,
) -> int:
    """The periodic IRR x periods a year, in hundredths of a basis point (bisection)."""
    if principal_msat <= 0:
        raise InvalidInput(N_("The loan amount must be more than 0 sat."))
    if periods_per_year < 1:
        raise InvalidInput(N_("A year has at least one period."))
    if not payments:
        raise InvalidInput(N_("An APR needs at least one payment."))
    flows: list[tuple[Fraction, int]] = []
    for when, amount_msat in payments:
        if when < start:
            raise InvalidInput(N_("A payment cannot fall before the loan starts."))
        if amount_msat < 0:
            raise InvalidInput(N_("A payment cannot be negative."))
        flows.append((unit_periods(start, when, periods_per_year), amount_msat))
    if sum(amount for _, amount in flows) == 0:
        raise InvalidInput(N_("An APR needs payments that add up to more than 0 sat."))

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
                raise InvalidInput(N_("These payments imply an APR beyond any sensible loan."))
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
    # The root lies between two neighbouring hundredths of a bp; keep the nearer one.
    return low if abs(f(low)) <= abs(f(high)) else high


def apr_bps(principal_msat: int, start: date, payments: Sequence[tuple[date, int]], periods_per_year: int) -> int:
    """APR in whole basis points: the periodic IRR x periods a year, to 0.01 bp, then rounded half-up."""
    steps = _periodic_steps(principal_msat, start, payments, periods_per_year)
    return int((Decimal(steps) / _STEPS_PER_BPS).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def aprc_bps(principal_msat: int, start: date, payments: Sequence[tuple[date, int]], periods_per_year: int) -> int:
    """APRC (effective annual rate) in whole basis points: (1 + periodic IRR)^periods a year - 1, half-up."""
    steps = _periodic_steps(principal_msat, start, payments, periods_per_year)
    with localcontext(_CONTEXT):
        periodic = Decimal(steps) / (_STEPS_PER_UNIT * periods_per_year)
        effective = (1 + periodic) ** periods_per_year - 1
        return int((effective * 10_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _schedule_flows(schedule: Schedule, start: date | None, fees_msat: int) -> tuple[int, date, list[tuple[date, int]]]:
    begin = start if start is not None else schedule.start_date
    if begin is None:
        raise InvalidInput(N_("The schedule needs a start date to compute its APR."))
    return schedule.principal_msat - fees_msat, begin, [(i.due_date, i.total_msat) for i in schedule.installments]


def schedule_apr_bps(schedule: Schedule, start: date | None = None, fees_msat: int = 0) -> int:
    """The APR of a schedule; an up-front fee is kept out of what the borrower receives."""
    received, begin, payments = _schedule_flows(schedule, start, fees_msat)
    return apr_bps(received, begin, payments, schedule.frequency.periods_per_year)


def schedule_aprc_bps(schedule: Schedule, start: date | None = None, fees_msat: int = 0) -> int:
    """The APRC (effective annual rate) of a schedule."""
    received, begin, payments = _schedule_flows(schedule, start, fees_msat)
    return aprc_bps(received, begin, payments, schedule.frequency.periods_per_year)


def total_cost_msat(schedule: Schedule, fees_msat: int = 0) -> int:
    """What the loan costs the borrower beyond the principal: interest plus fees."""
    if fees_msat < 0:
        raise InvalidInput(N_("A fee cannot be negative."))
    return schedule.total_interest_msat + fees_msat
