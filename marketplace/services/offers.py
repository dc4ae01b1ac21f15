"""A BOLT12 offer per loan, made once by the marketplace's node and kept.

The offer is for any amount, and its description names only the loan number and a random reference
(no borrower's name or story: anyone holding the offer can read it). Payments to it are credited by the
listener (marketplace/db/offers.py), so they keep working while the web server is down.

The embedded dev node has no offers (BOLT12 needs onion messages and BIP-340 signatures over TLV merkle
roots; a half-faithful stand-in would lie about the real boundary): there `UnknownCommand` comes back and
the pages say that offers need a real Core Lightning node.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass

from lightning.errors import LightningError, UnknownCommand
from lightning.port import LightningPort
from marketplace.db import offers
from marketplace.db.engine import Database
from marketplace.services.lightning_calls import in_transaction, reading


@dataclass(frozen=True)
class OfferShown:
    bolt12: str | None
    # True when the node has no offers at all (the dev node): the page says why none is shown.
    needs_real_node: bool = False


async def loan_offer(database: Database, port: LightningPort, loan_id: int) -> OfferShown:
    """The loan's offer, made on first request; none (and no error) while the node cannot be reached."""
    stored = await reading(database, lambda c: offers.offer_of(c, loan_id))
    if stored is not None:
        return OfferShown(stored.bolt12)
    # A random reference keeps each loan's offer distinct (CLN answers an identical offer with the old one).
    reference = secrets.token_hex(4)
    try:
        made = await port.create_offer(f"Microlend loan {loan_id} repayment (ref {reference})",
                                       f"microlend:loan:{loan_id}:{reference}")
    except UnknownCommand:
        return OfferShown(None, needs_real_node=True)
    except LightningError:
        return OfferShown(None)
    kept = await in_transaction(database, lambda c: offers.store_offer(c, loan_id, made))
    return OfferShown(kept.bolt12)
