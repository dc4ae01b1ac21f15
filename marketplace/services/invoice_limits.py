"""Limits on invoice creation, counted from the `invoices` table inside the transaction that records one.

- Per user: at most INVOICES_PER_WINDOW of their own invoices (asked for on
  their pages or through the API) asked for in WINDOW_S seconds and still
  open: one paid or expired frees its place, as the refusal says.
- Per loan, apart: invoices anyone holding the loan's pay code asks for
  (LNURL). They never count against the borrower's own allowance; an open one
  for the same amount is handed out again rather than a new one made, and at
  most `paycode_open_per_loan` are open at once (each lives a short while).
- Marketplace-wide: invoices still open (not paid, not expired) from one
  network address, whatever accounts it uses, and in all. Fresh accounts
  cannot multiply the per-user limit, and a flood cannot fill the node.

The user's row is locked first (and, for the marketplace-wide caps, an
advisory lock taken) so that, on PostgreSQL, two requests cannot both pass a
count; SQLite's writing transactions are serialised already.
"""
from __future__ import annotations

import hashlib
import hmac
import math
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, and_, func, or_, select, text

from marketplace.db import invoices as invoice_rows
from marketplace.db.invoices import InvoiceRow
from marketplace.db.tables import invoices, loans, users
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


def address_key(secret_key: str, address: str | None) -> str | None:
    """What is kept of a network address for the per-address caps: a keyed hash (HMAC-SHA256, 32 hex digits).

    The caps only need to tell addresses apart; the address itself is nobody's business afterwards (and a
    payer's address must never reach a borrower's export).
    """
    if address is None:
        return None
    digest = hmac.new(secret_key.encode(), address.encode("utf-8", "replace"), hashlib.sha256).hexdigest()
    return digest[:32]


def _open(now: datetime, creating_expiry_s: int) -> ColumnElement[bool]:
    """Not paid, not expired, not failed: an invoice someone may still pay (or the node may still make)."""
    c = invoices.c
    now_s = int(now.timestamp())
    return or_(and_(c.status == "unpaid", or_(c.expires_at.is_(None), c.expires_at > now_s)),
               and_(c.status == "creating", c.created_at > now - timedelta(seconds=creating_expiry_s)))


def check_invoice_rate(conn: Connection, user_id: int, now: datetime,
                       limit: int = INVOICES_PER_WINDOW, window_s: int = WINDOW_S) -> None:
    """Raise TooManyInvoices when `user_id` already has `limit` of their own invoices made since now - window
    and still open (pay-code invoices are counted per loan instead: `reuse_or_check_paycode`)."""
    conn.execute(select(users.c.id).where(users.c.id == user_id).with_for_update()).one_or_none()
    since = now - timedelta(seconds=window_s)
    count, oldest = conn.execute(
        select(func.count(), func.min(invoices.c.created_at))
        .where(invoices.c.user_id == user_id, invoices.c.created_at >= since, invoices.c.made_by == "owner",
               _open(now, window_s))
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
    open_ = _open(now, creating_expiry_s)
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


class TooManyPayCodeInvoices(TooManyAttempts):
    """429: this loan's pay code has as many open invoices as it may have at once."""

    code = "too_many_paycode_invoices"

    def __init__(self, message: str | Message, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


# A reused invoice must leave a wallet this long to pay it.
REUSE_MARGIN_S = 60


def reuse_or_check_paycode(conn: Connection, loan_id: int, amount_msat: int, description: str, now: datetime,
                           open_max: int, expiry_s: int) -> InvoiceRow | None:
    """An open pay-code invoice of this loan for exactly this amount and metadata (handed out again), or None
    when a new one may be made; TooManyPayCodeInvoices when the loan's pay code has `open_max` open already.

    The loan's row is locked first so that, on PostgreSQL, two callbacks cannot both pass the count.
    """
    conn.execute(select(loans.c.id).where(loans.c.id == loan_id).with_for_update()).one_or_none()
    c = invoices.c
    mine = and_(c.loan_id == loan_id, c.made_by == "paycode")
    now_s = int(now.timestamp())
    same = conn.execute(select(c.id).where(
        mine, c.status == "unpaid", c.amount_msat == amount_msat, c.description == description,
        c.bolt11.is_not(None), c.expires_at > now_s + REUSE_MARGIN_S).order_by(c.expires_at.desc()).limit(1)).scalar()
    if same is not None:
        return invoice_rows.get(conn, int(same))
    count, first_expiry = conn.execute(select(func.count(), func.min(c.expires_at))
                                       .where(mine, _open(now, expiry_s))).one()
    if int(count) < open_max:
        return None
    wait_s = max(1, (int(first_expiry) - now_s) if first_expiry is not None else expiry_s)
    minutes = max(1, math.ceil(wait_s / 60))
    raise TooManyPayCodeInvoices(
        N_("This loan's pay code has %(count)s unpaid invoices already, the most at once. Pay one of them, or "
           "try again %(wait)s.", count=open_max, wait=ngettext("in %(num)d minute", "in %(num)d minutes", minutes)),
        wait_s)
