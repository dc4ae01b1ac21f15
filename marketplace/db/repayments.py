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
from marketplace.db.loans import LOAN_COLUMNS, LoanRow, loan_from, loan_states, note_weights, save_installments
from marketplace.db.tables import loans, note_shares, notes, repayments
from marketplace.domain.journal import AccountKind, EntryDraft, LineDraft
from marketplace.domain.loans.allocation import InstallmentState, LoanState, Payment, apply_payment
from marketplace.domain.loans.sharing import service_fee_msat, share_out

# Loans that can still take money; anything else is refunded to the borrower in full.
RECEIVING = ("active", "written_off")


@dataclass
class LoanWork:
    """One loan while a batch is being allocated: its state and the lenders' totals move payment by payment."""

    loan: LoanRow
    state: LoanState
    installments_before: tuple[InstallmentState, ...]
    note_ids: list[int]
    weights: list[int]
    lenders: list[int]
    cash_total: int
    principal_total: int
    income_total: int
    cash: list[int] = field(default_factory=list)
    principal: list[int] = field(default_factory=list)
    touched: bool = False

    def __post_init__(self) -> None:
        self.cash = [0] * len(self.note_ids)
        self.principal = [0] * len(self.note_ids)

    @property
    def receiving(self) -> bool:
        return self.loan.status in RECEIVING and not self.state.is_repaid and bool(self.note_ids)


@dataclass(frozen=True)
class Applied:
    payment: Payment
    service_fee_msat: int
    cash: tuple[int, ...]
    principal: tuple[int, ...]
    held_change_msat: int


def _paid_on(paid: InvoiceUpdate) -> date:
    moment = datetime.fromtimestamp(paid.paid_at, timezone.utc) if paid.paid_at else datetime.now(timezone.utc)
    return moment.date()


def _apply(work: LoanWork, received: int, on: date) -> Applied:
    payment = apply_payment(work.state, received, on)
    fee = service_fee_msat(work.income_total, payment.income_msat, work.loan.service_fee_bps)
    lenders = payment.applied_msat - fee
    shares = share_out(work.weights, work.cash_total, work.cash_total + lenders, work.principal_total,
                       work.principal_total + payment.principal_msat, closing=payment.fully_repaid,
                       rotation=work.loan.id)
    work.state = payment.state
    work.cash_total += lenders
    work.principal_total += payment.principal_msat
    work.income_total += payment.income_msat
    work.touched = True
    for index, (c, p) in enumerate(zip(shares.cash_msat, shares.principal_msat)):
        work.cash[index] += c
        work.principal[index] += p
    return Applied(payment, fee, shares.cash_msat, shares.principal_msat, shares.held_change_msat)


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
                                 [w for _, w, _ in held], [lender for _, _, lender in held], loan.shared_cash_msat,
                                 loan.shared_principal_msat, loan.shared_income_msat)

    node = ledger.account_id(conn, "system:node_asset")
    fees = ledger.account_id(conn, "system:operator_fees")
    lender_ids = {lender for w in work.values() for lender in w.lenders}
    available = ledger.user_account_ids(conn, lender_ids | {row.user_id for row, _ in batch},
                                        AccountKind.USER_AVAILABLE)

    recorded: list[tuple[InvoiceRow, InvoiceUpdate, Applied | None, int]] = []
    # One journal entry per loan per batch: lines aggregated per account, so a
    # backlog of repayments writes one line per lender, not one per share.
    # Each payment's own split stays in note_shares, unique on (payment, note).
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
            acct = available[row.user_id]
            lines[acct] = lines.get(acct, 0) - refund
        if applied is not None and loan_work is not None:
            if applied.service_fee_msat:
                lines[fees] = lines.get(fees, 0) - applied.service_fee_msat
            if applied.held_change_msat:
                escrow = loan_work.loan.escrow_account_id
                lines[escrow] = lines.get(escrow, 0) - applied.held_change_msat
            for lender, cash in zip(loan_work.lenders, applied.cash):
                acct = available[lender]
                lines[acct] = lines.get(acct, 0) - cash
        recorded.append((row, paid, applied, received))

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
        for (row, paid, applied, received), index in zip(recorded, entry_of):
            payment = applied.payment if applied else None
            repayment_rows.append({
                "loan_id": row.loan_id, "payment_hash": paid.payment_hash, "received_msat": received,
                "applied_msat": payment.applied_msat if payment else 0,
                "refund_msat": payment.refund_msat if payment else received,
                "service_fee_msat": applied.service_fee_msat if applied else 0,
                "late_fee_msat": payment.late_fee_msat if payment else 0,
                "interest_msat": payment.interest_msat if payment else 0,
                "principal_msat": payment.principal_msat if payment else 0,
                "entry_id": posted[index].id, "received_at": now,
            })
            if applied is not None and row.loan_id is not None:
                note_ids = work[row.loan_id].note_ids
                share_rows.extend(
                    (paid.payment_hash, note_id, cash, principal, cash - principal)
                    for note_id, cash, principal in zip(note_ids, applied.cash, applied.principal))
        conn.execute(insert(repayments), repayment_rows)
        insert_rows(conn, note_shares, ("payment_hash", "note_id", "cash_msat", "principal_msat", "income_msat"),
                    share_rows)
        note_updates = []
        for loan_id, loan_work in work.items():
            if not loan_work.touched:
                continue
            _save_loan(conn, loan_work, now)
            written_off = loan_work.loan.status == "written_off"
            repaid = loan_work.state.is_repaid
            weight_sum = sum(loan_work.weights)
            for index, note_id in enumerate(loan_work.note_ids):
                weight = loan_work.weights[index]
                left = weight - loan_work.principal_total * weight // weight_sum
                note_updates.append({
                    "n_id": note_id, "left": left, "dp": loan_work.principal[index],
                    "di": loan_work.cash[index] - loan_work.principal[index], "dr": loan_work.cash[index],
                    "loss": left if written_off else 0,
                    "st": "repaid" if repaid else ("written_off" if written_off else "active"),
                })
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


def shares_of(conn: Connection, payment_hashes: Sequence[str]) -> int:
    """How many note shares exist for these payments (for checks and tests)."""
    from sqlalchemy import func

    return int(conn.execute(select(func.count()).select_from(note_shares)
                            .where(note_shares.c.payment_hash.in_(list(payment_hashes)))).scalar_one())
