"""The issue-18 examples: a loan's total interest with and without a 1-msat payment every day.

Run it on any version of the code (it uses only the domain's apply_payment), e.g. the current one and
the one before issue 18 in a worktree, to see the rules before and after:

    .venv/bin/python -m bench.payment_frequency
    PYTHONPATH=/path/to/old/worktree .venv/bin/python -m bench.payment_frequency
"""
from __future__ import annotations

from datetime import date, timedelta

from marketplace.domain.loans.allocation import apply_payment, start
from marketplace.domain.loans.schedules import Contract, Frequency, Method

START = date(2026, 1, 1)
EXAMPLES = [
    ("1,000,000 sat, 36 %, 12 monthly", Contract(10**9, 3600, 12, Frequency.MONTHLY, Method.ANNUITY, START)),
    ("5,000,000 sat, 60 %, 36 monthly", Contract(5 * 10**9, 6000, 36, Frequency.MONTHLY, Method.ANNUITY, START)),
    ("100,000 sat, 60 %, 52 weekly", Contract(10**8, 6000, 52, Frequency.WEEKLY, Method.ANNUITY, START)),
]


def total_interest(contract: Contract, daily_msat: int) -> tuple[int, int]:
    """Pay what is due on each due date, and `daily_msat` on every other day; (interest, payments made)."""
    state = start(contract)
    interest = payments = 0
    day = contract.start_date
    due_dates = set(contract.due_dates)
    while not state.is_repaid:
        day += timedelta(days=1)
        if daily_msat and day not in due_dates:
            paid = apply_payment(state, daily_msat, day)
            interest, payments, state = interest + paid.interest_msat, payments + 1, paid.state
        if day in due_dates or day > contract.due_dates[-1]:
            due = state.next_due(day)
            while due is not None and due[0] <= day:
                paid = apply_payment(state, due[1], day)
                interest, payments, state = interest + paid.interest_msat, payments + 1, paid.state
                due = state.next_due(day)
    return interest, payments


def payoff_after_tiny_payments() -> tuple[int, int]:
    """1,000,000 sat at 60 %, one monthly installment: paid off on its due date, or after thirty 1-msat
    payments on the days before."""
    contract = Contract(10**9, 6000, 1, Frequency.MONTHLY, Method.ANNUITY, START)
    plain = apply_payment(start(contract), start(contract).payoff_msat(contract.due_dates[0]),
                          contract.due_dates[0]).interest_msat
    state, interest = start(contract), 0
    for offset in range(1, 31):
        paid = apply_payment(state, 1, START + timedelta(days=offset))
        interest, state = interest + paid.interest_msat, paid.state
    due = contract.due_dates[0]
    interest += apply_payment(state, state.payoff_msat(due), due).interest_msat
    return plain, interest


def main() -> None:
    plain, tiny = payoff_after_tiny_payments()
    print(f"1,000,000 sat, 60 %, paid off on its due date: {plain / 1000:,.3f} sat; "
          f"after thirty 1-msat payments: {tiny / 1000:,.3f} sat ({(tiny - plain) / plain:+.2%})")
    for name, contract in EXAMPLES:
        base, _ = total_interest(contract, 0)
        often, count = total_interest(contract, 1)
        print(f"{name}: interest {base / 1000:,.3f} sat; with 1 msat every day ({count:,} payments) "
              f"{often / 1000:,.3f} sat ({(often - base) / base:+.3%}, {(often - base) / 1000:+,.3f} sat)")


if __name__ == "__main__":
    main()
