"""Paying a user's BOLT11 invoice out of their available balance.

Hold first (its own committed transaction), pay with `maxfee` equal to the
reserve, then settle or release by the node's answer. Anything that is not a
clear success or a clear failure is *unknown*: the hold stays until the
reconciler learns the outcome from the node.
"""
from __future__ import annotations

from dataclasses import dataclass

from lightning.errors import AlreadyPaid, InvoiceExpired, LightningError, NoRoute, PaymentFailed
from lightning.invoices import InvalidInvoice, check_payable
from lightning.port import LightningPort
from marketplace.db import outgoing
from marketplace.db.engine import Database
from marketplace.db.outgoing import OutgoingRow
from marketplace.domain.errors import InvoiceRefused
from marketplace.domain.payments import check_amount, fee_reserve_msat
from marketplace.services.lightning_calls import NodeFacts, in_transaction
from marketplace.settings import Settings
from marketplace.workers.reconciler import reconcile_outgoing

CLEAR_FAILURES = (NoRoute, PaymentFailed, InvoiceExpired)


@dataclass(frozen=True)
class PayoutRequest:
    purpose: str
    user_id: int
    bolt11: str
    amount_msat: int | None  # only for invoices without an amount


async def pay_out(
    database: Database, port: LightningPort, facts: NodeFacts, settings: Settings, request: PayoutRequest,
    *, max_amount_sat: int = 10_000_000,
) -> OutgoingRow:
    await reconcile_outgoing(database, port, settings)
    info = await facts.get()
    try:
        payable = check_payable(request.bolt11, node_network=info.network, own_node_id=info.id,
                                amount_msat=request.amount_msat)
    except InvalidInvoice as exc:
        raise InvoiceRefused(exc.message) from exc
    check_amount(payable.amount_msat, settings.withdrawal_min_sat, max_amount_sat, "withdrawal")
    reserve = fee_reserve_msat(payable.amount_msat, settings.fee_reserve_ppm, settings.fee_reserve_min_msat)
    payment_id = await in_transaction(database, lambda c: outgoing.hold(
        c, request.purpose, request.user_id, payable.invoice.payment_hash, payable.invoice.bolt11,
        payable.amount_msat, reserve))
    return await send_held(database, port, settings, payment_id, payable.invoice.bolt11, payable.amount_param_msat,
                           reserve)


async def send_held(database: Database, port: LightningPort, settings: Settings, payment_id: int, bolt11: str,
                    amount_param_msat: int | None, reserve_msat: int) -> OutgoingRow:
    try:
        result = await port.pay(bolt11, amount_param_msat, reserve_msat, settings.pay_retry_for_s)
    except CLEAR_FAILURES as exc:
        return await in_transaction(database, lambda c: outgoing.release(c, payment_id, exc.message))
    except AlreadyPaid as exc:
        # The money already went: never refund on this; ask the node what happened.
        await in_transaction(database, lambda c: outgoing.mark_unknown(c, payment_id, exc.message))
        await reconcile_outgoing(database, port, settings, only_id=payment_id)
        return await in_transaction(database, lambda c: outgoing.get(c, payment_id))
    except (LightningError, OSError, TimeoutError) as exc:
        message = getattr(exc, "message", str(exc)) or type(exc).__name__
        return await in_transaction(database, lambda c: outgoing.mark_unknown(c, payment_id, message))
    return await in_transaction(
        database, lambda c: outgoing.settle(c, payment_id, result.fee_msat, result.payment_preimage))


async def withdraw(database: Database, port: LightningPort, facts: NodeFacts, settings: Settings, user_id: int,
                   bolt11: str, amount_msat: int | None) -> OutgoingRow:
    return await pay_out(database, port, facts, settings, PayoutRequest("withdrawal", user_id, bolt11, amount_msat))
