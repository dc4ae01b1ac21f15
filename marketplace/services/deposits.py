"""A lender asks for a deposit invoice; the payment listener credits it when paid."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Connection

from lightning.errors import DuplicateLabel, LightningError, NodeUnreachable
from lightning.port import CreatedInvoice, LightningPort
from marketplace.db import invoices
from marketplace.db.engine import Database
from marketplace.db.invoices import InvoiceRow
from marketplace.domain.errors import LightningUnavailable, NotFound
from marketplace.domain.payments import check_amount
from marketplace.services.invoice_limits import (
    address_key,
    check_invoice_rate,
    check_open_invoices,
    reuse_or_check_paycode,
)
from marketplace.services.lightning_calls import in_transaction, node_said, reading
from marketplace.settings import Settings
from marketplace.domain.messages import N_


async def issue_invoice(
    database: Database, port: LightningPort, settings: Settings, purpose: str, user_id: int,
    amount_msat: int, description: str, loan_id: int | None = None, *, address: str | None = None,
    deschashonly: bool = False, paycode: bool = False,
) -> InvoiceRow:
    """Write the invoice down, ask the node for it, store the node's answer.

    If the node's answer is lost, the label is looked up rather than a second
    invoice made; a node that is down leaves a 'failed' row and no money moved.
    `address` is the network address the request came from (None from the CLI):
    it counts toward the marketplace-wide cap of open invoices per address.
    `deschashonly`: the BOLT11 carries SHA-256 of `description` instead of it (LNURL-pay's metadata).
    `paycode`: asked for through a loan's pay code by anyone holding it: counted against the loan's own
    pay-code budget (an open invoice for the same amount is handed out again), never the user's, and short-lived.
    Only a keyed hash of `address` is stored.
    """
    key = address_key(settings.secret_key, address)
    expiry_s = settings.paycode_invoice_expiry_s if paycode else settings.invoice_expiry_s

    def record(conn: Connection) -> tuple[InvoiceRow, bool]:
        # Same transaction as the insert: two requests at once cannot both slip past the limits.
        now = datetime.now(timezone.utc)
        if paycode:
            assert loan_id is not None
            again = reuse_or_check_paycode(conn, loan_id, amount_msat, description, now,
                                           settings.paycode_open_per_loan, expiry_s)
            if again is not None:
                return again, True
        else:
            check_invoice_rate(conn, user_id, now, settings.invoice_limit_count, settings.invoice_limit_window_s)
        check_open_invoices(conn, key, now, settings.invoice_unpaid_per_address, settings.invoice_unpaid_total,
                            settings.invoice_expiry_s)
        return invoices.record_new(conn, purpose, user_id, amount_msat, description, loan_id, address=key,
                                   made_by="paycode" if paycode else "owner"), False

    row, reused = await in_transaction(database, record)
    if reused:
        return row
    try:
        created = await port.create_invoice(amount_msat, row.label, description, expiry_s,
                                            deschashonly=deschashonly)
    except DuplicateLabel:
        found = await port.lookup_invoice(row.label)
        if found is None or found.bolt11 is None:
            raise
        created = CreatedInvoice(found.label, found.payment_hash, found.bolt11, "", found.expires_at,
                                 found.created_index)
    except NodeUnreachable as exc:
        await in_transaction(database, lambda c: invoices.mark_failed(c, row.id))
        raise LightningUnavailable(N_(
            "The Lightning node cannot be reached right now, so no invoice was made. Try again in a minute.")
        ) from exc
    except LightningError as exc:
        await in_transaction(database, lambda c: invoices.mark_failed(c, row.id))
        raise LightningUnavailable(N_("The Lightning node refused to make an invoice: %(reason)s",
                                        reason=node_said(exc))) from exc
    return await in_transaction(database, lambda c: invoices.mark_created(c, row.id, created))


async def create_deposit_invoice(
    database: Database, port: LightningPort, settings: Settings, user_id: int, amount_msat: int,
    *, address: str | None = None,
) -> InvoiceRow:
    check_amount(amount_msat, settings.deposit_min_sat, settings.deposit_max_sat, N_("deposit"))
    return await issue_invoice(database, port, settings, "deposit", user_id, amount_msat, "Microlend deposit",
                               address=address)


async def deposit_status(database: Database, user_id: int, invoice_id: int) -> InvoiceRow:
    """One of the user's own invoices; another user's is simply not found."""
    row = await reading(database, lambda c: invoices.find(c, invoice_id, user_id))
    if row is None:
        raise NotFound(N_("There is no such invoice."))
    return row
