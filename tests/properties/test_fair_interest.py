"""Interest only on the principal actually owed, a schedule that tells the truth, and next due that is due.

The invariants, as a borrower would sign them:

* Paying on time in any pattern (early, partial, lump sums, payoff), I never
  pay more than the disclosed APR charges by the U.S. Rule (Regulation Z,
  appendix J: simple interest on the principal for the time it is owed,
  payments to interest first): the APR of what I pay never exceeds the
  disclosed one.
* Paying exactly on the due dates costs exactly the disclosed schedule.
* Next due is never more than paying the whole loan off, and paying exactly
  the next due settles that installment and moves next due on.
* Every msat I send is applied or refunded; the loan always carries exactly
  the principal I owe, and whatever I owe can be paid, after which the loan
  is repaid.

Why the first holds: the loan's accrual *is* the U.S. Rule at its rate
(accrual.py), each accrual rounded down, so after every payment what is owed
is at most what the rule leaves owed; the final payoff leaves the rule's
balance ≥ 0. (The actuarial present value is not the measure any more: simple
interest paid mid-period can put it a second-order amount above the
principal, while compounding inside a period made the interest depend on how
often the borrower paid — issue 18.)
"""
from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

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
from tests.properties.loan_patterns import KINDS, START, Run, amount_of, contracts, on_time_run, us_rule_left_msat

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
    # At the loan's own rate the U.S. Rule leaves nothing overpaid: every accrual is that rule's, rounded down.
    at_rate = us_rule_left_msat(contract.principal_msat, flows, contract.start_date,
                                Fraction(contract.annual_rate_bps), ppy)
    assert at_rate >= 0, (float(at_rate), flows)
    # The disclosed APR is the schedule's rate rounded to the nearest basis point (half a bp of rounding),
    # and the schedule rounds each installment's interest down, which can put its rate below the loan's
    # (70 bps disclosed as 69 on 12 daily installments of 10,000 sat): at most one msat an installment.
    at_apr = us_rule_left_msat(contract.principal_msat, flows, contract.start_date,
                               disclosed_apr + Fraction(1, 2), ppy)
    assert at_apr >= -contract.count, (float(at_apr), flows)
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
    """1,000,000 sat at 36 %, 12 monthly; 500,000 sat extra with the first installment, then the level
    installment on every due date until the loan is repaid.

    The old rules charged 177,124 sat of interest (the remaining installments
    kept interest on the original balance). Interest on the real balance is
    67,357.823 sat — and an independent float model of "interest on what is
    owed, paid monthly" agrees. The extra now settles the next installments
    ahead (issue 18), but interest depends only on when the money came, so
    the same payments cost the same.
    """
    contract = Contract(10**9, 3600, 12, Frequency.MONTHLY, Method.ANNUITY, date(2026, 1, 15))
    level = contract.level_msat
    assert level is not None
    state = start(contract)
    first = state.installments[0]
    payment = apply_payment(state, first.due_msat + 500_000_000, first.due_date)
    interest = payment.interest_msat
    state = payment.state
    for due_date in contract.due_dates[1:]:
        if state.is_repaid:
            break
        payment = apply_payment(state, min(level, state.payoff_msat(due_date)), due_date)
        interest += payment.interest_msat
        state = payment.state
    assert state.is_repaid
    assert interest == 67_357_823
    # The same in floats: monthly interest on the balance, the level payment kept.
    balance = 10**9 * 1.03 - level - 500_000_000
    model = 10**9 * 0.03
    while balance > 0:
        period_interest = balance * 0.03
        model += period_interest
        balance = balance + period_interest - level
    assert abs(model - interest) < 10


def test_a_lump_sum_settles_the_next_installments_and_nothing_is_due_until_the_first_left() -> None:
    """The same 500,000 sat extra settles installments 2 to 5 ahead (all principal: the interest to date
    went with installment 1) and part of 6, so nothing is due until installment 6's date, and the
    installments after keep their amount (reduce term): the loan ends sooner."""
    contract = Contract(10**9, 3600, 12, Frequency.MONTHLY, Method.ANNUITY, date(2026, 1, 15))
    level = contract.level_msat
    assert level is not None
    state = start(contract)
    first = state.installments[0]
    payment = apply_payment(state, first.due_msat + 500_000_000, first.due_date)
    assert (payment.interest_msat, payment.refund_msat) == (first.interest_msat, 0)
    after = payment.state
    settled = [i.number for i in after.installments if i.is_paid]
    assert settled == [1, 2, 3, 4, 5]
    sixth = after.installments[5]
    assert sixth.paid_msat == 500_000_000 - 4 * level and sixth.due_msat == level
    assert after.next_due(first.due_date) == (sixth.due_date, level - sixth.paid_msat)
    assert after.days_past_due(contract.due_dates[4]) == 0
    assert after.balance.principal_msat == 10**9 - (first.due_msat - first.interest_msat) - 500_000_000


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
    """20,000,000 msat extra with the first installment settles installment 2 ahead (all principal) and pays
    part of 3; with "lower the installments" the ones after are smaller, with "shorten the loan" they keep
    their amount and the last one shrinks (by the interest installment 2 did not cost)."""
    kept_term = Contract(60_000_000, 2400, 6, Frequency.MONTHLY, Method.ANNUITY, date(2026, 1, 1),
                         Prepayment.REDUCE_INSTALLMENT)
    state = start(kept_term)
    first = state.installments[0]
    after = apply_payment(state, first.due_msat + 20_000_000, first.due_date).state
    assert [i.number for i in after.installments if i.is_paid] == [1, 2]
    open_rows = [i for i in after.installments if not i.is_paid]
    assert open_rows[-1].due_date == kept_term.due_dates[-1]
    assert [i.number for i in open_rows] == [3, 4, 5, 6]
    assert max(i.due_msat for i in open_rows[1:]) < first.due_msat
    shortened = apply_payment(start(Contract(60_000_000, 2400, 6, Frequency.MONTHLY, Method.ANNUITY,
                                             date(2026, 1, 1))), first.due_msat + 20_000_000,
                              first.due_date).state
    open_shortened = [i for i in shortened.installments if not i.is_paid]
    assert all(i.due_msat == first.due_msat for i in open_shortened[:-1])
    assert open_shortened[-1].due_msat < first.due_msat
    # Same money, same dates: lowering the installments spreads what shortening takes off the last one.
    assert sum(i.due_msat for i in open_shortened) <= sum(i.due_msat for i in open_rows)


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
