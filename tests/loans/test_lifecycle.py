"""A loan's whole life through the services, the listener and a real dev node."""
from __future__ import annotations

import time
from datetime import timedelta

import anyio
import pytest
from sqlalchemy import Connection, func, select

from marketplace.db import ledger, loans
from marketplace.db.engine import Database
from marketplace.db.repayments import repayment_shares
from marketplace.db.verify import verify_ledger
from marketplace.domain.errors import Conflict, Forbidden, InvalidInput, InvoiceRefused
from marketplace.domain.journal import AccountKind
from marketplace.domain.loans.schedules import Frequency, Method
from marketplace.domain.loans.terms import LoanTerms
from marketplace.services import loans as loan_service
from marketplace.services.lightning_calls import NodeFacts
from marketplace.settings import Settings
from marketplace.workers.listener import PaymentListener
from tests.fixtures.devnode import DevNode
from tests.ledger_helpers import deposit_entry, make_user

STORY = "A second-hand sewing machine for my tailoring stall."


def funded_users(database: Database, lenders: int, each_msat: int) -> tuple[int, list[int]]:
    def work(conn: Connection) -> tuple[int, list[int]]:
        borrower, _ = make_user(conn, "borrower")
        ids = []
        for _ in range(lenders):
            lender, accts = make_user(conn, "lender")
            ledger.post(conn, [deposit_entry(conn, accts[AccountKind.USER_AVAILABLE], each_msat)])
            ids.append(lender)
        return borrower, ids

    return database.run(work)


def balances(database: Database, user_id: int) -> dict[AccountKind, int]:
    return database.read(lambda c: ledger.user_balances(c, user_id))


def test_request_fund_disburse_repay(database: Database, settings: Settings, devnode_session: DevNode) -> None:
    settings = settings.replace(cln_rpc=devnode_session.rpc_path("marketplace"), service_fee_bps=100)
    port = devnode_session.adapter("marketplace")
    wallet = devnode_session.adapter("wallet")
    facts = NodeFacts(port)
    borrower, lenders = funded_users(database, 3, 50_000_000)
    terms = LoanTerms(60_000_000, 2400, 4, Frequency.WEEKLY, Method.ANNUITY)
    loan_id = loan_service.request_loan(database, settings, borrower, terms, "business", STORY)

    with pytest.raises(Forbidden):
        loan_service.pledge(database, settings, borrower, loan_id, 1_000_000)
    with pytest.raises(InvalidInput, match="at most"):
        loan_service.pledge(database, settings, lenders[0], loan_id, 61_000_000)
    notes = [loan_service.pledge(database, settings, lender, loan_id, 20_000_000, f"req-{lender}")
             for lender in lenders]
    assert loan_service.pledge(database, settings, lenders[0], loan_id, 20_000_000, f"req-{lenders[0]}") == notes[0]
    with pytest.raises(Conflict):
        loan_service.withdraw_pledge(database, lenders[0], notes[0])
    loan = database.read(lambda c: loans.get_loan(c, loan_id))
    assert loan.status == "funded"
    assert balances(database, lenders[0])[AccountKind.USER_RESERVED] == 20_000_000

    wrong = anyio.run(wallet.create_invoice, 59_000_000, f"wrong-{time.time_ns()}", "d", 600)
    with pytest.raises(InvoiceRefused, match="exactly the loan amount"):
        anyio.run(loan_service.disburse, database, port, facts, settings, borrower, loan_id, wrong.bolt11)
    right = anyio.run(wallet.create_invoice, 60_000_000, f"principal-{time.time_ns()}", "d", 600)
    outcome = anyio.run(loan_service.disburse, database, port, facts, settings, borrower, loan_id, right.bolt11)
    assert outcome.status == "succeeded", outcome.error
    loan = database.read(lambda c: loans.get_loan(c, loan_id))
    assert loan.status == "active" and loan.start_date is not None
    assert balances(database, lenders[0])[AccountKind.USER_RESERVED] == 0

    listener = PaymentListener(database, port)
    paid_hashes = []
    schedule = loan_service.schedule_of(loan)
    for number, installment in enumerate(schedule.installments):
        if database.read(lambda c: loans.get_loan(c, loan_id)).status == "repaid":
            break
        invoice = anyio.run(loan_service.repayment_invoice, database, port, settings, borrower, loan_id, None,
                            installment.due_date - timedelta(days=1))
        if number == 0:
            assert invoice.amount_msat == installment.total_msat
        assert invoice.bolt11 is not None and invoice.payment_hash is not None
        anyio.run(wallet.pay, invoice.bolt11, None, 10_000, 10)
        paid_hashes.append(invoice.payment_hash)
        anyio.run(listener.drain)
    loan = database.read(lambda c: loans.get_loan(c, loan_id))
    assert loan.status == "repaid"
    lender_total = sum(balances(database, lender)[AccountKind.USER_AVAILABLE] for lender in lenders)
    split = database.read(lambda c: [repayment_shares(c, h) for h in paid_hashes])
    shared = sum(share.cash_msat for shares in split for share in shares)
    fees = database.read(lambda c: ledger.account_id(c, "system:operator_fees"))
    fee_total = database.read(lambda c: c.exec_driver_sql(
        f"SELECT balance_msat FROM accounts WHERE id = {fees}").scalar_one())
    paid_in, refunds = database.read(lambda c: c.exec_driver_sql(
        "SELECT SUM(received_msat), SUM(refund_msat) FROM repayments").one())
    # Each lender kept 30,000 sat and lent 20,000: back come its principal and its income, to the msat.
    assert lender_total == 3 * 30_000_000 + shared
    assert shared + fee_total + refunds == paid_in
    borrower_refunds = balances(database, borrower)[AccountKind.USER_AVAILABLE]
    assert borrower_refunds == refunds
    # Every repayment's split, recomputed from its row, is exactly what reached each note.
    assert all(len(shares) == 3 and min(s.cash_msat for s in shares) >= 0 for shares in split)
    per_note: dict[int, int] = {}
    for shares in split:
        for share in shares:
            per_note[share.note_id] = per_note.get(share.note_id, 0) + share.cash_msat
    received = database.read(lambda c: dict(c.exec_driver_sql(
        f"SELECT id, received_msat FROM notes WHERE loan_id = {loan_id}").all()))
    assert per_note == received
    with pytest.raises(Conflict, match="fully repaid"):
        anyio.run(loan_service.repayment_invoice, database, port, settings, borrower, loan_id, 1000, None)
    assert database.read(verify_ledger).ok
