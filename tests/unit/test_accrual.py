"""Interest accrual: simple interest on the principal owed, every day costing its share, a whole period the rate."""
from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from marketplace.domain.loans.accrual import interest_between, unit_periods

positions = st.fractions(min_value=0, max_value=40, max_denominator=60)


def test_whole_periods_are_exact_and_rounded_down() -> None:
    # 1,000,000 sat at 36 % monthly: 3 % a month, 30,000 sat.
    assert interest_between(10**9, 3600, 12, Fraction(0), Fraction(1)) == 30_000_000
    assert interest_between(10**9, 3600, 12, Fraction(3), Fraction(5)) == 60_000_000  # no interest on interest
    assert interest_between(999, 100, 12, Fraction(0), Fraction(1)) == 0  # 0.0832 msat rounds down
    assert interest_between(10**9, 0, 12, Fraction(0), Fraction(7)) == 0
    assert interest_between(10**9, 3600, 12, Fraction(2), Fraction(2)) == 0


def test_a_part_of_a_period_costs_its_share() -> None:
    # Half a month at 3 %: 1.5 %, the same whether or not the half straddles a due date.
    assert interest_between(10**9, 3600, 12, Fraction(0), Fraction(1, 2)) == 15_000_000
    assert interest_between(10**9, 3600, 12, Fraction(1, 2), Fraction(3, 2)) == 30_000_000


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 10**12), st.integers(0, 10_000), st.sampled_from([12, 52, 365]), positions, positions,
       positions)
def test_a_stretch_costs_the_same_however_it_is_cut(principal: int, rate: int, ppy: int, a: Fraction, b: Fraction,
                                                      c: Fraction) -> None:
    """The interest of a stretch depends only on the principal over it and its length: cut anywhere, the
    parts add up to the whole but for the rounding down of each part (under 1 msat a cut)."""
    begin, middle, end = sorted((a, b, c))
    whole = interest_between(principal, rate, ppy, begin, end)
    r = Fraction(rate, 10_000 * ppy)
    assert whole == (principal * r * (end - begin)).__floor__()
    parts = interest_between(principal, rate, ppy, begin, middle) + interest_between(principal, rate, ppy,
                                                                                      middle, end)
    assert parts <= whole <= parts + 1
    # Only the length matters: the same stretch shifted costs the same.
    assert interest_between(principal, rate, ppy, begin + 3, end + 3) == whole


def test_the_clock() -> None:
    # Monthly: whole months from the start (as the due dates fall), then days over that month's days.
    assert unit_periods(date(2026, 1, 31), date(2026, 2, 28), 12) == 1
    assert unit_periods(date(2026, 1, 31), date(2026, 3, 30), 12) == 1 + Fraction(30, 31)
    assert unit_periods(date(2026, 1, 31), date(2026, 3, 31), 12) == 2
    assert unit_periods(date(2026, 1, 15), date(2026, 2, 18), 12) == 1 + Fraction(3, 28)
    assert unit_periods(date(2026, 1, 1), date(2026, 1, 15), 52) == 2
    assert unit_periods(date(2026, 1, 1), date(2026, 1, 11), 365) == 10


@settings(max_examples=200, deadline=None)
@given(st.dates(date(2020, 1, 1), date(2030, 12, 31)), st.integers(1, 800))
def test_every_day_of_a_month_costs_something_and_a_month_costs_one_period(start: date, days: int) -> None:
    """The old clock counted days / 30 capped at one period, so the 31st day of a month was free."""
    when = start + timedelta(days=days)
    before = unit_periods(start, when - timedelta(days=1), 12)
    now = unit_periods(start, when, 12)
    assert now > before
    # A day never costs more than a 28-day month's share, nor less than a 31-day month's.
    assert Fraction(1, 31) <= now - before <= Fraction(1, 28)
