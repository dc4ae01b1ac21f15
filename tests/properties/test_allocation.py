"""Repayment allocation: every msat received is accounted for, no note goes negative."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketplace.domain.errors import InvalidInput
from marketplace.domain.loans.allocation import (
    Allocation,
    InstallmentState,
    NoteState,
    allocate,
    apply_allocation,
    installment_states,
    next_due,
    outstanding_msat,
)
from marketplace.domain.loans.delinquency import DelinquencyPolicy, assess_late_fees, late_fees_due
from marketplace.domain.loans.schedules import Frequency, Method, build_schedule
from marketplace.domain.split import split

START = date(2026, 3, 1)
PAYMENT_KINDS = ["partial", "next_due", "payoff", "over", "tiny", "large", "zero"]


@dataclass(frozen=True)
class Loan:
    installments: list[InstallmentState]
    notes: list[NoteState]
    frequency: Frequency


@st.composite
def loans(draw: st.DrawFn) -> Loan:
    frequency = draw(st.sampled_from(list(Frequency)))
    method = draw(st.sampled_from(list(Method)))
    rate = draw(st.integers(min_value=0, max_value=10_000))
    count = draw(st.integers(min_value=1, max_value=36))
    note_count = draw(st.integers(min_value=1, max_value=200))
    principal = draw(
        st.one_of(
            st.integers(min_value=note_count, max_value=note_count + 5_000),
            st.integers(min_value=max(note_count, 10**7), max_value=10**11),
        )
    )
    weights = draw(st.lists(st.integers(0, 10**6), min_size=note_count, max_size=note_count))
    if sum(weights) == 0:
        weights = [1] * note_count
    # Every note at least 1 msat; the rest shared by random weights.
    note_amounts = [1 + part for part in split(principal - note_count, weights)]
    schedule = build_schedule(principal, rate, count, frequency, method, START)
    installments = installment_states(
        [(i.number, i.due_date, i.principal_msat, i.interest_msat) for i in schedule.installments]
    )
    notes = [NoteState(100 + k, amount, amount) for k, amount in enumerate(note_amounts)]
    return Loan(installments, notes, frequency)


payments = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=60),  # days that pass before the payment
        st.sampled_from(PAYMENT_KINDS),
        st.integers(min_value=0, max_value=10**6),  # how much of the due amount, in millionths
        st.booleans(),  # the daily job assesses late fees first
    ),
    min_size=1,
    max_size=25,
)

policies = st.builds(
    DelinquencyPolicy,
    grace_days=st.integers(0, 15),
    default_after_days=st.just(60),
    write_off_after_days=st.just(120),
    late_fee_bps=st.integers(0, 1000),
    late_fee_flat_msat=st.sampled_from([0, 1, 500_000]),
)


def _principal_unpaid(installments: list[InstallmentState]) -> int:
    return sum(i.principal_unpaid_msat for i in installments)


def _check(
    allocation: Allocation,
    received: int,
    before: tuple[list[InstallmentState], list[NoteState]],
    after: tuple[list[InstallmentState], list[NoteState]],
    as_of: date,
    fee_bps: int,
) -> None:
    installments, notes = before
    new_installments, new_notes = after
    a = allocation
    assert a.received_msat == received
    assert a.applied_msat + a.refund_msat == received
    assert a.late_fee_msat + a.interest_msat + a.principal_msat == a.applied_msat
    assert a.service_fee_msat == a.applied_msat * fee_bps // 10_000
    assert sum(s.cash_msat for s in a.shares) == a.lenders_msat
    assert sum(s.cash_msat for s in a.shares) + a.service_fee_msat + a.refund_msat == received
    assert sum(s.principal_msat for s in a.shares) == a.principal_msat
    assert sum(p.total_msat for p in a.per_installment) == a.applied_msat
    for share, note in zip(a.shares, notes):
        assert share.note_id == note.note_id
        assert share.cash_msat >= 0
        assert 0 <= share.principal_msat <= note.principal_outstanding_msat
        assert share.income_msat == share.cash_msat - share.principal_msat
        if a.lenders_msat >= a.principal_msat:
            assert share.income_msat >= 0
    assert all(n.principal_outstanding_msat >= 0 for n in new_notes)
    assert sum(n.principal_outstanding_msat for n in new_notes) == _principal_unpaid(new_installments)
    # The borrower's payoff amount goes down by exactly what was applied.
    assert outstanding_msat(new_installments, as_of) == outstanding_msat(installments, as_of) - a.applied_msat
    assert a.fully_repaid == all(i.is_paid for i in new_installments)
    if a.refund_msat:
        assert a.fully_repaid


@settings(max_examples=150, deadline=None)
@given(
    loan=loans(),
    steps=payments,
    fee_bps=st.sampled_from([0, 1, 100, 250, 10_000]),
    policy=policies,
    extra=st.integers(min_value=0, max_value=10**6),
)
def test_money_in_equals_money_out(
    loan: Loan,
    steps: list[tuple[int, str, int, bool]],
    fee_bps: int,
    policy: DelinquencyPolicy,
    extra: int,
) -> None:
    installments, notes = loan.installments, loan.notes
    original = {n.note_id: n.original_principal_msat for n in notes}
    received_total = cash_total = fee_total = refund_total = 0
    principal_back = {n.note_id: 0 for n in notes}
    as_of = START

    def pay(amount: int) -> Allocation:
        nonlocal installments, notes, received_total, cash_total, fee_total, refund_total
        allocation = allocate(amount, installments, notes, fee_bps, as_of)
        after = apply_allocation(installments, notes, allocation)
        _check(allocation, amount, (installments, notes), after, as_of, fee_bps)
        installments, notes = after
        received_total += amount
        cash_total += sum(s.cash_msat for s in allocation.shares)
        fee_total += allocation.service_fee_msat
        refund_total += allocation.refund_msat
        for share in allocation.shares:
            principal_back[share.note_id] += share.principal_msat
        return allocation

    for days, kind, millionths, assess in steps:
        as_of += timedelta(days=days)
        if assess:
            fees = late_fees_due(installments, as_of, policy)
            installments = assess_late_fees(installments, fees)
            assert late_fees_due(installments, as_of, policy) == []
        owed = outstanding_msat(installments, as_of)
        upcoming = next_due(installments, as_of)
        due = upcoming[1] if upcoming else 0
        amount = {
            "partial": due * millionths // 10**6,
            "next_due": due,
            "payoff": owed,
            "over": owed + millionths,
            "tiny": millionths % 7,
            "large": owed * millionths // 10**6 + millionths,
            "zero": 0,
        }[kind]
        allocation = pay(amount)
        if kind == "payoff" and owed > 0:
            assert allocation.fully_repaid and allocation.refund_msat == 0
        if kind == "over":
            assert allocation.fully_repaid and allocation.refund_msat == millionths
        if kind == "next_due" and upcoming and upcoming[0] <= as_of:
            # Paying the amount shown clears every overdue amount.
            assert all(i.is_paid for i in installments if i.due_date <= as_of)
        if allocation.fully_repaid:
            break

    # Paying what outstanding_msat says repays the loan, to the msat.
    owed = outstanding_msat(installments, as_of)
    final = pay(owed)
    assert final.fully_repaid and final.refund_msat == 0
    assert all(n.principal_outstanding_msat == 0 for n in notes)
    assert principal_back == original
    assert next_due(installments, as_of) is None
    # A payment after the loan is repaid comes back in full.
    late = pay(extra)
    assert late.refund_msat == extra and late.applied_msat == 0 and late.fully_repaid
    assert all(s.cash_msat == 0 for s in late.shares)

    assert received_total == cash_total + fee_total + refund_total


def _loan(principal: int = 12_000, count: int = 3, rate: int = 1200) -> list[InstallmentState]:
    schedule = build_schedule(principal, rate, count, Frequency.MONTHLY, Method.EQUAL_PRINCIPAL, START)
    return installment_states(
        [(i.number, i.due_date, i.principal_msat, i.interest_msat) for i in schedule.installments]
    )


NOTES = [NoteState(1, 9_000, 9_000), NoteState(2, 3_000, 3_000)]
BIG_NOTES = [NoteState(1, 900_000, 900_000), NoteState(2, 300_000, 300_000)]


def test_waterfall_order_fee_interest_principal_oldest_first() -> None:
    installments = _loan(1_200_000)  # 400,000 principal each; interest 12,000 / 8,000 / 4,000
    installments[0] = replace(installments[0], late_fee_msat=500)
    as_of = installments[1].due_date  # 1 and 2 overdue, 3 current
    allocation = allocate(413_000, installments, BIG_NOTES, 0, as_of)
    first, second = allocation.per_installment
    assert (first.number, first.late_fee_msat, first.interest_msat, first.principal_msat) == (1, 500, 12_000, 400_000)
    assert (second.number, second.late_fee_msat, second.interest_msat, second.principal_msat) == (2, 0, 500, 0)
    assert allocation.refund_msat == 0 and not allocation.fully_repaid


def test_early_payment_pays_current_then_prepays_from_the_end_and_waives_interest() -> None:
    installments = _loan(1_200_000)
    as_of = START  # nothing overdue; installment 1 is current
    allocation = allocate(412_000 + 400_000 + 1, installments, BIG_NOTES, 0, as_of)
    by_number = {a.number: a for a in allocation.per_installment}
    assert by_number[1].interest_msat == 12_000 and by_number[1].principal_msat == 400_000
    assert by_number[3].principal_msat == 400_000 and by_number[3].waive_interest
    assert by_number[2].principal_msat == 1 and not by_number[2].waive_interest
    # Payoff: the current installment's interest plus all principal; later interest is waived.
    assert outstanding_msat(installments, as_of) == 12_000 + 1_200_000


def test_payment_after_repayment_is_refunded() -> None:
    installments = _loan()
    owed = outstanding_msat(installments, START)
    allocation = allocate(owed, installments, NOTES, 100, START)
    installments, notes = apply_allocation(installments, NOTES, allocation)
    assert allocation.fully_repaid
    again = allocate(5_000, installments, notes, 100, START)
    assert (again.refund_msat, again.applied_msat, again.service_fee_msat) == (5_000, 0, 0)
    # Every note is at zero principal: shares fall back to the original weights, and are all 0.
    assert [s.cash_msat for s in again.shares] == [0, 0]


def test_service_fee_is_rounded_down_and_taken_from_the_lenders() -> None:
    installments = _loan()
    allocation = allocate(4_119, installments, NOTES, 250, installments[0].due_date)
    assert allocation.service_fee_msat == 4_119 * 250 // 10_000 == 102
    assert allocation.lenders_msat == 4_017


def test_income_never_negative_when_the_payment_covers_the_fee() -> None:
    # Largest remainder is not monotone: split(5) gives the third note 0
    # while split(4) gives it 1, so splitting the cash total directly would
    # give that note -1 msat of income. Splitting the income separately cannot.
    assert split(5, [6, 10, 3, 10])[2] == 0 and split(4, [6, 10, 3, 10])[2] == 1
    notes = [NoteState(k, w, w) for k, w in enumerate([6, 10, 3, 10], start=1)]
    installments = [InstallmentState(1, START, 29, 1, 0, 25, 0, 0)]
    allocation = allocate(5, installments, notes, 0, START)  # interest 1, principal 4
    assert allocation.principal_msat == 4 and allocation.lenders_msat == 5
    assert [s.principal_msat for s in allocation.shares] == [1, 1, 1, 1]
    assert all(s.income_msat >= 0 for s in allocation.shares)
    assert sum(s.cash_msat for s in allocation.shares) == 5


def test_a_note_principal_share_never_exceeds_its_outstanding() -> None:
    # Tiny remainders: 3 msat of principal over notes of 1, 1 and 1,000,000 msat.
    notes = [NoteState(1, 1, 1), NoteState(2, 1, 1), NoteState(3, 1_000_000, 1_000_000)]
    installments = [InstallmentState(1, START, 1_000_002, 0, 0, 0, 0, 0)]
    for amount in range(0, 1_000_003, 99_991):
        allocation = allocate(amount, installments, notes, 0, START)
        for share, note in zip(allocation.shares, notes):
            assert share.principal_msat <= note.principal_outstanding_msat


def test_refusals() -> None:
    installments = _loan()
    with pytest.raises(InvalidInput, match="cannot be negative"):
        allocate(-1, installments, NOTES, 0, START)
    with pytest.raises(InvalidInput, match="service fee"):
        allocate(1, installments, NOTES, 10_001, START)
    with pytest.raises(InvalidInput, match="without notes"):
        allocate(1, installments, [], 0, START)
    with pytest.raises(InvalidInput, match="less than the principal"):
        allocate(10**9, installments, [NoteState(1, 5, 12_000)], 0, START)
