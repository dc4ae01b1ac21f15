"""A write-off stops interest and pays out the escrow's remainders; recoveries are still shared exactly (issue 18).

The audit saw 808,753 msat of interest accrue in the 12 days after a live write-off (the platform took 10 %
of it), up to 28.2 % of principal in random runs, and 8 msat of remainders left in escrow waiting for a
recovery that may never come.
"""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from marketplace.db import loans
from marketplace.db.engine import Database
from marketplace.db.repayments import repayment_shares
from marketplace.db.tables import accounts, notes, repayments
from marketplace.db.verify import verify_ledger
from marketplace.domain.loans.schedules import Frequency, Method
from marketplace.domain.loans.terms import LoanTerms
from marketplace.services import loans as loan_service
from marketplace.settings import Settings
from tests.loans.test_fair_rules_in_the_books import available, disburse, funded_loan, repay

NOTES = [10_000_000, 10_000_000, 10_000_000]


def _escrow(database: Database, loan_id: int) -> int:
    loan = database.read(lambda c: loans.get_loan(c, loan_id))
    return int(database.read(lambda c: c.execute(select(accounts.c.balance_msat)
                                                 .where(accounts.c.id == loan.escrow_account_id)).scalar_one()))


def _received(database: Database, loan_id: int) -> list[int]:
    return [int(r.received_msat) for r in database.read(lambda c: c.execute(
        select(notes.c.received_msat).where(notes.c.loan_id == loan_id).order_by(notes.c.id)).all())]


def test_a_written_off_loan_accrues_nothing_and_its_remainders_go_to_the_notes(database: Database,
                                                                              settings: Settings) -> None:
    terms = LoanTerms(30_000_000, 3600, 6, Frequency.MONTHLY, Method.ANNUITY)
    borrower, loan_id, lenders = funded_loan(database, settings, terms, NOTES)
    start = date(2026, 1, 10)
    disburse(database, loan_id, borrower, start)
    state = database.read(lambda c: loans.loan_state(c, loans.get_loan(c, loan_id)))
    first = state.installments[0]
    repay(database, loan_id, borrower, first.due_msat, first.due_date)
    held = _escrow(database, loan_id)
    assert held > 0  # three equal notes: what does not divide by three waits in escrow

    # Age day by day past the write-off point (more than 120 days past the second due date).
    second_due = state.installments[1].due_date
    write_off_day = second_due + timedelta(days=settings.write_off_after_days + 1)
    day = first.due_date
    while day < write_off_day:
        day += timedelta(days=7)
        loan_service.age_loans(database, settings, min(day, write_off_day), today=min(day, write_off_day))
    loan = database.read(lambda c: loans.get_loan(c, loan_id))
    assert loan.status == "written_off" and loan.closed_on == write_off_day
    assert loan.shared_cash_base_msat == loan.shared_cash_msat
    # The remainders went to the notes: the escrow is empty and the notes hold every msat the lenders got.
    assert _escrow(database, loan_id) == 0
    received = _received(database, loan_id)
    assert sum(received) == loan.shared_cash_msat and max(received) - min(received) <= 1
    assert database.read(verify_ledger).ok

    # Nothing accrues after the write-off: what is owed then is owed 12 days or a year later.
    state = database.read(lambda c: loans.loan_state(c, loans.get_loan(c, loan_id)))
    owed = state.payoff_msat(write_off_day)
    assert state.payoff_msat(write_off_day + timedelta(days=12)) == owed
    assert state.payoff_msat(write_off_day + timedelta(days=365)) == owed
    assert sum(i.interest_unpaid_msat for i in state.installments) + state.late_fees_unpaid_msat \
        + state.balance.principal_msat == owed

    # A recovery is shared counting from the write-off; the rest of what is owed closes the loan.
    recovery_day = write_off_day + timedelta(days=40)
    repay(database, loan_id, borrower, 7_000_001, recovery_day)
    loan = database.read(lambda c: loans.get_loan(c, loan_id))
    received = _received(database, loan_id)
    assert sum(received) + _escrow(database, loan_id) == loan.shared_cash_msat
    assert max(received) - min(received) <= 1
    hashes = database.read(lambda c: c.execute(select(repayments.c.payment_hash).where(
        repayments.c.loan_id == loan_id).order_by(repayments.c.id)).scalars().all())
    recovered = database.read(lambda c: repayment_shares(c, hashes[-1]))
    assert sum(s.cash_msat for s in recovered) + _escrow(database, loan_id) == \
        loan.shared_cash_msat - (loan.shared_cash_base_msat or 0)
    state = database.read(lambda c: loans.loan_state(c, loans.get_loan(c, loan_id)))
    assert state.payoff_msat(recovery_day) == owed - 7_000_001
    repay(database, loan_id, borrower, state.payoff_msat(recovery_day), recovery_day)
    loan = database.read(lambda c: loans.get_loan(c, loan_id))
    assert loan.status == "repaid" and _escrow(database, loan_id) == 0
    received = _received(database, loan_id)
    assert sum(received) == loan.shared_cash_msat
    assert min(received) >= NOTES[0]  # every note got its principal back, and its share of the interest
    assert all(available(database, lender) >= NOTES[0] for lender in lenders)
    assert database.read(verify_ledger).ok
