"""Schedules: principal parts add up exactly, rounding is where the module says it is.

Interest is rounded DOWN (in the borrower's favour), the annuity payment UP;
so the balance never runs behind the exact annuity, the last installment is
never larger than the others, and a tiny loan may end before its count.
"""
from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketplace.domain.errors import InvalidInput
from marketplace.domain.loans.schedules import (
    Frequency,
    Method,
    Schedule,
    annuity_payment_msat,
    build_schedule,
    due_dates,
)

starts = st.dates(min_value=date(2020, 1, 1), max_value=date(2040, 12, 31))
frequencies = st.sampled_from(list(Frequency))
methods = st.sampled_from(list(Method))


def _check_declining_balance_interest(schedule: Schedule) -> None:
    rate = Fraction(schedule.annual_rate_bps, 10_000 * schedule.frequency.periods_per_year)
    balance = schedule.principal_msat
    for inst in schedule.installments:
        # Independent of the module: a whole period's interest, rounded down.
        assert inst.interest_msat == int((balance * rate) // 1)
        balance -= inst.principal_msat
    assert balance == 0


@settings(max_examples=300, deadline=None)
@given(
    principal=st.integers(min_value=1, max_value=10**13),
    rate=st.integers(min_value=0, max_value=20_000),
    count=st.integers(min_value=1, max_value=400),
    frequency=frequencies,
    method=methods,
    start=starts,
)
def test_schedule_invariants(
    principal: int, rate: int, count: int, frequency: Frequency, method: Method, start: date
) -> None:
    schedule = build_schedule(principal, rate, count, frequency, method, start)
    items = schedule.installments
    assert 1 <= len(items) <= count
    realistic = count <= (60 if frequency is Frequency.MONTHLY else 365)  # the term cap in limits.py
    if principal >= 10**7 and realistic and rate <= 6000:
        # Only msat-sized loans run out of principal early (and 365 months at 60 %, found by hypothesis:
        # the first principal part is 1e-9 of the loan, so the rounding up of the level repays it early).
        assert len(items) == count
    assert [i.number for i in items] == list(range(1, len(items) + 1))
    assert sum(i.principal_msat for i in items) == principal
    assert all(i.principal_msat >= 0 and i.interest_msat >= 0 for i in items)
    assert all(a.due_date < b.due_date for a, b in zip(items, items[1:]))
    assert items[0].due_date > start
    assert [i.due_date for i in items] == due_dates(start, frequency, count)[:len(items)]
    assert all(i.total_msat > 0 for i in items)
    assert schedule.total_msat == principal + schedule.total_interest_msat
    _check_declining_balance_interest(schedule)
    if rate == 0:
        assert schedule.total_interest_msat == 0
        if method is Method.EQUAL_PRINCIPAL:
            assert max(i.principal_msat for i in items) - min(i.principal_msat for i in items) <= 1


# The platform's realistic region: at least 10,000 sat, at most 60 % a year,
# at most 365 daily or weekly installments or 60 monthly ones (see the term
# cap in limits.py). Outside it, the principal part of an early installment can
# be a fraction of a msat and no integer level payment amortizes the loan in
# exactly `count` periods; the general test above still holds there.
@settings(max_examples=300, deadline=None)
@given(
    principal=st.integers(min_value=10**7, max_value=10**13),
    rate=st.integers(min_value=1, max_value=6000),
    frequency_count=st.one_of(
        st.tuples(st.sampled_from([Frequency.DAILY, Frequency.WEEKLY]), st.integers(1, 365)),
        st.tuples(st.just(Frequency.MONTHLY), st.integers(1, 60)),
    ),
    start=starts,
)
def test_annuity_is_level_except_the_last(
    principal: int, rate: int, frequency_count: tuple[Frequency, int], start: date
) -> None:
    frequency, count = frequency_count
    schedule = build_schedule(principal, rate, count, frequency, Method.ANNUITY, start)
    level = schedule.level_payment_msat
    assert level is not None
    periods = frequency.periods_per_year
    r = Fraction(rate, 10_000 * periods)
    exact = principal * r / (1 - (1 + r) ** -count)
    assert level == -(-exact.numerator // exact.denominator)  # rounded up
    *body, last = schedule.installments
    assert len(schedule.installments) == count
    assert all(i.total_msat == level for i in body)
    # Never larger; smaller only by the rounding carried along the balance: each period repays
    # less than 1 msat of payment rounding up and less than 1 msat of interest rounding down,
    # each compounding at the loan's rate until the end.
    carried = sum((1 + r) ** k for k in range(count + 1))
    assert level - 2 * carried - 2 <= last.total_msat <= level


@settings(max_examples=200, deadline=None)
@given(
    principal=st.integers(min_value=1, max_value=10**13),
    rate=st.integers(min_value=0, max_value=20_000),
    count=st.integers(min_value=1, max_value=400),
    frequency=frequencies,
    start=starts,
)
def test_equal_principal_parts_are_the_split(
    principal: int, rate: int, count: int, frequency: Frequency, start: date
) -> None:
    schedule = build_schedule(principal, rate, count, frequency, Method.EQUAL_PRINCIPAL, start)
    parts = [i.principal_msat for i in schedule.installments]
    assert max(parts) - min(parts) <= 1
    assert parts == sorted(parts, reverse=True)  # the extra msats go first
    interests = [i.interest_msat for i in schedule.installments]
    assert interests == sorted(interests, reverse=True)  # balance only declines


def test_realistic_loans_are_level() -> None:
    # 1,000,000 sat, 24 % a year, 12 monthly installments.
    schedule = build_schedule(10**9, 2400, 12, Frequency.MONTHLY, Method.ANNUITY, date(2026, 1, 15))
    totals = [i.total_msat for i in schedule.installments]
    assert totals[:-1] == [94_559_597] * 11
    assert totals[0] - 12 <= totals[-1] <= totals[0]


def test_tiny_loans_with_many_installments_stay_sane() -> None:
    # 1 sat at 100 % a year over 100 months: the payment is a few msat, rounded up, and interest
    # rounded down (83.3 msat -> 83 msat a month is a big share here), so it ends early.
    schedule = build_schedule(1000, 10_000, 100, Frequency.MONTHLY, Method.ANNUITY, date(2026, 1, 1))
    assert all(i.total_msat > 0 for i in schedule.installments)
    assert sum(i.principal_msat for i in schedule.installments) == 1000
    assert schedule.count <= 100
    # Fewer msat than installments: the loan ends when they are repaid, sums still exact.
    schedule = build_schedule(3, 500, 5, Frequency.DAILY, Method.EQUAL_PRINCIPAL, date(2026, 1, 1))
    assert [i.principal_msat for i in schedule.installments] == [1, 1, 1]


def test_monthly_dates_keep_the_original_day() -> None:
    assert due_dates(date(2027, 1, 31), Frequency.MONTHLY, 4) == [
        date(2027, 2, 28),
        date(2027, 3, 31),
        date(2027, 4, 30),
        date(2027, 5, 31),
    ]
    assert due_dates(date(2028, 1, 31), Frequency.MONTHLY, 2) == [date(2028, 2, 29), date(2028, 3, 31)]
    assert due_dates(date(2026, 12, 15), Frequency.MONTHLY, 2) == [date(2027, 1, 15), date(2027, 2, 15)]
    assert due_dates(date(2026, 1, 1), Frequency.WEEKLY, 2) == [date(2026, 1, 8), date(2026, 1, 15)]
    assert due_dates(date(2026, 1, 1), Frequency.DAILY, 2) == [date(2026, 1, 2), date(2026, 1, 3)]


def test_zero_rate_annuity_is_level_with_a_smaller_last() -> None:
    schedule = build_schedule(10, 0, 3, Frequency.WEEKLY, Method.ANNUITY, date(2026, 1, 1))
    assert [i.principal_msat for i in schedule.installments] == [4, 4, 2]
    assert schedule.total_interest_msat == 0


def test_single_installment() -> None:
    schedule = build_schedule(1_000_000, 1200, 1, Frequency.MONTHLY, Method.ANNUITY, date(2026, 1, 1))
    (only,) = schedule.installments
    assert only.principal_msat == 1_000_000
    assert only.interest_msat == 10_000
    assert annuity_payment_msat(1_000_000, 1200, 1, 12) == 1_010_000
    assert only.due_date == date(2026, 1, 1) + timedelta(days=31)


@pytest.mark.parametrize(
    ("principal", "rate", "count", "message"),
    [
        (0, 100, 12, "more than 0 sat"),
        (-5, 100, 12, "more than 0 sat"),
        (1000, -1, 12, "cannot be negative"),
        (1000, 100, 0, "at least one installment"),
        (1000, 100, 1001, "at most 1,000 installments"),
    ],
)
def test_refusals(principal: int, rate: int, count: int, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        build_schedule(principal, rate, count, Frequency.MONTHLY, Method.ANNUITY, date(2026, 1, 1))
