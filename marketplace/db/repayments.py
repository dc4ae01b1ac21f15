"""The credit rule for repayment invoices: allocate, share out to the notes, record — set-based.

Runs inside the listener's batch transaction. Each payment is allocated on
the loan's state as left by the payments before it in the same batch; the
rows are then written with one executemany per table, so the cost per
repayment grows with its number of notes and nothing else.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from sqlalchemy import Connection, bindparam, insert, select, update

from lightning.port import InvoiceUpdate
from marketplace.db import ledger
from marketplace.db.bulk import insert_rows
from marketplace.db.crediting import CreditPlan, PaidBatch
from marketplace.db.invoices import InvoiceRow
from marketplace.db.ledger import PostedEntry
from marketplace.db.loans import LOAN_COLUMNS, installment_states, loan_from, note_states, save_installments
from marketplace.db.tables import loans, note_shares, notes, repayments
from marketplace.domain.journal import AccountKind, EntryDraft, LineDraft
from marketplace.domain.loans.allocation import (
    Allocation,
    InstallmentState,
    NoteState,
    allocate,
    apply_allocation,
)

# Loans that can still take money; anything else is refunded to the borrower in full.
RECEIVING = ("active", "written_off")


@dataclass
class LoanWork:
    """One loan's state while a batch is being allocated."""

    status: str
    service_fee_bps: int
    installments_before: list[InstallmentState]
    installments: list[InstallmentState]
    notes: list[NoteState]
    lender_of: dict[int, int]
    cash: dict[int, int] = field(default_factory=dict)
    principal: dict[int, int] = field(default_factory=dict)
    income: dict[int, int] = field(default_factory=dict)
    repaid: bool = False


def _paid_on(paid: InvoiceUpdate) -> date:
    moment = datetime.fromtimestamp(paid.paid_at, timezone.utc) if paid.paid_at else datetime.now(timezone.utc)
    return moment.date()


def credit_repayments(conn: Connection, batch: PaidBatch) -> CreditPlan:
    loan_ids = sorted({row.loan_id for row, _ in batch if row.loan_id is not None})
    loan_rows = {r.id: r for r in (loan_from(x) for x in conn.execute(
        select(*LOAN_COLUMNS).where(loans.c.id.in_(loan_ids)).with_for_update()))}
    states = installment_states(conn, loan_ids)
    note_map = note_states(conn, loan_ids)
    work: dict[int, LoanWork] = {}
    for loan_id, loan in loan_rows.items():
        pairs = note_map[loan_id]
        work[loan_id] = LoanWork(loan.status, loan.service_fee_bps, list(states[loan_id]), list(states[loan_id]),
                                 [state for state, _ in pairs], {state.note_id: lender for state, lender in pairs})

    node = ledger.account_id(conn, "system:node_asset")
    fees = ledger.account_id(conn, "system:operator_fees")
    lender_ids = {lender for w in work.values() for lender in w.lender_of.values()}
    available = ledger.user_account_ids(conn, lender_ids | {row.user_id for row, _ in batch},
                                        AccountKind.USER_AVAILABLE)

    recorded: list[tuple[InvoiceRow, InvoiceUpdate, Allocation | None, int]] = []
    # One journal entry per loan per batch: lines aggregated per account, so a
    # backlog of repayments writes one line per lender, not one per share.
    # Each payment's own split stays in note_shares, unique on (payment, note).
    totals: dict[int | None, dict[int, int]] = {}
    hashes: dict[int | None, list[str]] = {}
    for row, paid in batch:
        received = paid.amount_received_msat or row.amount_msat
        loan_work = work.get(row.loan_id) if row.loan_id is not None else None
        allocation: Allocation | None = None
        if loan_work is not None and loan_work.status in RECEIVING and not loan_work.repaid:
            allocation = allocate(received, loan_work.installments, loan_work.notes, loan_work.service_fee_bps,
                                  _paid_on(paid))
            loan_work.installments, loan_work.notes = apply_allocation(
                loan_work.installments, loan_work.notes, allocation)
            loan_work.repaid = allocation.fully_repaid
            cash, principal, income = loan_work.cash, loan_work.principal, loan_work.income
            for share in allocation.shares:
                cash[share.note_id] = cash.get(share.note_id, 0) + share.cash_msat
                principal[share.note_id] = principal.get(share.note_id, 0) + share.principal_msat
                income[share.note_id] = income.get(share.note_id, 0) + share.income_msat
        lines = totals.setdefault(row.loan_id, {})
        hashes.setdefault(row.loan_id, []).append(paid.payment_hash)
        lines[node] = lines.get(node, 0) + received
        refund = received if allocation is None else allocation.refund_msat
        if refund:
            acct = available[row.user_id]
            lines[acct] = lines.get(acct, 0) - refund
        if allocation is not None and loan_work is not None:
            if allocation.service_fee_msat:
                lines[fees] = lines.get(fees, 0) - allocation.service_fee_msat
            lender_of = loan_work.lender_of
            for share in allocation.shares:
                acct = available[lender_of[share.note_id]]
                lines[acct] = lines.get(acct, 0) - share.cash_msat
        recorded.append((row, paid, allocation, received))

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
        repayment_rows: list[dict[str, object]] = []
        share_rows: list[tuple[object, ...]] = []
        for (row, paid, allocation, received), index in zip(recorded, entry_of):
            entry = posted[index]
            repayment_rows.append({
                "loan_id": row.loan_id, "payment_hash": paid.payment_hash, "received_msat": received,
                "applied_msat": allocation.applied_msat if allocation else 0,
                "refund_msat": allocation.refund_msat if allocation else received,
                "service_fee_msat": allocation.service_fee_msat if allocation else 0,
                "late_fee_msat": allocation.late_fee_msat if allocation else 0,
                "interest_msat": allocation.interest_msat if allocation else 0,
                "principal_msat": allocation.principal_msat if allocation else 0,
                "entry_id": entry.id, "received_at": now,
            })
            if allocation is not None:
                share_rows.extend(
                    (paid.payment_hash, s.note_id, s.cash_msat, s.principal_msat, s.income_msat)
                    for s in allocation.shares)
        conn.execute(insert(repayments), repayment_rows)
        insert_rows(conn, note_shares, ("payment_hash", "note_id", "cash_msat", "principal_msat", "income_msat"),
                    share_rows)
        note_updates = []
        for loan_id, loan_work in work.items():
            save_installments(conn, loan_id, loan_work.installments_before, loan_work.installments)
            written_off = loan_work.status == "written_off"
            for state in loan_work.notes:
                if state.note_id not in loan_work.cash:
                    continue
                note_updates.append({
                    "n_id": state.note_id, "left": state.principal_outstanding_msat,
                    "dp": loan_work.principal[state.note_id], "di": loan_work.income[state.note_id],
                    "dr": loan_work.cash[state.note_id],
                    "loss": state.principal_outstanding_msat if written_off else 0,
                    "st": "repaid" if loan_work.repaid else ("written_off" if written_off else "active"),
                })
            if loan_work.repaid:
                conn.execute(update(loans).where(loans.c.id == loan_id).values(
                    status="repaid", delinquency="current", closed_on=now.date()))
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


def shares_of(conn: Connection, payment_hashes: Sequence[str]) -> int:
    """How many note shares exist for these payments (for checks and tests)."""
    from sqlalchemy import func

    return int(conn.execute(select(func.count()).select_from(note_shares)
                            .where(note_shares.c.payment_hash.in_(list(payment_hashes)))).scalar_one())
