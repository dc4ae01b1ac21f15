"""Paying a funded loan's principal to the borrower: hold from the lenders, then settle or release.

The pledges sit in the lenders' reserved balances until the borrower gives
an invoice. The hold moves them into the loan's escrow account; a success
turns the loan active (schedule from the day it is paid, notes active) and
the node's routing fee is the platform's; a clear failure moves the money
back to reserved, so the borrower can try again with a new invoice.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timezone

from sqlalchemy import Connection, insert, update

from marketplace.db import event_notices
from marketplace.db import ledger, loans
from marketplace.db.tables import outgoing_payments
from marketplace.domain.errors import Conflict
from marketplace.domain.journal import EntryDraft, LineDraft
from marketplace.domain.loans.allocation import start
from marketplace.domain.messages import N_


def _per_lender(conn: Connection, loan_id: int) -> dict[int, int]:
    amounts: dict[int, int] = {}
    for note in loans.notes_of_loan(conn, loan_id, ("pledged",)):
        amounts[note.lender_id] = amounts.get(note.lender_id, 0) + note.amount_msat
    return amounts


def in_flight(conn: Connection, loan_id: int) -> bool:
    """A disbursement of this loan is on its way (pending) or its outcome is not known yet."""
    return conn.execute(
        outgoing_payments.select().where(outgoing_payments.c.loan_id == loan_id,
                                         outgoing_payments.c.purpose == "disbursement",
                                         outgoing_payments.c.status.in_(("pending", "unknown")))
    ).first() is not None


def hold(conn: Connection, loan_id: int, borrower_id: int, payment_hash: str, bolt11: str,
         fee_reserve_msat: int) -> int:
    loan = loans.get_loan(conn, loan_id, lock=True)
    if loan.status != "funded":
        raise Conflict(N_("This loan is not waiting for a disbursement."))
    if in_flight(conn, loan_id):
        raise Conflict(N_("A disbursement of this loan is already on its way; wait for its outcome."))
    known = conn.execute(outgoing_payments.select().where(outgoing_payments.c.payment_hash == payment_hash)).first()
    if known is not None:
        raise Conflict(N_("This invoice was already used for a payment from Microlend; make a new one."))
    per_lender = _per_lender(conn, loan_id)
    reserved = loans.lender_reserved_ids(conn, per_lender)
    lines = [LineDraft(reserved[lender], amount) for lender, amount in sorted(per_lender.items())]
    lines.append(LineDraft(loan.escrow_account_id, -loan.amount_msat))
    entry = ledger.post(conn, [EntryDraft("disbursement_hold", tuple(lines), f"hold:{payment_hash}")])[0]
    now = datetime.now(timezone.utc)
    result = conn.execute(insert(outgoing_payments).values(
        purpose="disbursement", user_id=borrower_id, loan_id=loan_id, payment_hash=payment_hash, bolt11=bolt11,
        amount_msat=loan.amount_msat, fee_reserve_msat=fee_reserve_msat, status="pending",
        hold_entry_id=entry.id, created_at=now, updated_at=now))
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


def settle(conn: Connection, payment_id: int, loan_id: int, payment_hash: str, fee_msat: int,
           preimage: str | None, today: date | None = None) -> int:
    """The borrower was paid: the loan starts today. Returns the settling entry id."""
    loan = loans.get_loan(conn, loan_id, lock=True)
    node = ledger.account_id(conn, "system:node_asset")
    lines = [LineDraft(loan.escrow_account_id, loan.amount_msat), LineDraft(node, -(loan.amount_msat + fee_msat))]
    if fee_msat:
        lines.append(LineDraft(ledger.account_id(conn, "system:node_fees_paid"), fee_msat))
    entry = ledger.post(conn, [EntryDraft("disbursement", tuple(lines), f"settle:{payment_hash}")])[0]
    day = today or datetime.now(timezone.utc).date()
    state = start(replace(loan.contract, start_date=day))
    loans.write_installments(conn, loan_id, state.installments)
    loans.set_notes_status(conn, (n.id for n in loans.notes_of_loan(conn, loan_id, ("pledged",))), "active")
    loans.set_loan(conn, loan_id, status="active", delinquency="current", start_date=day,
                   disbursed_at=datetime.now(timezone.utc), principal_outstanding_msat=loan.amount_msat,
                   interest_accrued_msat=0, accrued_on=day)
    event_notices.loan_disbursed(conn, loan_id)
    return entry.id


def release(conn: Connection, loan_id: int, payment_hash: str) -> int:
    """The payment clearly failed: the pledges go back to the lenders' reserved balances."""
    loan = loans.get_loan(conn, loan_id, lock=True)
    per_lender = _per_lender(conn, loan_id)
    reserved = loans.lender_reserved_ids(conn, per_lender)
    lines = [LineDraft(loan.escrow_account_id, loan.amount_msat)]
    lines.extend(LineDraft(reserved[lender], -amount) for lender, amount in sorted(per_lender.items()))
    return ledger.post(conn, [EntryDraft("disbursement_release", tuple(lines), f"release:{payment_hash}")])[0].id


def mark(conn: Connection, payment_id: int, **values: object) -> None:
    conn.execute(update(outgoing_payments).where(outgoing_payments.c.id == payment_id)
                 .values(updated_at=datetime.now(timezone.utc), **values))
