"""Random loans and the payment patterns of a borrower, for the fairness properties.

A pattern is driven by hypothesis' `data`: in each period the borrower makes
a few payments of one of several kinds, on random days; an on-time borrower
always settles the installment by its due date.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction

from hypothesis import strategies as st

from marketplace.domain.loans.accrual import unit_periods
from marketplace.domain.loans.allocation import LoanState, Payment, apply_payment, start
from marketplace.domain.loans.schedules import Contract, Frequency, Method, Prepayment

START = date(2026, 1, 31)  # a month end: short months are part of every monthly pattern
KINDS = ("next_due", "partial", "lump", "tiny", "payoff", "nothing")


@st.composite
def contracts(draw: st.DrawFn, max_count: int = 24) -> Contract:
    frequency = draw(st.sampled_from(list(Frequency)))
    return Contract(
        principal_msat=draw(st.one_of(st.integers(10**7, 10**8), st.integers(10**8, 5 * 10**9))),
        annual_rate_bps=draw(st.one_of(st.integers(0, 6000), st.sampled_from([1, 3650, 6000, 10_000]))),
        count=draw(st.integers(1, max_count)),
        frequency=frequency,
        method=draw(st.sampled_from(list(Method))),
        start_date=START,
        prepayment=draw(st.sampled_from(list(Prepayment))),
    )


@dataclass
class Run:
    contract: Contract
    state: LoanState
    payments: list[tuple[date, Payment]] = field(default_factory=list)

    def pay(self, amount_msat: int, on: date) -> Payment:
        payment = apply_payment(self.state, amount_msat, on)
        self.state = payment.state
        self.payments.append((on, payment))
        return payment

    def cash_flows(self) -> list[tuple[date, int]]:
        return [(on, p.applied_msat) for on, p in self.payments if p.applied_msat]


def amount_of(data: st.DataObject, kind: str, state: LoanState, on: date) -> int:
    payoff = state.payoff_msat(on)
    due = state.next_due(on)
    next_amount = due[1] if due else 0
    if kind == "next_due":
        return next_amount
    if kind == "partial":
        return next_amount * data.draw(st.integers(1, 999)) // 1000
    if kind == "lump":
        return payoff * data.draw(st.integers(1, 999)) // 1000
    if kind == "tiny":
        return data.draw(st.integers(1, 50))
    if kind == "payoff":
        return payoff
    return 0


def on_time_run(data: st.DataObject, contract: Contract) -> Run:
    """A borrower who is never late: random payments inside each period, the installment settled by its date."""
    run = Run(contract, start(contract))
    previous = contract.start_date
    for due_date in contract.due_dates:
        if run.state.is_repaid:
            break
        days = (due_date - previous).days
        for _ in range(data.draw(st.integers(0, 3))):
            on = previous + timedelta(days=data.draw(st.integers(0, days)))
            if run.payments and on < run.payments[-1][0]:
                on = run.payments[-1][0]  # payments are credited in the order they were made
            kind = data.draw(st.sampled_from(KINDS))
            amount = amount_of(data, kind, run.state, on)
            if amount:
                run.pay(amount, on)
            if run.state.is_repaid:
                break
        # Settle whatever is due by the due date, on that day at the latest.
        on = max(due_date, run.payments[-1][0]) if run.payments else due_date
        while not run.state.is_repaid:
            due = run.state.next_due(on)
            if due is None or due[0] > due_date:
                break
            run.pay(due[1], on)
        previous = due_date
    if not run.state.is_repaid:
        last = max(contract.due_dates[-1], run.payments[-1][0]) if run.payments else contract.due_dates[-1]
        run.pay(run.state.payoff_msat(last), last)
    return run


def us_rule_left_msat(principal_msat: int, flows: list[tuple[date, int]], start_date: date,
                     annual_rate: Fraction, periods_per_year: int) -> Fraction:
    """What the payments leave owed under the U.S. Rule at `annual_rate` (bps), in exact arithmetic.

    Regulation Z's second method for the APR: simple interest on the principal for the time it is
    owed (the loans' own clock, accrual.unit_periods), each payment paying accrued interest first, no
    interest on interest. Negative: the payments were worth more than the loan at that rate.
    """
    r = annual_rate / (10_000 * periods_per_year)
    principal, interest = Fraction(principal_msat), Fraction(0)
    previous = Fraction(0)
    for when, amount in flows:
        now = unit_periods(start_date, when, periods_per_year)
        interest += principal * r * (now - previous)
        previous = now
        to_interest = min(Fraction(amount), interest)
        interest -= to_interest
        principal -= amount - to_interest
    return principal + interest
