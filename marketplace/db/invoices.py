"""The marketplace's own invoices and the listener's cursor."""
from __future__ import annotations

import uuid
from typing import Any
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import Connection, insert, select, update

from lightning.port import CreatedInvoice
from marketplace.db.tables import invoices, listener_state


@dataclass(frozen=True)
class InvoiceRow:
    id: int
    label: str
    purpose: str
    user_id: int
    amount_msat: int
    description: str
    status: str
    payment_hash: str | None
    bolt11: str | None
    expires_at: int | None
    amount_received_msat: int | None
    paid_at: int | None
    loan_id: int | None = None


@dataclass(frozen=True)
class Cursor:
    last_pay_index: int
    last_updated_index: int


COLUMNS = [invoices.c[name] for name in InvoiceRow.__dataclass_fields__]


def row_from(r: Sequence[Any]) -> InvoiceRow:
    """A row selected as `COLUMNS` (same order as the fields)."""
    return InvoiceRow(*r)


def record_new(conn: Connection, purpose: str, user_id: int, amount_msat: int, description: str,
               loan_id: int | None = None, *, address: str | None = None, made_by: str = "owner") -> InvoiceRow:
    """The invoice is written down before the node is asked, so a lost answer can be looked up by label.

    `address`: the keyed hash the per-address caps count by (services.invoice_limits.address_key), never the
    address itself. `made_by`: 'owner' or 'paycode' (whose budget it counts against)."""
    label = f"microlend:{purpose}:{uuid.uuid4().hex}"
    result = conn.execute(
        insert(invoices).values(
            label=label, purpose=purpose, user_id=user_id, amount_msat=amount_msat,
            description=description, status="creating", created_at=datetime.now(timezone.utc), loan_id=loan_id,
            address=None if address is None else address[:64], made_by=made_by,
        )
    )
    assert result.inserted_primary_key is not None
    return InvoiceRow(int(result.inserted_primary_key[0]), label, purpose, user_id, amount_msat, description,
                      "creating", None, None, None, None, None, loan_id)


def get(conn: Connection, invoice_id: int) -> InvoiceRow:
    return row_from(conn.execute(select(*COLUMNS).where(invoices.c.id == invoice_id)).one())


def find(conn: Connection, invoice_id: int, user_id: int) -> InvoiceRow | None:
    """An invoice, only if it belongs to this user."""
    r = conn.execute(
        select(*COLUMNS).where(invoices.c.id == invoice_id, invoices.c.user_id == user_id)
    ).one_or_none()
    return None if r is None else row_from(r)


def mark_created(conn: Connection, invoice_id: int, created: CreatedInvoice) -> InvoiceRow:
    """Store the node's answer; a row the sweep already completed is left as it is.

    A row the sweep gave up on ('failed' with no hash: the node had no such label
    when it looked) is revived: the node has just said it made the invoice.
    """
    conn.execute(
        update(invoices).where(
            invoices.c.id == invoice_id,
            (invoices.c.status == "creating") | ((invoices.c.status == "failed") & invoices.c.payment_hash.is_(None)),
        ).values(
            status="unpaid", payment_hash=created.payment_hash, bolt11=created.bolt11,
            expires_at=created.expires_at,
        )
    )
    return get(conn, invoice_id)


def mark_failed(conn: Connection, invoice_id: int) -> None:
    conn.execute(update(invoices).where(invoices.c.id == invoice_id, invoices.c.status == "creating")
                 .values(status="failed"))


def fail_lost_creation(conn: Connection, invoice_id: int, grace_s: int) -> bool:
    """A row left in 'creating' whose label the node does not know: the node was never asked. Settled once.

    Only rows older than `grace_s`: a younger one may belong to a call still on its way to the node.
    """
    cutoff = datetime.now(timezone.utc) - timedelta(seconds=grace_s)
    result = conn.execute(update(invoices).where(
        invoices.c.id == invoice_id, invoices.c.status == "creating", invoices.c.created_at < cutoff,
    ).values(status="failed"))
    return bool(result.rowcount)


def creating(conn: Connection, limit: int = 1000) -> list[InvoiceRow]:
    rows = conn.execute(select(*COLUMNS).where(invoices.c.status == "creating").order_by(invoices.c.id).limit(limit))
    return [row_from(r) for r in rows]


def open_invoices(conn: Connection, now_s: int, limit: int = 10_000) -> list[InvoiceRow]:
    """Invoices that may still be paid: the start-up sweep asks the node about each."""
    rows = conn.execute(
        select(*COLUMNS)
        .where(invoices.c.status.in_(("creating", "unpaid")))
        .where((invoices.c.expires_at.is_(None)) | (invoices.c.expires_at > now_s - 3600))
        .order_by(invoices.c.id)
        .limit(limit)
    )
    return [row_from(r) for r in rows]


def cursor(conn: Connection) -> Cursor:
    r = conn.execute(select(listener_state.c.last_pay_index, listener_state.c.last_updated_index)).one()
    return Cursor(int(r.last_pay_index), int(r.last_updated_index))
