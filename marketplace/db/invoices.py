"""The marketplace's own invoices and the listener's cursor."""
from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Connection, bindparam, insert, select, update

from lightning.port import CreatedInvoice, InvoiceStatus, InvoiceUpdate
from marketplace.db import ledger
from marketplace.db.tables import invoices, listener_state
from marketplace.domain.journal import AccountKind, EntryDraft
from marketplace.domain.payments import deposit_entry


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


@dataclass(frozen=True)
class Cursor:
    last_pay_index: int
    last_updated_index: int


@dataclass(frozen=True)
class CreditReport:
    credited: int
    stepped_over: int
    expired: int
    cursor: Cursor


def _row(r: object) -> InvoiceRow:
    return InvoiceRow(**{name: getattr(r, name) for name in InvoiceRow.__dataclass_fields__})


_COLUMNS = [invoices.c[name] for name in InvoiceRow.__dataclass_fields__]


def record_new(conn: Connection, purpose: str, user_id: int, amount_msat: int, description: str) -> InvoiceRow:
    """The invoice is written down before the node is asked, so a lost answer can be looked up by label."""
    label = f"microlend:{purpose}:{uuid.uuid4().hex}"
    result = conn.execute(
        insert(invoices).values(
            label=label, purpose=purpose, user_id=user_id, amount_msat=amount_msat,
            description=description, status="creating", created_at=datetime.now(timezone.utc),
        )
    )
    assert result.inserted_primary_key is not None
    return InvoiceRow(int(result.inserted_primary_key[0]), label, purpose, user_id, amount_msat, description,
                      "creating", None, None, None, None, None)


def get(conn: Connection, invoice_id: int) -> InvoiceRow:
    return _row(conn.execute(select(*_COLUMNS).where(invoices.c.id == invoice_id)).one())


def find(conn: Connection, invoice_id: int, user_id: int) -> InvoiceRow | None:
    """An invoice, only if it belongs to this user."""
    r = conn.execute(
        select(*_COLUMNS).where(invoices.c.id == invoice_id, invoices.c.user_id == user_id)
    ).one_or_none()
    return None if r is None else _row(r)


def mark_created(conn: Connection, invoice_id: int, created: CreatedInvoice) -> InvoiceRow:
    """Store the node's answer; a row the sweep already completed is left as it is."""
    conn.execute(
        update(invoices).where(invoices.c.id == invoice_id, invoices.c.status == "creating").values(
            status="unpaid", payment_hash=created.payment_hash, bolt11=created.bolt11,
            expires_at=created.expires_at,
        )
    )
    return get(conn, invoice_id)


def mark_failed(conn: Connection, invoice_id: int) -> None:
    conn.execute(update(invoices).where(invoices.c.id == invoice_id, invoices.c.status == "creating")
                 .values(status="failed"))


def open_invoices(conn: Connection, now_s: int, limit: int = 10_000) -> list[InvoiceRow]:
    """Invoices that may still be paid: the start-up sweep asks the node about each."""
    rows = conn.execute(
        select(*_COLUMNS)
        .where(invoices.c.status.in_(("creating", "unpaid")))
        .where((invoices.c.expires_at.is_(None)) | (invoices.c.expires_at > now_s - 3600))
        .order_by(invoices.c.id)
        .limit(limit)
    )
    return [_row(r) for r in rows]


def cursor(conn: Connection) -> Cursor:
    r = conn.execute(select(listener_state.c.last_pay_index, listener_state.c.last_updated_index)).one()
    return Cursor(int(r.last_pay_index), int(r.last_updated_index))


# A purpose's credit rule: the ledger entries for a batch of paid invoices of that purpose.
CreditRule = Callable[[Connection, Sequence[tuple[InvoiceRow, InvoiceUpdate]]], list[EntryDraft]]


def credit_deposits(conn: Connection, batch: Sequence[tuple[InvoiceRow, InvoiceUpdate]]) -> list[EntryDraft]:
    node = ledger.account_id(conn, "system:node_asset")
    available = ledger.user_account_ids(conn, {row.user_id for row, _ in batch}, AccountKind.USER_AVAILABLE)
    return [
        deposit_entry(node, available[row.user_id], paid.amount_received_msat or row.amount_msat, paid.payment_hash)
        for row, paid in batch
    ]


CREDIT_RULES: dict[str, CreditRule] = {"deposit": credit_deposits}


def apply_updates(conn: Connection, updates: Sequence[InvoiceUpdate], *, advance_cursor: bool = True) -> CreditReport:
    """Credit every paid invoice of ours in `updates` once, mark expiries, move the cursor.

    One transaction: the credits and the new cursor commit together. Invoices
    the marketplace never made (the operator's own, keysend receipts) are
    stepped over; an invoice already credited is skipped, so a repeated
    update changes nothing.
    """
    state = cursor(conn)
    hashes = [u.payment_hash for u in updates]
    ours = {
        r.payment_hash: _row(r)
        for r in conn.execute(select(*_COLUMNS).where(invoices.c.payment_hash.in_(hashes)))
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
        drafts = CREDIT_RULES[purpose](conn, batch)
        posted = ledger.post(conn, drafts)
        conn.execute(
            update(invoices)
            .where(invoices.c.id == bindparam("row_id"), invoices.c.status != "paid")
            .values(status="paid", pay_index=bindparam("p_index"), amount_received_msat=bindparam("received"),
                    paid_at=bindparam("p_at"), credit_entry_id=bindparam("entry")),
            [
                {"row_id": row.id, "p_index": paid.pay_index, "received": paid.amount_received_msat,
                 "p_at": paid.paid_at, "entry": entry.id}
                for (row, paid), entry in zip(batch, posted)
            ],
        )
        credited += len(batch)
    if expired:
        conn.execute(update(invoices).where(invoices.c.id.in_(expired)).values(status="expired"))

    new = state
    if advance_cursor and updates:
        pay_indexes = [u.pay_index for u in updates if u.pay_index is not None]
        updated_indexes = [u.updated_index for u in updates if u.updated_index is not None]
        new = Cursor(
            max([state.last_pay_index, *pay_indexes]),
            max([state.last_updated_index, *updated_indexes]),
        )
        if new != state:
            conn.execute(update(listener_state).where(listener_state.c.id == 1).values(
                last_pay_index=new.last_pay_index, last_updated_index=new.last_updated_index))
    return CreditReport(credited, stepped_over, len(expired), new)
