"""Paying a user's BOLT11 invoice out of their available balance.

Hold first (its own committed transaction), pay with `maxfee` equal to the
reserve, then settle or release by the node's answer. Anything that is not a
clear success or a clear failure is *unknown*: the hold stays until the
reconciler learns the outcome from the node (and, where the node has no
record of the payment, hands it the same invoice again: see
marketplace/payments/reconciler.py).

A node that is down is found before anything is held (a fresh getinfo:
503, nothing changed). If it goes down between that check and the payment,
the connection is refused: the request provably never reached the node, so
the hold is released at once rather than left unknown.
"""
from __future__ import annotations

from dataclasses import dataclass

import anyio
import anyio.to_thread

from lightning.invoices import InvalidInvoice, check_payable
from lightning.port import LightningPort
from marketplace.db import outgoing
from marketplace.db.engine import Database
from marketplace.db.outgoing import OutgoingRow
from marketplace.domain.errors import InvoiceRefused
from marketplace.domain.payments import check_amount, fee_reserve_msat
from marketplace.services.lightning_calls import NodeFacts, in_transaction, node_said, reading
from marketplace.settings import Settings
from marketplace.payments.faults import crash_at
from marketplace.payments.attempts import attempt
from marketplace.payments.locks import payment_locks
from marketplace.payments.reconciler import reconcile_outgoing
from marketplace.domain.messages import N_


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
    await reconcile_outgoing(database, port, settings)  # look only: never pays
    info = await facts.get(fresh=True)  # a node that is down: 503 before anything is held
    try:
        payable = check_payable(request.bolt11, node_network=info.network, own_node_id=info.id,
                                amount_msat=request.amount_msat)
    except InvalidInvoice as exc:
        raise InvoiceRefused(node_said(exc)) from exc
    check_amount(payable.amount_msat, settings.withdrawal_min_sat, max_amount_sat, N_("withdrawal"))
    reserve = fee_reserve_msat(payable.amount_msat, settings.fee_reserve_ppm, settings.fee_reserve_min_msat)
    payment_id = await in_transaction(database, lambda c: outgoing.hold(
        c, request.purpose, request.user_id, payable.invoice.payment_hash, payable.invoice.bolt11,
        payable.amount_msat, reserve))
    return await send_held(database, port, settings, payment_id, payable.invoice.bolt11, payable.amount_param_msat,
                           reserve)


async def send_held(database: Database, port: LightningPort, settings: Settings, payment_id: int, bolt11: str,
                    amount_param_msat: int | None, reserve_msat: int) -> OutgoingRow:
    """Hand a held payment to the node (its first attempt) and record the outcome."""
    row = await reading(database, lambda c: outgoing.get(c, payment_id))
    crash_at(settings.fault_injection, f"{row.purpose}:after-hold")
    locks = payment_locks(database)
    if not await anyio.to_thread.run_sync(locks.try_claim, row.payment_hash):
        return row  # the reconciler found it first and is handing it to the node itself
    try:
        return await attempt(database, port, settings, row, amount_param_msat, may_release=True)
    finally:
        with anyio.CancelScope(shield=True):  # never leave a payment locked in this process
            await anyio.to_thread.run_sync(locks.release, row.payment_hash)


async def withdraw(database: Database, port: LightningPort, facts: NodeFacts, settings: Settings, user_id: int,
                   bolt11: str, amount_msat: int | None) -> OutgoingRow:
    return await pay_out(database, port, facts, settings, PayoutRequest("withdrawal", user_id, bolt11, amount_msat))
