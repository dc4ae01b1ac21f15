"""Limits on invoice creation, counted from the `invoices` table inside the transaction that records one.

- Per user: at most INVOICES_PER_WINDOW invoices asked for in WINDOW_S seconds
  (every invoice asked for leaves a row, failed ones too).
- Marketplace-wide: invoices still open (not paid, not expired) from one
  network address, whatever accounts it uses, and in all. Fresh accounts
  cannot multiply the per-user limit, and a flood cannot fill the node.

The user's row is locked first (and, for the marketplace-wide caps, an
advisory lock taken) so that, on PostgreSQL, two requests cannot both pass a
count; SQLite's writing transactions are serialised already.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, and_, func, or_, select, text

from marketplace.db.tables import invoices, users
from marketplace.domain.errors import TooManyAttempts
from marketplace.domain.messages import Message, N_, ngettext

INVOICES_PER_WINDOW = 30
WINDOW_S = 600


class TooManyInvoices(TooManyAttempts):
    """429: the user asked for too many invoices lately; `retry_after_s` says how long to wait."""

    code = "too_many_invoices"

    def __init__(self, message: str | Message, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def check_invoice_rate(conn: Connection, user_id: int, now: datetime,
                       limit: int = INVOICES_PER_WINDOW, window_s: int = WINDOW_S) -> None:
    """Raise TooManyInvoices when `user_id` already has `limit` invoices made since now - window."""
    conn.execute(select(users.c.id).where(users.c.id == user_id).with_for_update()).one_or_none()
    since = now - timedelta(seconds=window_s)
    count, oldest = conn.execute(
        select(func.count(), func.min(invoices.c.created_at))
        .where(invoices.c.user_id == user_id, invoices.c.created_at >= since)
    ).one()
    if int(count) < limit:
        return
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=now.tzinfo)
    wait_s = window_s if oldest is None else max(1, math.ceil((oldest + timedelta(seconds=window_s) - now)
                                                             .total_seconds()))
    minutes = max(1, math.ceil(wait_s / 60))
    raise TooManyInvoices(
        N_("You asked for %(limit)s invoices in the last %(window)s minutes, the most allowed. "
           "Pay or let one of them expire, and try again %(wait)s.",
           limit=limit, window=window_s // 60, wait=ngettext("in %(num)d minute", "in %(num)d minutes", minutes)),
        wait_s)


# Any constant: the PostgreSQL advisory lock that orders the marketplace-wide counts.
_UNPAID_LOCK_KEY = 0x6D6C5F696E76  # "ml_inv"


class TooManyOpenInvoices(TooManyAttempts):
    """429: too many invoices are waiting to be paid (from this address, or in all)."""

    code = "too_many_open_invoices"

    def __init__(self, message: str | Message, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def check_open_invoices(conn: Connection, address: str | None, now: datetime, per_address: int, total: int,
                        creating_expiry_s: int) -> None:
    """Raise TooManyOpenInvoices when `address` (if known) or the whole marketplace has too many open invoices.

    Open: 'unpaid' and not yet expired, or still 'creating' (the node not yet
    answered) and younger than an invoice's lifetime.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UNPAID_LOCK_KEY})
    now_s = int(now.timestamp())
    c = invoices.c
    open_ = or_(and_(c.status == "unpaid", or_(c.expires_at.is_(None), c.expires_at > now_s)),
                and_(c.status == "creating", c.created_at > now - timedelta(seconds=creating_expiry_s)))
    checks: list[tuple[ColumnElement[bool] | None, int, Message]] = []
    if address is not None:
        checks.append((c.address == address, per_address,
                       N_("There are already %(count)s unpaid invoices from your network address, the most "
                          "allowed at once. Pay one, or let one expire, and try again %(wait)s.", count=per_address)))
    checks.append((None, total, N_("The marketplace has as many unpaid invoices as it takes at once right now. "
                                   "Try again %(wait)s.")))
    for condition, limit, sentence in checks:
        query = select(func.count(), func.min(c.expires_at)).where(open_)
        if condition is not None:
            query = query.where(condition)
        count, first_expiry = conn.execute(query).one()
        if int(count) >= limit:
            wait_s = max(1, (int(first_expiry) - now_s) if first_expiry is not None else 60)
            minutes = max(1, math.ceil(wait_s / 60))
            wait = ngettext("in %(num)d minute", "in %(num)d minutes", minutes)
            raise TooManyOpenInvoices(sentence.with_values(wait=wait), wait_s)
