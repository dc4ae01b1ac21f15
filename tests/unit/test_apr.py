"""APR: the rate the borrower really pays, from the scheduled cash flows."""
from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketplace.domain.errors import InvalidInput
from marketplace.domain.loans.accrual import unit_periods
from marketplace.domain.loans.apr import aprc_bps, apr_bps, schedule_apr_bps, schedule_aprc_bps, total_cost_msat
from marketplace.domain.loans.schedules import Frequency, Method, build_schedule

START = date(2026, 1, 31)


def _apr(principal: int, rate: int, count: int, frequency: Frequency, method: Method) -> int:
    schedule = build_schedule(principal, rate, count, frequency, method, START)
    payments = [(i.due_date, i.total_msat) for i in schedule.installments]
    return apr_bps(principal, START, payments, frequency.periods_per_year)


# Loans of at least 10,000 sat (the platform's smallest): the msat rounding of
# interest is too small to move the APR by a basis point.
@settings(max_examples=150, deadline=None)
@given(
    principal=st.integers(min_value=10**7, max_value=10**12),
    rate=st.integers(min_value=0, max_value=10_000),
    count=st.integers(min_value=1, max_value=120),
    frequency=st.sampled_from(list(Frequency)),
    method=st.sampled_from(list(Method)),
)
def test_apr_equals_the_nominal_rate_without_fees(
    principal: int, rate: int, count: int, frequency: Frequency, method: Method
) -> None:
    assert abs(_apr(principal, rate, count, frequency, method) - rate) <= 1


# From 100 sat up, every frequency: the APR moves off the nominal rate only by
# what rounding each installment's interest down to the msat (less than 1 msat
# per installment) really saves; to first order that shifts the
# periodic rate by at most sum|rounding| / sum(t x payment x discount).
@settings(max_examples=150, deadline=None)
@given(
    principal=st.integers(min_value=100_000, max_value=10**12),
    rate=st.integers(min_value=0, max_value=10_000),
    count=st.integers(min_value=1, max_value=120),
    frequency=st.sampled_from(list(Frequency)),
    method=st.sampled_from(list(Method)),
)
def test_apr_of_small_loans_moves_only_by_the_msat_rounding(
    principal: int, rate: int, count: int, frequency: Frequency, method: Method
) -> None:
    periods = frequency.periods_per_year
    schedule = build_schedule(principal, rate, count, frequency, method, START)
    r = Fraction(rate, 10_000 * periods)
    weighted = sum(
        Fraction(k * i.total_msat) / (1 + r) ** (k + 1) for k, i in enumerate(schedule.installments, start=1)
    )
    slack_bps = Fraction(count) / weighted * periods * 10_000
    assert abs(_apr(principal, rate, count, frequency, method) - rate) <= 1 + slack_bps


def test_apr_tells_the_truth_about_msat_rounding_on_tiny_daily_loans() -> None:
    # 100 sat at 0.15 % a year, daily: each day's interest is at most 0.41
    # msat, which rounds to 0, so the borrower really pays no interest at all:
    # the APR says 0, not 15.
    assert _apr(100_000, 15, 120, Frequency.DAILY, Method.ANNUITY) == 0
    assert _apr(10**7, 15, 120, Frequency.DAILY, Method.ANNUITY) == 15


def test_fees_raise_the_apr_above_the_nominal_rate() -> None:
    schedule = build_schedule(10**9, 1200, 12, Frequency.MONTHLY, Method.ANNUITY, START)
    assert schedule_apr_bps(schedule) == 1200
    # A 1 % fee kept out of the money received costs about 1.8 points a year over 12 months.
    with_fee = schedule_apr_bps(schedule, fees_msat=10**7)
    assert 1370 <= with_fee <= 1400
    assert total_cost_msat(schedule) == schedule.total_interest_msat
    assert total_cost_msat(schedule, 10**7) == schedule.total_interest_msat + 10**7


def test_known_values() -> None:
    # One payment of 110 after one year of monthly periods: (1 + r)^12 = 1.1.
    assert apr_bps(100_000, date(2026, 1, 1), [(date(2027, 1, 1), 110_000)], 12) == 957
    # The same cash flow counted as a single yearly period: exactly 10 %.
    assert apr_bps(100_000, date(2026, 1, 1), [(date(2027, 1, 1), 110_000)], 1) == 1000
    # Getting back less than was lent is a negative rate.
    assert apr_bps(100_000, date(2026, 1, 1), [(date(2026, 1, 2), 99_000)], 365) < 0
    # Paid back exactly: zero.
    assert apr_bps(100_000, date(2026, 1, 1), [(date(2026, 2, 1), 100_000)], 12) == 0


def test_unit_periods() -> None:
    # Each monthly due date is one period, whatever the month's length.
    assert unit_periods(date(2026, 1, 31), date(2026, 2, 28), 12) == 1
    assert unit_periods(date(2026, 1, 31), date(2026, 3, 31), 12) == 2
    assert unit_periods(date(2026, 1, 15), date(2026, 2, 18), 12) == 1 + Fraction(3, 28)  # days of Feb 15-Mar 15
    assert unit_periods(date(2026, 1, 1), date(2026, 1, 15), 52) == 2
    assert unit_periods(date(2026, 1, 1), date(2026, 1, 1) + timedelta(days=10), 365) == 10


def test_refusals() -> None:
    when = [(date(2026, 2, 1), 1000)]
    with pytest.raises(InvalidInput, match="more than 0 sat"):
        apr_bps(0, date(2026, 1, 1), when, 12)
    with pytest.raises(InvalidInput, match="at least one payment"):
        apr_bps(1000, date(2026, 1, 1), [], 12)
    with pytest.raises(InvalidInput, match="before the loan starts"):
        apr_bps(1000, date(2026, 3, 1), when, 12)
    with pytest.raises(InvalidInput, match="cannot be negative"):
        apr_bps(1000, date(2026, 1, 1), [(date(2026, 2, 1), -1)], 12)


def test_aprc_is_the_effective_rate_with_compounding() -> None:
    """The issue's examples: 60 % daily is an APRC of 82.1 %, 60 % monthly 79.6 %; both from the cash flows."""
    daily = build_schedule(10**8, 6000, 90, Frequency.DAILY, Method.ANNUITY, START)
    monthly = build_schedule(10**8, 6000, 12, Frequency.MONTHLY, Method.ANNUITY, START)
    assert (schedule_apr_bps(daily), schedule_aprc_bps(daily)) == (6000, 8212)
    assert (schedule_apr_bps(monthly), schedule_aprc_bps(monthly)) == (6000, 7959)
    # One payment of 110 after a year: 10 % effective whatever the period length.
    assert aprc_bps(100_000, date(2026, 1, 1), [(date(2027, 1, 1), 110_000)], 12) == 1000
    assert aprc_bps(100_000, date(2026, 1, 1), [(date(2026, 2, 1), 100_000)], 12) == 0
