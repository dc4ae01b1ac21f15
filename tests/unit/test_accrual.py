"""Interest accrual: a whole period costs exactly the periodic rate, a part of one never more than its share."""
from __future__ import annotations

from datetime import date
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


def test_a_part_of_a_period_compounds_inside_it() -> None:
    # Half a month at 3 %: (1.03^0.5 - 1) = 1.4889157 %, less than the simple 1.5 %.
    half = interest_between(10**9, 3600, 12, Fraction(0), Fraction(1, 2))
    assert half == 14_889_156
    # Across a due date: half a period on each side, each compounding on its own.
    assert interest_between(10**9, 3600, 12, Fraction(1, 2), Fraction(3, 2)) == 2 * 14_889_156 + 1


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 10**12), st.integers(0, 10_000), st.sampled_from([12, 52, 365]), positions, positions)
def test_never_more_than_the_rate_for_the_time(principal: int, rate: int, ppy: int, a: Fraction, b: Fraction) -> None:
    begin, end = min(a, b), max(a, b)
    got = interest_between(principal, rate, ppy, begin, end)
    r = Fraction(rate, 10_000 * ppy)
    assert 0 <= got <= principal * r * (end - begin)  # compounding inside a period costs less than simple
    # Monotone in the end date, and cutting at a whole period changes nothing but rounding.
    assert interest_between(principal, rate, ppy, begin, end + Fraction(1, 7)) >= got
    middle = Fraction(begin.__floor__() + 1)
    if begin < middle < end:
        parts = interest_between(principal, rate, ppy, begin, middle) + interest_between(principal, rate, ppy,
                                                                                          middle, end)
        assert parts <= got <= parts + 1


def test_the_clock() -> None:
    assert unit_periods(date(2026, 1, 31), date(2026, 2, 28), 12) == 1
    assert unit_periods(date(2026, 1, 31), date(2026, 3, 30), 12) == 1 + Fraction(30, 30)
    assert unit_periods(date(2026, 1, 15), date(2026, 2, 18), 12) == Fraction(11, 10)
    assert unit_periods(date(2026, 1, 1), date(2026, 1, 15), 52) == 2
