"""BOLT12 offers per loan: stored once per loan, and a paid invoice for one adopted as a repayment invoice.

A payer's wallet asks the marketplace's node for an invoice against the loan's offer (`fetchinvoice`); the
node makes and signs it without the marketplace being asked, labels it itself, and reports it paid with
`local_offer_id`. `adopt_offer_payments` writes such a payment down as the loan's repayment invoice inside
the listener's crediting transaction, so the ordinary repayment rule credits and allocates it exactly once
(the invoice's unique payment hash: a second sighting finds it already paid).
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from sqlalchemy import Connection, insert, select

from lightning.port import CreatedOffer, InvoiceStatus, InvoiceUpdate
from marketplace.db.tables import invoices, loan_offers, loans

LABEL_PREFIX = "microlend:offer:"


def offer_of(conn: Connection, loan_id: int) -> CreatedOffer | None:
    row = conn.execute(select(loan_offers.c.offer_id, loan_offers.c.bolt12).where(
        loan_offers.c.loan_id == loan_id)).first()
    return None if row is None else CreatedOffer(row.offer_id, row.bolt12)


def store_offer(conn: Connection, loan_id: int, offer: CreatedOffer) -> CreatedOffer:
    """Keep the first offer stored for the loan (two requests at once both asked the node: CLN answered
    both with the same offer, as its id is the hash of the same content)."""
    existing = offer_of(conn, loan_id)
    if existing is not None:
        return existing
    conn.execute(insert(loan_offers).values(loan_id=loan_id, offer_id=offer.offer_id, bolt12=offer.bolt12,
                                            created_at=datetime.now(timezone.utc)))
    return offer


def adopt_offer_payments(conn: Connection, updates: Sequence[InvoiceUpdate]) -> int:
    """Paid invoices for our loans' offers, not yet written down, become paid-pending repayment rows."""
    paid = [u for u in updates if u.local_offer_id and u.status is InvoiceStatus.PAID]
    if not paid:
        return 0
    offer_loans: dict[str, int] = {r.offer_id: r.loan_id for r in conn.execute(
        select(loan_offers.c.offer_id, loan_offers.c.loan_id).where(
            loan_offers.c.offer_id.in_({u.local_offer_id for u in paid})))}
    if not offer_loans:
        return 0
    known = set(conn.execute(select(invoices.c.payment_hash).where(
        invoices.c.payment_hash.in_([u.payment_hash for u in paid]))).scalars())
    borrowers: dict[int, int] = {r.id: r.borrower_id for r in conn.execute(
        select(loans.c.id, loans.c.borrower_id).where(loans.c.id.in_(set(offer_loans.values()))))}
    now = datetime.now(timezone.utc)
    rows = []
    for update_ in paid:
        loan_id = offer_loans.get(update_.local_offer_id or "")
        if loan_id is None or update_.payment_hash in known or not update_.amount_received_msat:
            continue
        known.add(update_.payment_hash)
        rows.append({
            # The node's own label (offer id, payer key, counter) is longer than ours: ours names the hash.
            "label": LABEL_PREFIX + update_.payment_hash, "purpose": "repayment", "user_id": borrowers[loan_id],
            "amount_msat": update_.amount_received_msat, "description": (update_.description or "")[:640],
            "status": "unpaid", "payment_hash": update_.payment_hash, "bolt11": None, "created_at": now,
            "expires_at": update_.expires_at, "loan_id": loan_id,
        })
    if rows:
        conn.execute(insert(invoices), rows)
    return len(rows)
