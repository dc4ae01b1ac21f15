"""The credit rule for repayment invoices: allocate, share out to the notes, record — set-based.

Runs inside the listener's batch transaction. Each payment is allocated on
the loan's state as left by the payments before it in the same batch.

What is written per repayment is one row: the allocation, and the lenders'
cumulative totals before and after it. Each note's share of that repayment
is a pure function of those totals and the notes' weights (sharing.py:
its exact part of the totals, rounded down, plus its remainder msat when the
loan closes), so the per-note split is not stored row by row but recomputed
exactly on demand (`repayment_shares`); the notes' running totals, one
update per note per batch, and the ledger, one entry per loan per batch with
one line per lender, hold the money. A repayment is credited once: its
payment hash is unique, and everything above is one transaction.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, bindparam, insert, select, update

from lightning.port import InvoiceUpdate
from marketplace.db import event_notices, ledger, refunds
from marketplace.db.autoinvest import enqueue_for_lenders
from marketplace.db.credit_types import CreditPlan, PaidBatch
from marketplace.db.invoices import InvoiceRow
from marketplace.db.ledger import PostedEntry
from marketplace.db.loans import LOAN_COLUMNS, LoanRow, loan_from, loan_states, note_weights, save_installments
from marketplace.db.tables import legacy_note_shares, loans, notes, repayments
from marketplace.domain.errors import NotFound
from marketplace.domain.journal import AccountKind, EntryDraft, LineDraft
from marketplace.domain.loans.allocation import InstallmentState, LoanState, Payment, apply_payment
from marketplace.domain.loans.sharing import Notes, service_fee_msat, share_out
from marketplace.domain.messages import N_

# Loans that can still take money; anything else is refunded to the borrower in full.
RECEIVING = ("active", "written_off")


@dataclass
class LoanWork:
    """One loan while a batch is being allocated: its state and the lenders' totals move payment by payment."""

    loan: LoanRow
    state: LoanState
    installments_before: tuple[InstallmentState, ...]
    note_ids: list[int]
    notes: Notes | None
    lenders: list[int]
    cash_total: int
    principal_total: int
    income_total: int
    cash: NDArray[np.int64] = field(init=False)
    principal: NDArray[np.int64] = field(init=False)
    touched: bool = False

    def __post_init__(self) -> None:
        self.cash = np.zeros(len(self.note_ids), dtype=np.int64)
        self.principal = np.zeros(len(self.note_ids), dtype=np.int64)

    @property
    def receiving(self) -> bool:
        return self.loan.status in RECEIVING and not self.state.is_repaid and self.notes is not None


@dataclass(frozen=True)
class Applied:
    payment: Payment
    service_fee_msat: int
    held_change_msat: int
    cash_before_msat: int
    principal_before_msat: int
    closing: bool


def _paid_on(paid: InvoiceUpdate) -> date:
    moment = datetime.fromtimestamp(paid.paid_at, timezone.utc) if paid.paid_at else datetime.now(timezone.utc)
    return moment.date()


def _apply(work: LoanWork, received: int, on: date) -> Applied:
    assert work.notes is not None
    payment = apply_payment(work.state, received, on)
    fee = service_fee_msat(work.income_total, payment.income_msat, work.loan.service_fee_bps)
    lenders = payment.applied_msat - fee
    cash_before, principal_before = work.cash_total, work.principal_total
    shares = share_out(work.notes, cash_before, cash_before + lenders, principal_before,
                       principal_before + payment.principal_msat, closing=payment.fully_repaid,
                       rotation=work.loan.id, cash_base_msat=work.loan.shared_cash_base_msat or 0)
    work.state = payment.state
    work.cash_total += lenders
    work.principal_total += payment.principal_msat
    work.income_total += payment.income_msat
    work.touched = True
    work.cash += shares.cash_msat
    work.principal += shares.principal_msat
    return Applied(payment, fee, shares.held_change_msat, cash_before, principal_before, payment.fully_repaid)


def credit_repayments(conn: Connection, batch: PaidBatch) -> CreditPlan:
    loan_ids = sorted({row.loan_id for row, _ in batch if row.loan_id is not None})
    loan_rows = [loan_from(x) for x in conn.execute(
        select(*LOAN_COLUMNS).where(loans.c.id.in_(loan_ids)).with_for_update())]
    states = loan_states(conn, loan_rows)
    weights = note_weights(conn, loan_ids)
    work: dict[int, LoanWork] = {}
    for loan in loan_rows:
        if loan.id not in states:
            continue
        held = weights[loan.id]
        work[loan.id] = LoanWork(loan, states[loan.id], states[loan.id].installments, [n for n, _, _ in held],
                                 Notes.of([w for _, w, _ in held]) if held else None,
                                 [lender for _, _, lender in held], loan.shared_cash_msat,
                                 loan.shared_principal_msat, loan.shared_income_msat)

    node = ledger.account_id(conn, "system:node_asset")
    fees = ledger.account_id(conn, "system:operator_fees")
    lender_ids = {lender for w in work.values() for lender in w.lenders}
    available = ledger.user_account_ids(conn, lender_ids | {row.user_id for row, _ in batch},
                                        AccountKind.USER_AVAILABLE)
    # A refund for a person who was erased goes to the operator's refund queue: nobody can sign in as them.
    erased = refunds.erased_among(conn, {row.user_id for row, _ in batch})
    refunds_due = ledger.account_id(conn, refunds.REFUNDS_ACCOUNT) if erased else None
    queued: list[tuple[InvoiceRow, str, int]] = []

    recorded: list[tuple[InvoiceRow, InvoiceUpdate, Applied | None, int]] = []
    # One journal entry per loan per batch: lines aggregated per account, so a
    # backlog of repayments writes one line per lender, not one per share.
    totals: dict[int | None, dict[int, int]] = {}
    hashes: dict[int | None, list[str]] = {}
    for row, paid in batch:
        received = paid.amount_received_msat or row.amount_msat
        loan_work = work.get(row.loan_id) if row.loan_id is not None else None
        applied: Applied | None = None
        if loan_work is not None and loan_work.receiving:
            applied = _apply(loan_work, received, _paid_on(paid))
        lines = totals.setdefault(row.loan_id, {})
        hashes.setdefault(row.loan_id, []).append(paid.payment_hash)
        lines[node] = lines.get(node, 0) + received
        refund = received if applied is None else applied.payment.refund_msat
        if refund:
            acct = available[row.user_id] if refunds_due is None or row.user_id not in erased else refunds_due
            lines[acct] = lines.get(acct, 0) - refund
            if acct == refunds_due:
                queued.append((row, paid.payment_hash, refund))
        if applied is not None and loan_work is not None:
            if applied.service_fee_msat:
                lines[fees] = lines.get(fees, 0) - applied.service_fee_msat
            if applied.held_change_msat:
                escrow = loan_work.loan.escrow_account_id
                lines[escrow] = lines.get(escrow, 0) - applied.held_change_msat
        recorded.append((row, paid, applied, received))
    for loan_id, loan_work in work.items():
        if loan_work.touched:
            lines = totals[loan_id]
            for lender, cash in zip(loan_work.lenders, loan_work.cash.tolist()):
                acct = available[lender]
                lines[acct] = lines.get(acct, 0) - cash

    order = list(totals)
    drafts = [
        EntryDraft(
            "repayment",
            tuple(LineDraft(acct, amount) for acct, amount in totals[loan_id].items() if amount),
            "repayments:" + hashlib.sha256("".join(sorted(hashes[loan_id])).encode()).hexdigest(),
            memo=f"loan {loan_id}: {len(hashes[loan_id])} payment(s)",
        )
        for loan_id in order
    ]
    entry_of = [order.index(row.loan_id) for row, _ in batch]

    def finish(posted: list[PostedEntry]) -> None:
        now = datetime.now(timezone.utc)
        conn.execute(insert(repayments), [_repayment_row(row, paid, applied, received, posted[index].id, now)
                                          for (row, paid, applied, received), index in zip(recorded, entry_of)])
        refunds.queue(conn, queued)
        note_updates = []
        for loan_work in work.values():
            if not loan_work.touched:
                continue
            _save_loan(conn, loan_work, now)
            assert loan_work.notes is not None
            written_off = loan_work.loan.status == "written_off"
            status = "repaid" if loan_work.state.is_repaid else ("written_off" if written_off else "active")
            if status == "repaid":
                event_notices.loan_repaid(conn, loan_work.loan.id)
            repaid = loan_work.notes.floors(loan_work.principal_total)[0]
            left = (loan_work.notes.weights - repaid).tolist()
            for note_id, remaining, cash, principal in zip(loan_work.note_ids, left, loan_work.cash.tolist(),
                                                           loan_work.principal.tolist()):
                note_updates.append({"n_id": note_id, "left": remaining, "dp": principal, "di": cash - principal,
                                     "dr": cash, "loss": remaining if written_off else 0, "st": status})
        enqueue_for_lenders(conn, "repayment", {lender for w in work.values() if w.touched for lender in w.lenders},
                            reinvest_only=True)
        if note_updates:
            conn.execute(
                update(notes).where(notes.c.id == bindparam("n_id")).values(
                    principal_outstanding_msat=bindparam("left"),
                    principal_repaid_msat=notes.c.principal_repaid_msat + bindparam("dp"),
                    income_msat=notes.c.income_msat + bindparam("di"),
                    received_msat=notes.c.received_msat + bindparam("dr"),
                    loss_msat=bindparam("loss"), status=bindparam("st")),
                note_updates,
            )

    return CreditPlan(drafts, finish, entry_of)


def _repayment_row(row: InvoiceRow, paid: InvoiceUpdate, applied: Applied | None, received: int, entry_id: int,
                   now: datetime) -> dict[str, object]:
    payment = applied.payment if applied else None
    values: dict[str, object] = {
        "loan_id": row.loan_id, "payment_hash": paid.payment_hash, "received_msat": received,
        "applied_msat": 0, "refund_msat": received, "service_fee_msat": 0, "late_fee_msat": 0, "interest_msat": 0,
        "principal_msat": 0, "entry_id": entry_id, "received_at": now,
        "shared_cash_before_msat": None, "shared_principal_before_msat": None, "closing": False,
    }
    if applied is not None and payment is not None:
        values.update(
            applied_msat=payment.applied_msat, refund_msat=payment.refund_msat,
            service_fee_msat=applied.service_fee_msat, late_fee_msat=payment.late_fee_msat,
            interest_msat=payment.interest_msat, principal_msat=payment.principal_msat,
            shared_cash_before_msat=applied.cash_before_msat,
            shared_principal_before_msat=applied.principal_before_msat, closing=applied.closing)
    return values


def _save_loan(conn: Connection, work: LoanWork, now: datetime) -> None:
    state = work.state
    save_installments(conn, work.loan.id, work.installments_before, state.installments)
    values: dict[str, object] = {
        "principal_outstanding_msat": state.balance.principal_msat,
        "interest_accrued_msat": state.balance.interest_msat, "accrued_on": state.balance.accrued_on,
        "installment_msat": state.level_msat,
        "shared_cash_msat": work.cash_total, "shared_principal_msat": work.principal_total,
        "shared_income_msat": work.income_total,
    }
    if state.is_repaid:
        values.update(status="repaid", delinquency="current", closed_on=now.date())
    conn.execute(update(loans).where(loans.c.id == work.loan.id).values(**values))


@dataclass(frozen=True)
class NoteShare:
    note_id: int
    cash_msat: int
    principal_msat: int

    @property
    def income_msat(self) -> int:
        return self.cash_msat - self.principal_msat


def repayment_shares(conn: Connection, payment_hash: str) -> list[NoteShare]:
    """Each note's share of one repayment, exactly as it was paid out.

    Recomputed from the lenders' totals the repayment row carries (sharing.py);
    repayments credited before those totals existed (migration 0006) read the
    split stored for them then.
    """
    found = conn.execute(select(repayments).where(repayments.c.payment_hash == payment_hash)).one_or_none()
    if found is None:
        raise NotFound(N_("There is no such repayment."))
    if found.shared_cash_before_msat is None:
        legacy = conn.execute(select(legacy_note_shares).where(legacy_note_shares.c.payment_hash == payment_hash)
                              .order_by(legacy_note_shares.c.note_id)).all()
        return [NoteShare(int(r.note_id), int(r.cash_msat), int(r.principal_msat)) for r in legacy]
    held = note_weights(conn, [int(found.loan_id)])[int(found.loan_id)]
    if not held:
        return []
    lenders = int(found.applied_msat) - int(found.service_fee_msat)
    cash_before, principal_before = int(found.shared_cash_before_msat), int(found.shared_principal_before_msat)
    base = conn.execute(select(loans.c.shared_cash_base_msat).where(loans.c.id == found.loan_id)).scalar()
    # A recovery after the write-off's payout is shared counting from it; a repayment before, from 0.
    base = int(base) if base is not None and cash_before >= int(base) else 0
    shares = share_out(Notes.of([w for _, w, _ in held]), cash_before, cash_before + lenders, principal_before,
                       principal_before + int(found.principal_msat), closing=bool(found.closing),
                       rotation=int(found.loan_id), cash_base_msat=base)
    return [NoteShare(note_id, cash, principal) for (note_id, _, _), cash, principal in
            zip(held, shares.cash_msat.tolist(), shares.principal_msat.tolist())]


def shares_of(conn: Connection, payment_hashes: Sequence[str]) -> int:
    """How many note shares these repayments were split into (for checks and tests)."""
    return sum(len(repayment_shares(conn, h)) for h in payment_hashes)
