"""What crediting and its per-purpose credit rules share: a batch of paid invoices, and a rule's plan.

Its own module so that crediting.py (which picks a rule per purpose) and the rules (repayments.py) both
import it and neither imports the other's module back.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from lightning.port import InvoiceUpdate
from marketplace.db.invoices import InvoiceRow
from marketplace.db.ledger import PostedEntry
from marketplace.domain.journal import EntryDraft

PaidBatch = Sequence[tuple[InvoiceRow, InvoiceUpdate]]


@dataclass(frozen=True)
class CreditPlan:
    drafts: list[EntryDraft]
    finish: Callable[[list[PostedEntry]], None] = lambda posted: None
    # For each paid invoice of the batch, the index of the draft that credits it
    # (None: one draft per invoice, in batch order).
    entry_of: list[int] | None = None


CreditRule = Callable[[Connection, PaidBatch], CreditPlan]
