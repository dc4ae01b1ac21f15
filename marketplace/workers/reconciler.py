"""Learn the fate of outgoing payments whose outcome is not known, from the node (`listpays`)."""
from __future__ import annotations

import logging
import time

from lightning.errors import LightningError
from lightning.invoices import decode_invoice
from lightning.port import LightningPort, PaymentState
from marketplace.db import outgoing
from marketplace.db.engine import Database
from marketplace.services.lightning_calls import in_transaction, reading
from marketplace.settings import Settings

log = logging.getLogger("microlend.reconciler")

# After an invoice expires no new attempt can start; with nothing in listpays, it never will be paid.
EXPIRY_MARGIN_S = 120


async def reconcile_outgoing(database: Database, port: LightningPort, settings: Settings,
                             only_id: int | None = None) -> int:
    """Settle or release every open payment the node has an answer for; the count resolved."""
    cutoff = outgoing.stale_cutoff(settings.pay_retry_for_s)
    rows = await reading(database, lambda c: outgoing.open_payments(c, older_than=cutoff))
    if only_id is not None:
        rows = await reading(database, lambda c: [outgoing.get(c, only_id)])
    resolved = 0
    for row in rows:
        if row.status not in outgoing.OPEN:
            continue
        try:
            status = await port.payment_status(row.payment_hash)
        except LightningError as exc:
            log.warning("cannot reconcile payment %s yet: %s", row.id, exc.message)
            return resolved
        if status.state is PaymentState.COMPLETE:
            fee = (status.amount_sent_msat or row.amount_msat) - (status.amount_msat or row.amount_msat)
            await in_transaction(database, lambda c: outgoing.settle(c, row.id, max(fee, 0), status.payment_preimage))
            resolved += 1
        elif status.state is PaymentState.FAILED:
            await in_transaction(database, lambda c: outgoing.release(c, row.id, "the node reports the payment failed"))
            resolved += 1
        elif status.state is PaymentState.UNKNOWN and _expired(row.bolt11):
            await in_transaction(database, lambda c: outgoing.release(
                c, row.id, "never attempted by the node, and the invoice has expired"))
            resolved += 1
        elif row.status == "pending":
            await in_transaction(database, lambda c: outgoing.mark_unknown(c, row.id, "outcome not yet known"))
    return resolved


def _expired(bolt11: str) -> bool:
    try:
        return decode_invoice(bolt11).expires_at + EXPIRY_MARGIN_S < time.time()
    except LightningError:
        return False
