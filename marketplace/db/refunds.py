"""The operator's refund queue: money that arrives for a person who was erased.

Erasure cancels a person's open invoices at the node first, but money can still arrive for them (an invoice
the node had not yet deleted, a node that lost the cancellation). Credited to the erased account, nobody could
ever take it out: it goes instead to `system:refunds_due`, with a row here carrying the invoice's details (label,
payment hash, amount, loan), for the operator to return to the payer.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Connection, insert, select

from marketplace.db.invoices import InvoiceRow
from marketplace.db.tables import refund_queue, users

REFUNDS_ACCOUNT = "system:refunds_due"
ERASED_PERSON = "erased_person"


@dataclass(frozen=True)
class RefundDue:
    id: int
    invoice_id: int
    loan_id: int | None
    payment_hash: str
    label: str
    amount_msat: int
    reason: str
    created_at: datetime


def erased_among(conn: Connection, user_ids: Iterable[int]) -> set[int]:
    ids = sorted(set(user_ids))
    if not ids:
        return set()
    return {int(i) for i in conn.execute(select(users.c.id).where(users.c.id.in_(ids),
                                                                   users.c.erased_at.is_not(None))).scalars()}


def queue(conn: Connection, refunds: Sequence[tuple[InvoiceRow, str, int]], reason: str = ERASED_PERSON) -> None:
    """One row per (invoice, payment hash, amount) held for refunding, in the crediting transaction."""
    if not refunds:
        return
    now = datetime.now(timezone.utc)
    conn.execute(insert(refund_queue), [
        {"invoice_id": row.id, "user_id": row.user_id, "loan_id": row.loan_id, "payment_hash": payment_hash,
         "label": row.label, "amount_msat": amount_msat, "reason": reason, "created_at": now}
        for row, payment_hash, amount_msat in refunds])


def due(conn: Connection, limit: int = 200) -> list[RefundDue]:
    """What the operator still has to refund, oldest first."""
    rows = conn.execute(select(refund_queue).where(refund_queue.c.settled_at.is_(None))
                        .order_by(refund_queue.c.id).limit(limit))
    return [RefundDue(int(r.id), int(r.invoice_id), r.loan_id, r.payment_hash, r.label, int(r.amount_msat), r.reason,
                      r.created_at) for r in rows]
