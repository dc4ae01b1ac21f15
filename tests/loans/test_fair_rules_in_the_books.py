"""The fair money rules where the money is: the listener's credit rule, the ledger, the daily job.

Loans are made by the real services; the disbursement's Lightning leg is
replaced by calling the disbursement hold and settle directly (the dev-node
tests cover that leg), and repayments arrive as paid-invoice updates through
the listener's own crediting function.
"""
from __future__ import annotations

import hashlib
import os
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import Connection, select, update

from lightning.port import CreatedInvoice, InvoiceStatus, InvoiceUpdate
from marketplace.db import disbursements, invoices, ledger, loans
from marketplace.db.crediting import apply_updates
from marketplace.db.engine import Database
from marketplace.db.tables import accounts, installments, notes, outbox
from marketplace.db.tables import loans as loans_table
from marketplace.db.verify import verify_ledger
from marketplace.domain.errors import Conflict, InvalidInput
from marketplace.domain.journal import AccountKind
from marketplace.domain.loans.schedules import Frequency, Method
from marketplace.domain.loans.terms import LoanTerms
from marketplace.services import loans as loan_service
from marketplace.settings import Settings
from tests.loans.test_lifecycle import funded_users

STORY = "Seeds and fertiliser for the coming season."
_pay_index = iter(range(1, 10**9))


def _hash() -> str:
    return hashlib.sha256(os.urandom(32)).hexdigest()


def funded_loan(database: Database, settings: Settings, terms: LoanTerms, note_msat: list[int]) -> tuple[int, int,
                                                                                                        list[int]]:
    borrower, lenders = funded_users(database, len(note_msat), max(note_msat))
    loan_id = loan_service.request_loan(database, settings, borrower, terms, "farming", STORY)
    for lender, amount in zip(lenders, note_msat):
        loan_service.pledge(database, settings, lender, loan_id, amount)
    return borrower, loan_id, lenders


def disburse(database: Database, loan_id: int, borrower: int, on: date) -> None:
    payment_hash = _hash()

    def work(conn: Connection) -> None:
        payment_id = disbursements.hold(conn, loan_id, borrower, payment_hash, "lnbcrt1fake", 0)
        disbursements.settle(conn, payment_id, loan_id, payment_hash, 0, None, today=on)
        disbursements.mark(conn, payment_id, status="succeeded")

    database.run(work)


def repay(database: Database, loan_id: int, borrower: int, amount_msat: int, on: date) -> None:
    """A repayment invoice of the loan, paid on `on`, credited by the listener's rule."""
    payment_hash = _hash()
    paid_at = int(datetime.combine(on, datetime.min.time(), timezone.utc).timestamp()) + 3600

    def work(conn: Connection) -> None:
        row = invoices.record_new(conn, "repayment", borrower, amount_msat, "test", loan_id=loan_id)
        row = invoices.mark_created(conn, row.id, CreatedInvoice(row.label, payment_hash, "lnbcrt1fake", "",
                                                                   2_000_000_000, 1))
        index = next(_pay_index)
        apply_updates(conn, [InvoiceUpdate(
            label=row.label, payment_hash=payment_hash, status=InvoiceStatus.PAID, amount_msat=amount_msat,
            bolt11="lnbcrt1fake", description="test", expires_at=2_000_000_000, created_index=index,
            updated_index=index, pay_index=index, amount_received_msat=amount_msat, paid_at=paid_at,
            payment_preimage="00" * 32)])

    database.run(work)


def available(database: Database, user_id: int) -> int:
    return database.read(lambda c: ledger.user_balances(c, user_id)[AccountKind.USER_AVAILABLE])


def test_repaid_the_same_day_every_lender_gets_exactly_the_principal(database: Database, settings: Settings) -> None:
    """The old 1 %-of-everything fee returned 99,694.904 sat of 100,000 and showed negative interest."""
    terms = LoanTerms(100_000_000, 3650, 12, Frequency.MONTHLY, Method.ANNUITY)
    borrower, loan_id, lenders = funded_loan(database, settings, terms, [40_000_000, 35_000_000, 25_000_000])
    start = date(2026, 3, 1)
    disburse(database, loan_id, borrower, start)
    repay(database, loan_id, borrower, 100_000_000, start)
    loan = database.read(lambda c: loans.get_loan(c, loan_id))
    assert loan.status == "repaid"
    for lender, lent in zip(lenders, [40_000_000, 35_000_000, 25_000_000]):
        assert available(database, lender) == 40_000_000  # deposited the largest note; got every msat back
        del lent
    rows = database.read(lambda c: c.execute(select(notes.c.income_msat, notes.c.principal_outstanding_msat,
                                                    notes.c.status).where(notes.c.loan_id == loan_id)).all())
    assert all(r.income_msat == 0 and r.principal_outstanding_msat == 0 and r.status == "repaid" for r in rows)
    assert database.read(verify_ledger).ok


def test_the_fee_is_a_share_of_interest_and_odd_msats_wait_in_escrow(database: Database,
                                                                    settings: Settings) -> None:
    terms = LoanTerms(30_000_000, 2400, 3, Frequency.MONTHLY, Method.ANNUITY)
    borrower, loan_id, lenders = funded_loan(database, settings, terms, [10_000_000] * 3)
    start = date(2026, 1, 10)
    disburse(database, loan_id, borrower, start)
    state = database.read(lambda c: loans.loan_state(c, loans.get_loan(c, loan_id)))
    first = state.installments[0]
    repay(database, loan_id, borrower, first.due_msat, first.due_date)
    loan = database.read(lambda c: loans.get_loan(c, loan_id))
    fee = first.interest_msat * settings.service_fee_bps // 10_000
    assert loan.shared_income_msat == first.interest_msat
    assert loan.shared_cash_msat == first.due_msat - fee
    fees_account = database.read(lambda c: ledger.account_id(c, "system:operator_fees"))
    assert database.read(lambda c: c.execute(select(accounts.c.balance_msat)
                                             .where(accounts.c.id == fees_account)).scalar_one()) == fee
    escrow = database.read(lambda c: c.execute(select(accounts.c.balance_msat)
                                               .where(accounts.c.id == loan.escrow_account_id)).scalar_one())
    received = [available(database, lender) - 0 for lender in lenders]
    # Three equal notes: each has the cash rounded down; the msats that do not divide by three wait.
    assert escrow == (first.due_msat - fee) % 3
    assert len(set(received)) == 1
    # Pay the rest off: the escrow is emptied to the notes, and the totals close exactly.
    payoff = database.read(lambda c: loans.loan_state(c, loans.get_loan(c, loan_id))).payoff_msat(first.due_date)
    repay(database, loan_id, borrower, payoff, first.due_date)
    loan = database.read(lambda c: loans.get_loan(c, loan_id))
    assert loan.status == "repaid"
    assert database.read(lambda c: c.execute(select(accounts.c.balance_msat)
                                             .where(accounts.c.id == loan.escrow_account_id)).scalar_one()) == 0
    paid = [available(database, lender) for lender in lenders]
    assert sum(paid) == loan.shared_cash_msat and max(paid) - min(paid) <= 1
    assert database.read(verify_ledger).ok


def test_a_funded_request_not_disbursed_in_time_lapses(database: Database, settings: Settings) -> None:
    terms = LoanTerms(20_000_000, 1200, 4, Frequency.WEEKLY, Method.ANNUITY)
    borrower, loan_id, lenders = funded_loan(database, settings, terms, [12_000_000, 8_000_000])
    loan = database.read(lambda c: loans.get_loan(c, loan_id))
    assert loan.status == "funded" and loan.disburse_by is not None
    assert loan.disburse_by - loan.funded_at == timedelta(days=settings.disbursement_days)  # type: ignore[operator]
    assert [available(database, lender) for lender in lenders] == [0, 4_000_000]
    # Before the deadline nothing happens; after it the request lapses and the money goes back.
    assert loan_service.lapse_undisbursed(database, loan.disburse_by - timedelta(seconds=1)) == 0
    assert loan_service.lapse_undisbursed(database, loan.disburse_by + timedelta(seconds=1)) == 1
    assert loan_service.lapse_undisbursed(database, loan.disburse_by + timedelta(days=1)) == 0  # once
    assert database.read(lambda c: loans.get_loan(c, loan_id)).status == "lapsed"
    assert [available(database, lender) for lender in lenders] == [12_000_000, 12_000_000]
    told = database.read(lambda c: c.execute(select(outbox.c.user_id, outbox.c.kind)
                                             .where(outbox.c.kind == "lapsed")).all())
    assert sorted(r.user_id for r in told) == sorted([borrower, *lenders])
    assert database.read(verify_ledger).ok


def test_a_disbursement_on_its_way_holds_off_the_lapse(database: Database, settings: Settings) -> None:
    terms = LoanTerms(20_000_000, 1200, 4, Frequency.WEEKLY, Method.ANNUITY)
    borrower, loan_id, _ = funded_loan(database, settings, terms, [20_000_000])
    database.run(lambda c: disbursements.hold(c, loan_id, borrower, _hash(), "lnbcrt1fake", 0))
    loan = database.read(lambda c: loans.get_loan(c, loan_id))
    assert loan.disburse_by is not None
    assert loan_service.lapse_undisbursed(database, loan.disburse_by + timedelta(days=3)) == 0
    assert database.read(lambda c: loans.get_loan(c, loan_id)).status == "funded"


def test_aging_refuses_the_future_and_going_back(database: Database, settings: Settings) -> None:
    today = date(2026, 6, 15)
    with pytest.raises(InvalidInput, match="in the future"):
        loan_service.age_loans(database, settings, date(2026, 6, 16), today=today)
    loan_service.age_loans(database, settings, date(2026, 6, 14), today=today)
    loan_service.age_loans(database, settings, date(2026, 6, 14), today=today)  # the same day again is fine
    with pytest.raises(Conflict, match="last ran for 2026-06-14"):
        loan_service.age_loans(database, settings, date(2026, 6, 13), today=today)


def test_late_fees_left_alone_can_be_paid_and_close_the_loan(database: Database, settings: Settings) -> None:
    terms = LoanTerms(20_000_000, 1200, 2, Frequency.WEEKLY, Method.ANNUITY)
    borrower, loan_id, lenders = funded_loan(database, settings, terms, [20_000_000])
    start = date(2026, 2, 1)
    disburse(database, loan_id, borrower, start)
    late = start + timedelta(days=7 + settings.grace_days + 1)
    report = loan_service.age_loans(database, settings, late, today=late)
    assert report.late_fees_assessed == 1
    state = database.read(lambda c: loans.loan_state(c, loans.get_loan(c, loan_id)))
    fees = state.late_fees_unpaid_msat
    assert fees > 0
    # Everything but the fee: the old rules left such a loan active with "Nothing is due".
    repay(database, loan_id, borrower, state.payoff_msat(late) - fees, late)
    state = database.read(lambda c: loans.loan_state(c, loans.get_loan(c, loan_id)))
    assert database.read(lambda c: loans.get_loan(c, loan_id)).status == "active"
    assert state.next_due(late) is not None and state.payoff_msat(late) > 0
    repay(database, loan_id, borrower, state.payoff_msat(late), late)
    assert database.read(lambda c: loans.get_loan(c, loan_id)).status == "repaid"
    assert available(database, lenders[0]) > 20_000_000
    assert database.read(verify_ledger).ok
