"""Payments to a loan's BOLT12 offer through the crediting path, without a real node: adopted as the loan's
repayment invoice and credited exactly once however often the node reports them; other offers stepped over."""
from __future__ import annotations

import hashlib
import os
import time

from sqlalchemy import func, select

from lightning.port import CreatedOffer, InvoiceStatus, InvoiceUpdate
from marketplace.db.crediting import apply_updates
from marketplace.db.engine import Database
from marketplace.db.offers import store_offer
from marketplace.db.tables import invoices, repayments
from marketplace.db.verify import verify_ledger
from marketplace.settings import Settings
from tests.fixtures.devnode import DevNode
from tests.lightning_app.reach_support import active_loan

OFFER_ID = "ab" * 32


def offer_payment(offer_id: str, amount_msat: int, pay_index: int) -> InvoiceUpdate:
    preimage = os.urandom(32).hex()
    payment_hash = hashlib.sha256(bytes.fromhex(preimage)).hexdigest()
    now = int(time.time())
    return InvoiceUpdate(
        label=f"{offer_id}-02{'cd' * 32}-{pay_index}", payment_hash=payment_hash, status=InvoiceStatus.PAID,
        amount_msat=amount_msat, bolt11=None, description="Microlend loan 1 repayment (ref 00000000)",
        expires_at=now + 7200, created_index=pay_index, updated_index=pay_index, pay_index=pay_index,
        amount_received_msat=amount_msat, paid_at=now, payment_preimage=preimage, local_offer_id=offer_id)


def test_an_offer_payment_is_adopted_and_credited_once(
        database: Database, node_settings: Settings, devnode_session: DevNode) -> None:
    loan = active_loan(database, node_settings, devnode_session, "offercredit")
    database.run(lambda c: store_offer(c, loan.loan_id, CreatedOffer(OFFER_ID, "lno1qqqq")))
    # A second store keeps the first offer (two page views raced to make it).
    kept = database.run(lambda c: store_offer(c, loan.loan_id, CreatedOffer("cd" * 32, "lno1zzzz")))
    assert kept.offer_id == OFFER_ID
    ours = offer_payment(OFFER_ID, 4_000_000, 10_001)
    someone_elses = offer_payment("ef" * 32, 5_000_000, 10_002)
    first = database.run(lambda c: apply_updates(c, [ours, someone_elses]))
    assert first.credited == 1 and first.stepped_over == 1
    again = database.run(lambda c: apply_updates(c, [ours, ours]))
    assert again.credited == 0
    row = database.read(lambda c: c.execute(select(invoices).where(
        invoices.c.payment_hash == ours.payment_hash)).one())
    assert row.purpose == "repayment" and row.loan_id == loan.loan_id and row.user_id == loan.borrower_id
    assert row.status == "paid" and row.amount_received_msat == 4_000_000 and row.bolt11 is None
    assert row.label == f"microlend:offer:{ours.payment_hash}"
    assert database.read(lambda c: c.execute(select(func.count()).select_from(repayments).where(
        repayments.c.loan_id == loan.loan_id)).scalar_one()) == 1
    assert database.read(lambda c: c.execute(select(func.count()).select_from(invoices).where(
        invoices.c.payment_hash == someone_elses.payment_hash)).scalar_one()) == 0
    assert database.read(verify_ledger).ok
