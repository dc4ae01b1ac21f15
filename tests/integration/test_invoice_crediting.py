"""Crediting paid invoices: exactly once, cursor in the same transaction, foreign ones stepped over."""
from __future__ import annotations

import hashlib
import os

import pytest
from sqlalchemy import Connection

from lightning.port import CreatedInvoice, InvoiceStatus, InvoiceUpdate
from marketplace.db import invoices, ledger
from marketplace.db.crediting import apply_updates
from marketplace.db.engine import Database
from marketplace.db.verify import verify_ledger
from marketplace.domain.journal import AccountKind
from tests.ledger_helpers import make_user, table_counts


def paid_update(payment_hash: str, label: str, amount_msat: int, pay_index: int, updated_index: int,
                received_msat: int | None = None) -> InvoiceUpdate:
    return InvoiceUpdate(
        label=label, payment_hash=payment_hash, status=InvoiceStatus.PAID, amount_msat=amount_msat,
        bolt11="lnbcrt1fake", description="d", expires_at=2_000_000_000, created_index=pay_index,
        updated_index=updated_index, pay_index=pay_index, amount_received_msat=received_msat or amount_msat,
        paid_at=1_800_000_000, payment_preimage="00" * 32,
    )


def new_hash() -> str:
    return hashlib.sha256(os.urandom(32)).hexdigest()


def issued(database: Database, amount_msat: int) -> tuple[int, invoices.InvoiceRow]:
    def work(conn: Connection) -> tuple[int, invoices.InvoiceRow]:
        user_id, _ = make_user(conn)
        row = invoices.record_new(conn, "deposit", user_id, amount_msat, "Microlend deposit")
        row = invoices.mark_created(conn, row.id, CreatedInvoice(row.label, new_hash(), "lnbcrt1fake", "",
                                                                   2_000_000_000, 1))
        return user_id, row

    return database.run(work)


def available(database: Database, user_id: int) -> int:
    return database.read(lambda c: ledger.user_balances(c, user_id)[AccountKind.USER_AVAILABLE])


def test_a_paid_invoice_is_credited_once_and_moves_the_cursor(database: Database) -> None:
    user_id, row = issued(database, 50_000_000)
    assert row.payment_hash is not None
    update = paid_update(row.payment_hash, row.label, row.amount_msat, pay_index=1, updated_index=3,
                         received_msat=50_000_123)
    report = database.run(lambda c: apply_updates(c, [update]))
    assert report.credited == 1
    assert report.cursor == invoices.Cursor(1, 3)
    assert available(database, user_id) == 50_000_123  # what arrived, even above the invoice amount

    before = database.read(table_counts)
    again = database.run(lambda c: apply_updates(c, [update, update]))
    assert again.credited == 0
    assert database.read(table_counts) == before
    assert available(database, user_id) == 50_000_123
    stored = database.read(lambda c: invoices.get(c, row.id))
    assert (stored.status, stored.amount_received_msat) == ("paid", 50_000_123)
    assert database.read(verify_ledger).ok


def test_foreign_invoices_are_stepped_over_and_the_cursor_still_advances(database: Database) -> None:
    user_id, row = issued(database, 1_000)
    assert row.payment_hash is not None
    keysend = InvoiceUpdate(label="keysend-1800000000.123", payment_hash=new_hash(), status=InvoiceStatus.PAID,
                            amount_msat=None, bolt11=None, description=None, expires_at=2_000_000_000,
                            created_index=7, updated_index=8, pay_index=4, amount_received_msat=777,
                            paid_at=1_800_000_000)
    ours = paid_update(row.payment_hash, row.label, 1_000, pay_index=5, updated_index=9)
    report = database.run(lambda c: apply_updates(c, [keysend, ours]))
    assert (report.credited, report.stepped_over) == (1, 1)
    assert report.cursor == invoices.Cursor(5, 9)
    assert available(database, user_id) == 1_000


def test_expired_invoices_are_marked_and_credit_nothing(database: Database) -> None:
    user_id, row = issued(database, 1_000)
    assert row.payment_hash is not None
    expired = InvoiceUpdate(label=row.label, payment_hash=row.payment_hash, status=InvoiceStatus.EXPIRED,
                            amount_msat=1_000, bolt11="x", description="d", expires_at=1, created_index=1,
                            updated_index=2)
    report = database.run(lambda c: apply_updates(c, [expired]))
    assert (report.credited, report.expired) == (0, 1)
    assert report.cursor == invoices.Cursor(0, 2)
    assert database.read(lambda c: invoices.get(c, row.id)).status == "expired"
    assert available(database, user_id) == 0


def test_a_failing_batch_leaves_cursor_and_balances_untouched(database: Database) -> None:
    user_id, row = issued(database, 1_000)
    assert row.payment_hash is not None
    good = paid_update(row.payment_hash, row.label, 1_000, pay_index=1, updated_index=1)
    with pytest.raises(ZeroDivisionError):
        def work(conn: Connection) -> None:
            apply_updates(conn, [good])
            raise ZeroDivisionError  # a crash after the credit, before commit
        database.run(work)
    assert database.read(invoices.cursor) == invoices.Cursor(0, 0)
    assert available(database, user_id) == 0
