"""Learn the fate of outgoing payments whose outcome is not known, and finish them.

For each open payment whose lock it can take (a live caller holds the lock of
a payment it is paying, in any process; a killed one's lock died with it):

1. `listpays` for the hash: complete -> settle; pending -> wait.
2. No record (or only failed attempts) and the invoice still payable: hand the
   same invoice to the node again. A payment is keyed by its payment hash and
   the node pays a hash at most once (xpay answers 219 for one already paid,
   which is then settled from `listpays`), so this is safe whatever happened
   before: it is how a payment killed after its hold was committed but before
   the node was asked gets paid within seconds of the restart instead of being
   held until its invoice expires.
3. Money goes back only on a clear failure of an attempt made when no other
   attempt of ours can still be running at the node (the last one began more
   than `pay_retry_for_s + pay_quiet_margin_s` ago: xpay gives up after
   retry_for), or when the invoice has expired with nothing pending or paid.
   "The node has no record" alone never releases anything.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

import anyio
import anyio.to_thread

from lightning.errors import LightningError
from lightning.invoices import decode_invoice
from lightning.port import LightningPort, PaymentState
from marketplace.db import outgoing
from marketplace.db.engine import Database
from marketplace.db.outgoing import OutgoingRow
from marketplace.db.offloop import in_transaction, reading
from marketplace.settings import Settings
from marketplace.payments.attempts import attempt
from marketplace.payments.locks import payment_locks

log = logging.getLogger("microlend.reconciler")


async def reconcile_outgoing(database: Database, port: LightningPort, settings: Settings,
                             only_id: int | None = None, *, resubmit: bool = False) -> int:
    """Settle or release (and with `resubmit`, hand again to the node) every open payment no live caller
    holds; the count resolved.

    Only the background reconciler resubmits (marketplace/workers/supervisor.py); the look-only pass a
    new withdrawal or disbursement makes first is cheap and never pays.
    """
    if only_id is not None:
        rows = await reading(database, lambda c: [outgoing.get(c, only_id)])
    else:
        rows = await reading(database, outgoing.open_payments)
    locks = payment_locks(database)
    resolved = 0
    for row in rows:
        if row.status not in outgoing.OPEN:
            continue
        if only_id is None and row.status == "pending" and \
                (datetime.now(timezone.utc) - row.last_attempt_at()).total_seconds() < settings.resubmit_after_s:
            # Just held: its caller is about to claim it and hand it to the node (a loaded machine can take
            # a moment between the hold's commit and the claim). If the caller died, a later pass takes it.
            continue
        if not await anyio.to_thread.run_sync(locks.try_claim, row.payment_hash):
            continue  # a live caller is paying it right now
        try:
            # Read again under the lock: the caller that just let go may have finished it.
            current = await reading(database, lambda c: outgoing.get(c, row.id))
            if current.status in outgoing.OPEN:
                final = await _reconcile_one(database, port, settings, current, resubmit=resubmit)
                resolved += final.status not in outgoing.OPEN
        except LightningError as exc:
            log.warning("cannot reconcile payment %s yet: %s", row.id, exc.message)
            return resolved
        finally:
            with anyio.CancelScope(shield=True):  # never leave a payment locked in this process
                await anyio.to_thread.run_sync(locks.release, row.payment_hash)
    return resolved


async def _reconcile_one(database: Database, port: LightningPort, settings: Settings, row: OutgoingRow,
                         *, resubmit: bool) -> OutgoingRow:
    status = await port.payment_status(row.payment_hash)
    if status.state is PaymentState.COMPLETE:
        fee = (status.amount_sent_msat or row.amount_msat) - (status.amount_msat or row.amount_msat)
        return await in_transaction(database, lambda c: outgoing.settle(c, row.id, max(fee, 0),
                                                                        status.payment_preimage))
    if status.state is PaymentState.PENDING:
        return await _unknown(database, row, "the node is still trying this payment")
    quiet = row.last_attempt_at() < outgoing.stale_cutoff(settings.pay_retry_for_s, settings.pay_quiet_margin_s)
    expires_at = _expires_at(row.bolt11)
    if expires_at is not None and expires_at <= time.time():
        if quiet:
            return await in_transaction(database, lambda c: outgoing.release(
                c, row.id, "never paid, and the invoice has expired"))
        return await _unknown(database, row, "outcome not yet known")
    if status.state is PaymentState.FAILED and quiet and not resubmit:
        return await in_transaction(database, lambda c: outgoing.release(
            c, row.id, "the node reports the payment failed"))
    age_s = (datetime.now(timezone.utc) - row.last_attempt_at()).total_seconds()
    if not resubmit or age_s < settings.resubmit_after_s:
        return await _unknown(database, row, "outcome not yet known")
    log.warning("handing payment %s (%s) to the node again: it has no completed or pending record",
             row.id, row.purpose)
    fresh = await in_transaction(database, lambda c: outgoing.mark_attempt(c, row.id))
    return await attempt(database, port, settings, fresh, _amount_param(row), may_release=quiet)


async def _unknown(database: Database, row: OutgoingRow, message: str) -> OutgoingRow:
    if row.status == "pending":
        return await in_transaction(database, lambda c: outgoing.mark_unknown(c, row.id, message))
    return row


def _expires_at(bolt11: str) -> int | None:
    try:
        return decode_invoice(bolt11).expires_at
    except LightningError:
        return None


def _amount_param(row: OutgoingRow) -> int | None:
    """What the first attempt passed: nothing for an invoice with an amount, the held amount otherwise."""
    try:
        return None if decode_invoice(row.bolt11).amount_msat is not None else row.amount_msat
    except LightningError:
        return None
