"""Outcomes that do not depend on how the money is sent (issue 18).

The rules, as a borrower and a lender would sign them:

* Frequency: payments that reduce no principal do not change the loan's
  total interest (the rule allows one msat of rounding each; accrual
  restarts only when principal changes, so there is none); the interest of
  a stretch of time depends only on the principal owed over it and its
  length.
* Split: the state after a day's payments depends only on their total: any
  split of it into k payments gives the same installments, next due, days
  past due and balance, up to k msat of rounding.
* Ahead is never late: a borrower who owes no more principal than the
  disclosed schedule leaves after the installments due so far is never late
  and is never charged a late fee.
* Charges round down: every late fee is at most its exact amount.
"""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketplace.domain.loans.allocation import LoanState, Payment, apply_payment, assess, refresh, start, validate
from marketplace.domain.loans.delinquency import DelinquencyPolicy, late_fee_for, late_fees_due
from marketplace.domain.loans.schedules import Contract, Frequency, Method, Prepayment, contract_schedule
from tests.properties.loan_patterns import KINDS, amount_of, contracts

EXAMPLES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
POLICY = DelinquencyPolicy(grace_days=3, default_after_days=60, write_off_after_days=120, late_fee_bps=500,
                           late_fee_flat_msat=1_000)


def _pay_due_dates(contract: Contract, tiny_days: dict[int, int]) -> tuple[int, int]:
    """Pay what is next due on each due date, plus `tiny_days` (day offset -> msat) of payments that pay only
    accrued interest; the loan's total interest and the number of tiny payments made."""
    state = start(contract)
    interest = made = 0
    events = sorted({(contract.start_date + timedelta(days=d)) for d in tiny_days} | set(contract.due_dates))
    for on in events:
        if state.is_repaid:
            break
        tiny = tiny_days.get((on - contract.start_date).days, 0)
        if tiny and state.interest_to(on) >= tiny and not state.overdue(on):
            payment = apply_payment(state, tiny, on)
            assert payment.principal_msat == 0
            interest += payment.interest_msat
            made += 1
            state = payment.state
        if on in contract.due_dates:
            due = state.next_due(on)
            while due is not None and due[0] <= on:
                payment = apply_payment(state, due[1], on)
                interest += payment.interest_msat
                state = payment.state
                due = state.next_due(on)
    last = max(contract.due_dates[-1], state.balance.accrued_on)
    if not state.is_repaid:
        payment = apply_payment(state, state.payoff_msat(last), last)
        interest += payment.interest_msat
        state = payment.state
    assert state.is_repaid
    return interest, made


@EXAMPLES
@given(contracts(max_count=18), st.dictionaries(st.integers(1, 600), st.integers(1, 50), max_size=40))
def test_paying_often_does_not_lower_the_interest(contract: Contract, tiny_days: dict[int, int]) -> None:
    plain, _ = _pay_due_dates(contract, {})
    often, made = _pay_due_dates(contract, tiny_days)
    # The rule allows one msat of rounding a payment; accrual restarts only when principal changes, so a
    # payment of interest alone rounds nothing and the totals are equal.
    assert often == plain, (plain, often, made)


def _reach(data: st.DataObject, contract: Contract) -> tuple[LoanState, date]:
    """A loan some way into its life by a random pattern (late, early, tiny, lump), late fees assessed."""
    state = start(contract)
    on = contract.start_date
    for _ in range(data.draw(st.integers(0, 6))):
        on += timedelta(days=data.draw(st.integers(0, 45)))
        state = assess(state, late_fees_due(state.behind(on), on, POLICY), on)
        amount = amount_of(data, data.draw(st.sampled_from(KINDS)), state, on)
        if amount and not state.is_repaid:
            state = apply_payment(state, amount, on).state
    on += timedelta(days=data.draw(st.integers(0, 45)))
    return assess(state, late_fees_due(state.behind(on), on, POLICY), on), on


def _amounts(state: LoanState) -> list[tuple[int, ...]]:
    return [(i.number, i.due_date.toordinal(), i.principal_msat, i.interest_msat, i.late_fee_msat,
             i.principal_paid_msat, i.interest_paid_msat, i.late_fee_paid_msat) for i in state.installments]


def _close(a: list[tuple[int, ...]], b: list[tuple[int, ...]], slack: int) -> bool:
    return len(a) == len(b) and all(x[:2] == y[:2] and max(abs(p - q) for p, q in zip(x, y)) <= slack
                                    for x, y in zip(a, b))


@EXAMPLES
@given(st.data(), contracts(max_count=12))
def test_a_days_payments_count_by_their_total_however_they_are_split(data: st.DataObject,
                                                                       contract: Contract) -> None:
    state, on = _reach(data, contract)
    if state.is_repaid:
        return
    payoff = state.payoff_msat(on)
    total = data.draw(st.one_of(st.integers(1, payoff + 10_000),
                                st.sampled_from([payoff, state.next_due(on)[1] if state.next_due(on) else 1])))
    cuts = sorted(data.draw(st.lists(st.integers(1, max(total - 1, 1)), max_size=4, unique=True)))
    parts = [b - a for a, b in zip([0] + cuts, cuts + [total]) if b - a > 0]
    whole = apply_payment(state, total, on)
    split = state
    pieces: list[Payment] = []
    for part in parts:
        pieces.append(apply_payment(split, part, on))
        split = pieces[-1].state
        validate(split)
    k = len(parts)
    one = whole.state
    assert _close(_amounts(one), _amounts(split), k), (total, parts)
    assert abs(one.balance.principal_msat - split.balance.principal_msat) <= k
    assert abs(sum(p.refund_msat for p in pieces) - whole.refund_msat) <= k
    later = on + timedelta(days=data.draw(st.integers(0, 120)))
    due_one, due_split = one.next_due(later), split.next_due(later)
    assert (due_one is None) == (due_split is None)
    if due_one is not None and due_split is not None:
        assert due_one[0] == due_split[0] and abs(due_one[1] - due_split[1]) <= k
    assert one.days_past_due(later) == split.days_past_due(later)
    fees_one = late_fees_due(one.behind(later), later, POLICY)
    fees_split = late_fees_due(split.behind(later), later, POLICY)
    assert [n for n, _ in fees_one] == [n for n, _ in fees_split]


@EXAMPLES
@given(st.data(), contracts(max_count=12))
def test_a_borrower_ahead_of_the_schedules_principal_is_never_late(data: st.DataObject, contract: Contract) -> None:
    state = start(contract)
    on = contract.start_date
    left_after = contract.scheduled_principal_left
    for _ in range(data.draw(st.integers(1, 12))):
        on += timedelta(days=data.draw(st.integers(0, 60)))
        due_so_far = [n for n, d in enumerate(contract.due_dates, start=1) if d < on]
        ahead = not due_so_far or state.balance.principal_msat <= left_after[due_so_far[-1] - 1]
        fees = late_fees_due(state.behind(on), on, POLICY)
        if ahead:
            assert state.days_past_due(on) == 0 and fees == [], (on, state.balance)
        state = assess(state, fees, on)
        amount = amount_of(data, data.draw(st.sampled_from(KINDS + ("lump", "nothing"))), state, on)
        if state.is_repaid:
            break
        if amount:
            state = apply_payment(state, amount, on).state


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**12), st.integers(0, 10**12), st.integers(0, 10_000), st.integers(0, 10**9))
def test_a_late_fee_is_never_rounded_up(principal: int, interest: int, bps: int, flat: int) -> None:
    from marketplace.domain.loans.installments import InstallmentState

    inst = InstallmentState(1, date(2026, 1, 1), principal, interest, 0, 0, 0, 0)
    fee = late_fee_for(inst, DelinquencyPolicy(late_fee_bps=bps, late_fee_flat_msat=flat))
    exact = (principal + interest) * bps / 10_000 + flat
    assert exact - 1 < fee <= exact


def test_issue_example_thirty_one_msat_payments_before_the_payoff() -> None:
    """1,000,000 sat at 60 %, one monthly installment: 50,000 sat of interest paid off on its due date; the old
    rules charged 48,829.860 sat after thirty 1-msat payments (-2.34 %). Now the same 50,000 sat."""
    contract = Contract(10**9, 6000, 1, Frequency.MONTHLY, Method.ANNUITY, date(2026, 1, 1))
    plain, _ = _pay_due_dates(contract, {})
    often, made = _pay_due_dates(contract, {day: 1 for day in range(1, 31)})
    assert plain == 10**9 * 5 // 100 and made == 30
    assert often == plain


@pytest.mark.parametrize(("contract", "schedule_interest_msat"), [
    # The audit's figures for the schedules (paid on the due dates): the old rules took 1.76 %, 7.1 %
    # (417,256 sat) and 0.73 % off them for a 1-msat payment every day.
    (Contract(10**9, 3600, 12, Frequency.MONTHLY, Method.ANNUITY, date(2026, 1, 1)), 205_545_018),
    (Contract(5 * 10**9, 6000, 36, Frequency.MONTHLY, Method.ANNUITY, date(2026, 1, 1)), None),
    (Contract(10**8, 6000, 52, Frequency.WEEKLY, Method.ANNUITY, date(2026, 1, 1)), None),
])
def test_issue_examples_a_one_msat_payment_every_day(contract: Contract, schedule_interest_msat: int | None) -> None:
    plain, _ = _pay_due_dates(contract, {})
    assert plain == contract_schedule(contract).total_interest_msat
    if schedule_interest_msat is not None:
        assert plain == schedule_interest_msat
    last = (contract.due_dates[-1] - contract.start_date).days
    often, made = _pay_due_dates(contract, {day: 1 for day in range(1, last)})
    assert made > 300
    assert often == plain, (plain, often, made)


def test_issue_example_two_invoices_or_one_on_the_first_due_date() -> None:
    """100,000 sat, 36 %, 12 monthly; on the first due date 2 x 10,046,209 msat. As one invoice the old rules
    left installment 2 due on 03-01 and, skipped, charged a 200,924-msat late fee and "late" on 03-17 while
    the borrower was 2,788,613 msat ahead of the schedule's principal. Now one invoice or two: installment 2
    is settled, nothing is due until 04-01, and no fee or lateness in March, with either prepayment choice."""
    policy = DelinquencyPolicy(grace_days=15, late_fee_bps=200)
    for prepayment in Prepayment:
        contract = Contract(10**8, 3600, 12, Frequency.MONTHLY, Method.ANNUITY, date(2026, 1, 1), prepayment)
        assert contract.level_msat == 10_046_209
        first = date(2026, 2, 1)
        one = apply_payment(start(contract), 2 * 10_046_209, first).state
        two = start(contract)
        for _ in range(2):
            two = apply_payment(two, 10_046_209, first).state
        assert _amounts(one) == _amounts(two) and one.balance == two.balance
        assert [i.number for i in one.installments if i.is_paid] == [1, 2]
        march = date(2026, 3, 17)
        assert one.next_due(march) == (date(2026, 4, 1), one.installments[2].due_msat)
        assert one.days_past_due(march) == 0 and late_fees_due(one.behind(march), march, policy) == []


@EXAMPLES
@given(st.data(), contracts(max_count=12))
def test_a_written_off_loan_accrues_nothing_after_the_write_off(data: st.DataObject, contract: Contract) -> None:
    """Whatever the loan's history, written off on a day: what is owed never grows after it, the
    installments carry everything owed and no interest beyond it, and recoveries still apply."""
    state, on = _reach(data, contract)
    if state.is_repaid:
        return
    stopped = state.written_off(on)
    validate(stopped)
    owed = stopped.payoff_msat(on)
    assert owed == state.payoff_msat(on)  # writing off changes nothing owed on the day
    later = on + timedelta(days=data.draw(st.integers(1, 2000)))
    assert stopped.payoff_msat(later) == owed
    assert refresh(stopped, later).payoff_msat(later) == owed
    assert sum(i.unpaid_msat for i in refresh(stopped, later).installments) == owed
    recovery = data.draw(st.integers(0, owed))
    paid = apply_payment(stopped, recovery, later)
    assert paid.applied_msat == recovery and paid.state.payoff_msat(later + timedelta(days=99)) == owed - recovery
