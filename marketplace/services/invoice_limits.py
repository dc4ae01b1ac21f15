"""Rate limit on invoice creation: at most INVOICES_PER_WINDOW invoices per user in WINDOW_S seconds.

Counted from the `invoices` table itself (every invoice asked for leaves a
row, failed ones too), inside the transaction that records the new one. The
user's row is locked first so that, on PostgreSQL, two requests of the same
user cannot both pass the count; SQLite's writing transactions are
serialised already.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, select

from marketplace.db.tables import invoices, users
from marketplace.domain.errors import TooManyAttempts

INVOICES_PER_WINDOW = 30
WINDOW_S = 600


class TooManyInvoices(TooManyAttempts):
    """429: the user asked for too many invoices lately; `retry_after_s` says how long to wait."""

    code = "too_many_invoices"

    def __init__(self, message: str, retry_after_s: int) -> None:
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
        f"You asked for {limit} invoices in the last {window_s // 60} minutes, the most allowed. "
        f"Pay or let one of them expire, and try again in {minutes} minute{'s' if minutes != 1 else ''}.",
        wait_s)
