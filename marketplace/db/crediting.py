"""Crediting paid invoices: one transaction per batch, exactly once, cursor included.

Each invoice purpose has a credit rule that turns a batch of its paid
invoices into journal entries and, once those are posted, records whatever
else the purpose needs (a repayment's allocation and shares).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select, update

from lightning.port import InvoiceStatus, InvoiceUpdate
from marketplace.db import ledger
from marketplace.db.invoices import COLUMNS, Cursor, InvoiceRow, cursor, row_from
from marketplace.db.credit_types import CreditPlan, CreditRule, PaidBatch
from marketplace.db.offers import adopt_offer_payments
from marketplace.db.repayments import credit_repayments
from marketplace.db.tables import invoices, listener_state
from marketplace.domain.journal import AccountKind
from marketplace.domain.payments import deposit_entry

# CreditPlan, CreditRule and PaidBatch live in credit_types.py (so repayments.py need not import this module);
# they stay importable from here.
__all__ = ["CreditPlan", "CreditReport", "CreditRule", "PaidBatch", "apply_updates", "credit_deposits", "credit_rule"]


@dataclass(frozen=True)
class CreditReport:
    credited: int
    stepped_over: int
    expired: int
    cursor: Cursor


def credit_deposits(conn: Connection, batch: PaidBatch) -> CreditPlan:
    from marketplace.db.autoinvest import enqueue_for_lenders

    node = ledger.account_id(conn, "system:node_asset")
    available = ledger.user_account_ids(conn, {row.user_id for row, _ in batch}, AccountKind.USER_AVAILABLE)
    enqueue_for_lenders(conn, "deposit", {row.user_id for row, _ in batch})
    return CreditPlan([
        deposit_entry(node, available[row.user_id], paid.amount_received_msat or row.amount_msat, paid.payment_hash)
        for row, paid in batch
    ])


def credit_rule(purpose: str) -> CreditRule:
    if purpose == "repayment":
        return credit_repayments
    return credit_deposits


def _no_fault(point: str) -> None:
    pass


def apply_updates(conn: Connection, updates: Sequence[InvoiceUpdate], *, advance_cursor: bool = True,
                  fault: Callable[[str], None] = _no_fault) -> CreditReport:
    """Credit every paid invoice of ours in `updates` once, mark expiries, move the cursor.

    Invoices the marketplace never made (the operator's own, keysend
    receipts) are stepped over; an invoice already credited is skipped, so a
    repeated update changes nothing.

    `fault` is the crash tests' hook (marketplace/payments/faults.py): it is
    called with `{purpose}:before-credit` before a batch is credited and with
    `{purpose}:mid-credit` once its journal entry is posted but before the rest
    (a repayment's share-out to the notes) is written; both inside this transaction.
    """
    state = cursor(conn)
    # Payments to a loan's BOLT12 offer: invoices the node made on its own, written down here first.
    adopt_offer_payments(conn, updates)
    hashes = [u.payment_hash for u in updates]
    # Locked (PostgreSQL; SQLite's write lock already covers it), in id order against deadlocks: a second
    # credit path with the same paid invoice (a drain and a sweep at once, two listeners in a failover)
    # waits here and then reads 'paid' and steps over, instead of allocating the payment again and being
    # stopped only by the unique payment hash — a failed transaction where there should be no work.
    ours = {
        r.payment_hash: row_from(r)
        for r in conn.execute(select(*COLUMNS).where(invoices.c.payment_hash.in_(hashes))
                              .order_by(invoices.c.id).with_for_update())
    } if hashes else {}
    to_credit: dict[str, list[tuple[InvoiceRow, InvoiceUpdate]]] = {}
    expired: list[int] = []
    stepped_over = 0
    seen: set[str] = set()
    for update_ in updates:
        row = ours.get(update_.payment_hash)
        if row is None:
            if update_.status is InvoiceStatus.PAID:
                stepped_over += 1
            continue
        if update_.payment_hash in seen:
            continue
        seen.add(update_.payment_hash)
        if update_.status is InvoiceStatus.PAID and row.status != "paid" and update_.pay_index is not None:
            to_credit.setdefault(row.purpose, []).append((row, update_))
        elif update_.status is InvoiceStatus.EXPIRED and row.status in ("unpaid", "creating"):
            expired.append(row.id)

    credited = 0
    for purpose, batch in to_credit.items():
        fault(f"{purpose}:before-credit")
        plan = credit_rule(purpose)(conn, batch)
        posted = ledger.post(conn, plan.drafts)
        fault(f"{purpose}:mid-credit")
        plan.finish(posted)
        entries = posted if plan.entry_of is None else [posted[i] for i in plan.entry_of]
        conn.execute(
            update(invoices)
            .where(invoices.c.id == bindparam("row_id"), invoices.c.status != "paid")
            .values(status="paid", pay_index=bindparam("p_index"), amount_received_msat=bindparam("received"),
                    paid_at=bindparam("p_at"), credit_entry_id=bindparam("entry")),
            [
                {"row_id": row.id, "p_index": paid.pay_index, "received": paid.amount_received_msat,
                 "p_at": paid.paid_at, "entry": entry.id}
                for (row, paid), entry in zip(batch, entries)
            ],
        )
        credited += len(batch)
    if expired:
        conn.execute(update(invoices).where(invoices.c.id.in_(expired)).values(status="expired"))

    new = state
    if advance_cursor and updates:
        pay_indexes = [u.pay_index for u in updates if u.pay_index is not None]
        updated_indexes = [u.updated_index for u in updates if u.updated_index is not None]
        new = Cursor(max([state.last_pay_index, *pay_indexes]), max([state.last_updated_index, *updated_indexes]))
        if new != state:
            conn.execute(update(listener_state).where(listener_state.c.id == 1).values(
                last_pay_index=new.last_pay_index, last_updated_index=new.last_updated_index))
    return CreditReport(credited, stepped_over, len(expired), new)
