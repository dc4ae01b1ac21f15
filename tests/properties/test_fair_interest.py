"""Interest only on the principal actually owed, a schedule that tells the truth, and next due that is due.

The invariants, as a borrower would sign them:

* Paying on time in any pattern (early, partial, lump sums, payoff), the
  payments discounted at the disclosed APR are never worth more than the
  principal received: the IRR of what I pay never exceeds the APR.
* Paying exactly on the due dates costs exactly the disclosed schedule.
* Next due is never more than paying the whole loan off, and paying exactly
  the next due settles that installment and moves next due on.
* Every msat I send is applied or refunded; the loan always carries exactly
  the principal I owe, and whatever I owe can be paid, after which the loan
  is repaid.

Why the first holds (the proof the accrual module cites): accrual restarts at
every payment and every due date; over a stretch of δ ≤ 1 periods a balance
B accrues B((1 + r)^δ − 1), rounded down; each payment pays accrued interest
before principal; and unpaid interest does not accrue. So after every
payment what is owed is at most the actuarial debt D(t) = (D(s) − x)(1 + r)^(t−s)
of the same payments, and the final payoff leaves D ≥ 0: the present value
of the payments at r is at most the principal.
"""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketplace.domain.loans.allocation import LoanState, apply_payment, start, validate
from marketplace.domain.loans.apr import schedule_apr_bps
from marketplace.domain.loans.delinquency import DelinquencyPolicy, late_fees_due
from marketplace.domain.loans.allocation import assess
from marketplace.domain.loans.schedules import (
    Contract,
    Frequency,
    Method,
    Prepayment,
    build_schedule,
    contract_schedule,
)
from tests.properties.loan_patterns import KINDS, START, Run, amount_of, contracts, on_time_run, present_value_msat

EXAMPLES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _total_interest(run: Run) -> int:
    return sum(p.interest_msat for _, p in run.payments)


@EXAMPLES
@given(st.data(), contracts())
def test_an_on_time_borrower_never_pays_more_than_the_disclosed_apr(data: st.DataObject, contract: Contract) -> None:
    run = on_time_run(data, contract)
    assert run.state.is_repaid
    flows = run.cash_flows()
    disclosed_apr = schedule_apr_bps(contract_schedule(contract))
    ppy = contract.periods_per_year
    # The disclosed APR is the schedule's IRR rounded to the nearest basis point, so the IRR of what is paid is
    # at most half a basis point above it (a few msat of present value at high rates) -- up to the schedule's own
    # rounding: it rounds each installment's interest down to the msat, which can put its IRR below the loan's
    # rate (70 bps disclosed as 69 on 12 daily installments of 10,000 sat), while a borrower who pays early meets
    # fewer roundings. At most one msat an installment.
    worth = present_value_msat(flows, contract.start_date, disclosed_apr + Decimal("0.5"), ppy)
    assert worth <= contract.principal_msat + contract.count, (worth - contract.principal_msat, flows)
    at_rate = present_value_msat(flows, contract.start_date, contract.annual_rate_bps, ppy)
    # At the loan's own rate the bound is exact, but for the 50-digit arithmetic (1E-41 seen).
    assert at_rate <= contract.principal_msat + Decimal("1e-9"), (at_rate - contract.principal_msat, flows)
    # Never more interest than the disclosed schedule's, and all principal back exactly.
    assert _total_interest(run) <= contract_schedule(contract).total_interest_msat, [
        (d, p.interest_msat, p.principal_msat) for d, p in run.payments]
    assert sum(p.principal_msat for _, p in run.payments) == contract.principal_msat


@EXAMPLES
@given(contracts(max_count=60))
def test_paying_on_the_due_dates_costs_exactly_the_disclosed_schedule(contract: Contract) -> None:
    disclosed = contract_schedule(contract)
    state = start(contract)
    for installment in disclosed.installments:
        due = state.next_due(installment.due_date)
        assert due == (installment.due_date, installment.total_msat)
        payment = apply_payment(state, installment.total_msat, installment.due_date)
        assert (payment.interest_msat, payment.principal_msat, payment.refund_msat) == (
            installment.interest_msat, installment.principal_msat, 0)
        state = payment.state
    assert state.is_repaid


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 10**10), st.integers(0, 10_000), st.integers(1, 120), st.sampled_from(list(Frequency)))
def test_the_last_annuity_installment_is_never_larger_than_the_others(principal: int, rate: int, count: int,
                                                                       frequency: Frequency) -> None:
    schedule = build_schedule(principal, rate, count, frequency, Method.ANNUITY, START)
    assert schedule.level_payment_msat is not None
    assert all(i.total_msat <= schedule.level_payment_msat for i in schedule.installments)
    assert sum(i.principal_msat for i in schedule.installments) == principal
    assert all(i.principal_msat >= 0 and i.interest_msat >= 0 for i in schedule.installments)
    assert len(schedule.installments) <= count


@EXAMPLES
@given(st.data(), contracts())
def test_next_due_is_due_and_paying_it_moves_it_on(data: st.DataObject, contract: Contract) -> None:
    state = start(contract)
    on = contract.start_date
    for _ in range(data.draw(st.integers(1, 12))):
        if state.is_repaid:
            break
        due = state.next_due(on)
        assert due is not None
        assert 0 < due[1] <= state.payoff_msat(on)
        # Pay it on a random day no later than its date (never late).
        pay_on = on + timedelta(days=data.draw(st.integers(0, max((due[0] - on).days, 0))))
        amount = state.next_due(pay_on)
        assert amount is not None
        number = next(i.number for i in state.installments if not i.is_paid)
        payment = apply_payment(state, amount[1], pay_on)
        assert payment.refund_msat == 0
        state = payment.state
        settled = next((i for i in state.installments if i.number == number), None)
        assert settled is None or settled.is_paid or state.is_repaid, (number, state.installments)
        following = state.next_due(pay_on)
        if following is not None:
            assert next(i.number for i in state.installments if not i.is_paid) > number
        on = pay_on


policies = st.builds(DelinquencyPolicy, grace_days=st.integers(0, 15), default_after_days=st.just(60),
                     write_off_after_days=st.just(120), late_fee_bps=st.integers(0, 1000),
                     late_fee_flat_msat=st.sampled_from([0, 1, 500_000]))


@EXAMPLES
@given(st.data(), contracts(max_count=12), policies)
def test_every_msat_is_accounted_for_and_any_loan_can_end(data: st.DataObject, contract: Contract,
                                                          policy: DelinquencyPolicy) -> None:
    """Any pattern at all, late ones included, with late fees: nothing lost, nothing stuck, and every msat of
    interest and late fee paid shows as paid on an installment (the statement a borrower reads adds up)."""
    state: LoanState = start(contract)
    on = contract.start_date
    paid_interest = paid_fees = paid_principal = 0
    for _ in range(data.draw(st.integers(1, 15))):
        on += timedelta(days=data.draw(st.integers(0, 70)))
        if data.draw(st.booleans()):
            fees = late_fees_due(state.installments, on, policy)
            state = assess(state, fees, on)
            validate(state)
        kind = data.draw(st.sampled_from(KINDS + ("over",)))
        amount = amount_of(data, kind, state, on) if kind != "over" else state.payoff_msat(on) + 12_345
        before = state.payoff_msat(on)
        payment = apply_payment(state, amount, on)
        validate(payment.state)
        assert payment.applied_msat + payment.refund_msat == amount
        assert payment.late_fee_msat + payment.interest_msat + payment.principal_msat == payment.applied_msat
        assert payment.state.payoff_msat(on) == before - payment.applied_msat
        assert payment.refund_msat == 0 or payment.fully_repaid
        state = payment.state
        paid_interest += payment.interest_msat
        paid_fees += payment.late_fee_msat
        paid_principal += payment.principal_msat
        rows = state.installments
        assert sum(i.interest_paid_msat for i in rows) == paid_interest
        assert sum(i.late_fee_paid_msat for i in rows) == paid_fees
        # Principal paid ahead of the schedule leaves the installments it replaces (the term shrinks).
        assert sum(i.principal_paid_msat for i in rows) <= paid_principal
        if state.is_repaid:
            break
        due = state.next_due(on)
        assert due is not None and due[1] > 0
    if not state.is_repaid:
        final = apply_payment(state, state.payoff_msat(on), on)
        assert final.fully_repaid and final.refund_msat == 0


def test_issue_example_prepaying_half_on_the_first_due_date() -> None:
    """1,000,000 sat at 36 %, 12 monthly; 500,000 sat extra with the first installment.

    The old rules charged 177,124 sat of interest (the remaining installments
    kept interest on the original balance). Interest on the real balance, the
    installment kept and the term shortened, is 67,357.823 sat — and an
    independent float model of "interest on what is owed, paid monthly" agrees.
    """
    contract = Contract(10**9, 3600, 12, Frequency.MONTHLY, Method.ANNUITY, date(2026, 1, 15))
    state = start(contract)
    first = state.installments[0]
    payment = apply_payment(state, first.due_msat + 500_000_000, first.due_date)
    interest = payment.interest_msat
    state = payment.state
    while not state.is_repaid:
        row = next(i for i in state.installments if not i.is_paid)
        due = state.next_due(row.due_date)
        assert due is not None
        payment = apply_payment(state, due[1], row.due_date)
        interest += payment.interest_msat
        state = payment.state
    assert interest == 67_357_823
    # The same in floats: monthly interest on the balance, the level payment kept.
    level = contract.level_msat
    assert level is not None
    balance = 10**9 * 1.03 - level - 500_000_000
    model = 10**9 * 0.03
    while balance > 0:
        period_interest = balance * 0.03
        model += period_interest
        balance = balance + period_interest - level
    assert abs(model - interest) < 10


def test_issue_example_150_msat_left_owes_interest_on_150_msat() -> None:
    """100,000 sat at 60 %, 2 monthly, all but 150 msat prepaid on day 0: the rest owes 15 msat, not 2,561 sat."""
    contract = Contract(100_000_000, 6000, 2, Frequency.MONTHLY, Method.ANNUITY, date(2026, 1, 1))
    state = start(contract)
    payment = apply_payment(state, 100_000_000 - 150, date(2026, 1, 1))
    assert (payment.interest_msat, payment.principal_msat) == (0, 100_000_000 - 150)
    left = payment.state
    assert left.balance.principal_msat == 150
    # Two months at 5 % a month on 150 msat: 15 msat.
    assert left.payoff_msat(date(2026, 3, 1)) == 165
    assert left.next_due(date(2026, 3, 1)) == (date(2026, 3, 1), 165)
    assert left.payoff_msat(date(2026, 1, 1)) == 150


def test_a_loan_repaid_the_same_day_costs_no_interest() -> None:
    contract = Contract(100_000_000, 3650, 10, Frequency.WEEKLY, Method.ANNUITY, date(2026, 5, 1))
    state = start(contract)
    assert state.payoff_msat(date(2026, 5, 1)) == 100_000_000
    payment = apply_payment(state, 100_000_000, date(2026, 5, 1))
    assert payment.fully_repaid and payment.interest_msat == 0


def test_paying_the_next_due_four_times_early_moves_it_each_time() -> None:
    """The old rules sent an early "next due" to the last installments, so the same line stayed on screen."""
    contract = Contract(50_000_000, 2400, 8, Frequency.WEEKLY, Method.ANNUITY, date(2026, 6, 1))
    state = start(contract)
    today = date(2026, 6, 2)
    seen = []
    for _ in range(4):
        due = state.next_due(today)
        assert due is not None
        seen.append(due[0])
        state = apply_payment(state, due[1], today).state
    assert seen == sorted(set(seen)) and len(seen) == 4


def test_late_fees_alone_can_be_paid_and_then_the_loan_is_repaid() -> None:
    contract = Contract(20_000_000, 1200, 2, Frequency.MONTHLY, Method.ANNUITY, date(2026, 1, 1))
    policy = DelinquencyPolicy(grace_days=5, late_fee_bps=200)
    state = start(contract)
    late_day = date(2026, 2, 20)
    state = assess(state, late_fees_due(state.installments, late_day, policy), late_day)
    fees = state.late_fees_unpaid_msat
    assert fees > 0
    # Principal and interest paid, the fee not (a payment of exactly the rest, fees excluded).
    payoff = state.payoff_msat(late_day)
    state = apply_payment(state, payoff - fees, late_day).state
    assert not state.is_repaid and state.balance.principal_msat > 0 or state.late_fees_unpaid_msat > 0
    due = state.next_due(late_day)
    assert due is not None and due[1] == state.payoff_msat(late_day)
    assert apply_payment(state, due[1], late_day).fully_repaid


def test_reduce_installment_keeps_the_end_date_and_lowers_the_installments() -> None:
    kept_term = Contract(60_000_000, 2400, 6, Frequency.MONTHLY, Method.ANNUITY, date(2026, 1, 1),
                         Prepayment.REDUCE_INSTALLMENT)
    state = start(kept_term)
    first = state.installments[0]
    after = apply_payment(state, first.due_msat + 20_000_000, first.due_date).state
    open_rows = [i for i in after.installments if not i.is_paid]
    assert open_rows[-1].due_date == kept_term.due_dates[-1]
    assert len(open_rows) == 5
    assert max(i.due_msat for i in open_rows) < first.due_msat
    shortened = apply_payment(start(Contract(60_000_000, 2400, 6, Frequency.MONTHLY, Method.ANNUITY,
                                             date(2026, 1, 1))), first.due_msat + 20_000_000,
                              first.due_date).state
    assert len([i for i in shortened.installments if not i.is_paid]) < 5


@EXAMPLES
@given(st.data(), contracts())
def test_a_part_payment_lowers_next_due_by_exactly_what_was_paid(data: st.DataObject, contract: Contract) -> None:
    """Paying part of what is next due leaves exactly the rest due, on the same date, however small the parts."""
    state = start(contract)
    on = contract.start_date
    for _ in range(data.draw(st.integers(1, 30))):
        on += timedelta(days=data.draw(st.integers(0, 3)))
        due = state.next_due(on)
        if due is None:
            break
        if due[0] <= on or due[1] < 2:  # overdue, or too little to split: settle it and move on
            state = apply_payment(state, due[1], on).state
            continue
        part = data.draw(st.integers(1, due[1] - 1))
        state = apply_payment(state, part, on).state
        after = state.next_due(on)
        assert after == (due[0], due[1] - part), (due, part, after)
