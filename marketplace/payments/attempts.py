"""One call of the node for a held outgoing payment, and what its answer means for the hold.

Shared by the first attempt (marketplace/services/withdrawals.py `send_held`)
and the reconciler's resubmission; the caller holds the payment's lock.
"""
from __future__ import annotations

import anyio.to_thread

from lightning.errors import (
    AlreadyPaid,
    InvoiceExpired,
    LightningError,
    NodeNotReached,
    NoRoute,
    PaymentFailed,
)
from lightning.port import LightningPort, PaymentState
from marketplace.db import outgoing
from marketplace.db.engine import Database
from marketplace.db.outgoing import OutgoingRow
from marketplace.db.offloop import in_transaction
from marketplace.settings import Settings
from marketplace.payments.faults import crash_at
from marketplace.payments.locks import payment_locks

# Clear failures of one attempt: nothing was delivered by it.
CLEAR_FAILURES = (NoRoute, PaymentFailed, InvoiceExpired)
NOT_REACHED = "The Lightning node could not be reached, so nothing was sent; the money is back in your balance."


async def attempt(database: Database, port: LightningPort, settings: Settings, row: OutgoingRow,
                  amount_param_msat: int | None, *, may_release: bool) -> OutgoingRow:
    """One call of the node for a held payment whose lock the caller holds.

    `may_release`: no other attempt of ours can be running at the node, so this
    call's clear failure is the payment's. A first attempt may; a resubmission
    may only once earlier attempts have provably ended (see the reconciler).
    """
    payment_id = row.id
    bolt11 = row.bolt11
    try:
        result = await port.pay(bolt11, amount_param_msat, row.fee_reserve_msat, settings.pay_retry_for_s)
    except NodeNotReached as exc:
        if may_release:
            return await _release(database, row, NOT_REACHED if row.purpose == "withdrawal" else exc.message)
        return await in_transaction(database, lambda c: outgoing.get(c, payment_id))
    except CLEAR_FAILURES as exc:
        if may_release:
            return await _release(database, row, exc.message)
        return await in_transaction(database, lambda c: outgoing.mark_unknown(c, payment_id, exc.message))
    except AlreadyPaid as exc:
        # The money already went: never refund on this; the node's record says how much it cost.
        await in_transaction(database, lambda c: outgoing.mark_unknown(c, payment_id, exc.message))
        return await settle_from_record(database, port, row)
    except (LightningError, OSError, TimeoutError) as exc:
        message = getattr(exc, "message", str(exc)) or type(exc).__name__
        return await in_transaction(database, lambda c: outgoing.mark_unknown(c, payment_id, message))
    if result.payment_hash != row.payment_hash:
        return await in_transaction(database, lambda c: outgoing.mark_unknown(
            c, payment_id, "the node's answer was for another payment"))
    crash_at(settings.fault_injection, f"{row.purpose}:after-pay")
    return await in_transaction(
        database, lambda c: outgoing.settle(c, payment_id, result.fee_msat, result.payment_preimage))


async def settle_from_record(database: Database, port: LightningPort, row: OutgoingRow) -> OutgoingRow:
    """Settle from `listpays` if the node records the payment complete; otherwise leave it open."""
    try:
        status = await port.payment_status(row.payment_hash)
    except LightningError:
        return await in_transaction(database, lambda c: outgoing.get(c, row.id))
    if status.state is not PaymentState.COMPLETE:
        return await in_transaction(database, lambda c: outgoing.get(c, row.id))
    fee = (status.amount_sent_msat or row.amount_msat) - (status.amount_msat or row.amount_msat)
    return await in_transaction(database, lambda c: outgoing.settle(c, row.id, max(fee, 0), status.payment_preimage))


async def _release(database: Database, row: OutgoingRow, message: str) -> OutgoingRow:
    # Release only while the lock provably holds: then nothing else can be paying this hash.
    if not await anyio.to_thread.run_sync(payment_locks(database).still_held, row.payment_hash):
        return await in_transaction(database, lambda c: outgoing.mark_unknown(c, row.id, message))
    return await in_transaction(database, lambda c: outgoing.release(c, row.id, message))
