"""Notices written when a loan changes hands: fully funded, paid out, repaid (in the same transaction).

Each has a unique key (`funded:{loan}:{user}`, `disbursed:{loan}:{user}`, `repaid:{loan}:{user}`), so a
retried transaction or a second path to the same event writes it once. The reminder sender mails them
like any other notice; the dashboard shows them with a link to the loan.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from marketplace.db.tables import loans, notes, outbox


def _write(conn: Connection, user_id: int, kind: str, key: str, subject: str, body: str) -> None:
    if conn.execute(select(outbox.c.id).where(outbox.c.dedupe_key == key)).first() is not None:
        return
    try:
        with conn.begin_nested():
            conn.execute(insert(outbox).values(user_id=user_id, kind=kind, dedupe_key=key, subject=subject, body=body,
                                               created_at=datetime.now(timezone.utc), status="pending", error=""))
    except IntegrityError:
        pass  # written by a concurrent transaction: once is enough


def _people(conn: Connection, loan_id: int) -> tuple[int, list[int]]:
    borrower = int(conn.execute(select(loans.c.borrower_id).where(loans.c.id == loan_id)).scalar_one())
    lenders = sorted({int(r) for r in conn.execute(
        select(notes.c.lender_id).where(notes.c.loan_id == loan_id, notes.c.status != "released")).scalars()})
    return borrower, lenders


def loan_funded(conn: Connection, loan_id: int) -> None:
    borrower, lenders = _people(conn, loan_id)
    _write(conn, borrower, "funded", f"funded:{loan_id}:{borrower}", f"Loan {loan_id} is fully funded",
           f"Your request {loan_id} is fully funded. Open the loan's page and paste an invoice from your wallet "
           "for the loan amount to receive the money.")
    for lender in lenders:
        _write(conn, lender, "funded", f"funded:{loan_id}:{lender}", f"Loan {loan_id} is fully funded",
               f"Loan request {loan_id}, which you pledged to, is fully funded; it starts once the borrower "
               "takes the money.")


def loan_disbursed(conn: Connection, loan_id: int) -> None:
    _, lenders = _people(conn, loan_id)
    for lender in lenders:
        _write(conn, lender, "disbursed", f"disbursed:{loan_id}:{lender}", f"Loan {loan_id} is paid out",
               f"Loan {loan_id}, which you hold a note of, was paid out to its borrower; its repayments will reach "
               "your balance as they come in.")


def loan_repaid(conn: Connection, loan_id: int) -> None:
    borrower, lenders = _people(conn, loan_id)
    _write(conn, borrower, "repaid", f"repaid:{loan_id}:{borrower}", f"Loan {loan_id} is repaid",
           f"You have repaid loan {loan_id} in full. Thank you: a good record lets you ask for more next time.")
    for lender in lenders:
        _write(conn, lender, "repaid", f"repaid:{loan_id}:{lender}", f"Loan {loan_id} is repaid",
               f"Loan {loan_id}, which you hold a note of, is repaid in full; everything it paid is in your balance.")
