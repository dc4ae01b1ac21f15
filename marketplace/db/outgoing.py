"""Outgoing payments: the hold, the node call's outcome, and the settlement, as rows."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import Connection, insert, select, update

from marketplace.db import ledger
from marketplace.db.tables import outgoing_payments
from marketplace.domain.errors import Conflict
from marketplace.domain.journal import AccountKind, EntryDraft, LineDraft
from marketplace.domain.payments import hold_entry, release_entry, settle_entry
from marketplace.domain.messages import N_


@dataclass(frozen=True)
class OutgoingRow:
    id: int
    purpose: str
    user_id: int
    payment_hash: str
    bolt11: str
    amount_msat: int
    fee_reserve_msat: int
    fee_msat: int | None
    status: str
    error: str
    created_at: datetime
    loan_id: int | None
    # When the last attempt of ours began (the hold, or a resubmission): no call of ours
    # can still be running at the node once retry_for has passed since.
    updated_at: datetime | None = None

    def last_attempt_at(self) -> datetime:
        return _aware(self.updated_at or self.created_at)


_COLUMNS = [outgoing_payments.c[name] for name in OutgoingRow.__dataclass_fields__]
OPEN = ("pending", "unknown")


def _row(r: object) -> OutgoingRow:
    return OutgoingRow(**{name: getattr(r, name) for name in OutgoingRow.__dataclass_fields__})


def get(conn: Connection, payment_id: int, *, lock: bool = False) -> OutgoingRow:
    query = select(*_COLUMNS).where(outgoing_payments.c.id == payment_id)
    return _row(conn.execute(query.with_for_update() if lock else query).one())


def for_user(conn: Connection, user_id: int, limit: int = 20) -> list[OutgoingRow]:
    rows = conn.execute(select(*_COLUMNS).where(outgoing_payments.c.user_id == user_id)
                        .order_by(outgoing_payments.c.id.desc()).limit(limit))
    return [_row(r) for r in rows]


def open_payments(conn: Connection, older_than: datetime | None = None) -> list[OutgoingRow]:
    query = select(*_COLUMNS).where(outgoing_payments.c.status.in_(OPEN)).order_by(outgoing_payments.c.id)
    rows = [_row(r) for r in conn.execute(query)]
    if older_than is None:
        return rows
    # 'pending' rows younger than the cutoff belong to a call still in flight.
    return [r for r in rows if r.status == "unknown" or _aware(r.created_at) < older_than]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def hold(conn: Connection, purpose: str, user_id: int, payment_hash: str, bolt11: str,
         amount_msat: int, fee_reserve_msat: int) -> int:
    """Record the payment and hold amount plus reserve, in the caller's (committed-before-paying) transaction."""
    known = conn.execute(
        select(outgoing_payments.c.status).where(outgoing_payments.c.payment_hash == payment_hash)
    ).scalar()
    if known is not None:
        raise Conflict(N_("This invoice was already used for a payment from Microlend (its payment is %(state)s); "
                          "ask for a new invoice.", state=known))
    available = ledger.account_id(conn, ledger.user_account_code(user_id, AccountKind.USER_AVAILABLE))
    pending = ledger.account_id(conn, ledger.user_account_code(user_id, AccountKind.USER_PENDING_OUT))
    entry = ledger.post(conn, [hold_entry(available, pending, amount_msat + fee_reserve_msat, payment_hash)])[0]
    now = datetime.now(timezone.utc)
    result = conn.execute(insert(outgoing_payments).values(
        purpose=purpose, user_id=user_id, payment_hash=payment_hash, bolt11=bolt11, amount_msat=amount_msat,
        fee_reserve_msat=fee_reserve_msat, status="pending", hold_entry_id=entry.id, created_at=now, updated_at=now,
    ))
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


def mark_attempt(conn: Connection, payment_id: int) -> OutgoingRow:
    """Record that the invoice is being handed to the node again (committed before the call)."""
    conn.execute(update(outgoing_payments).where(outgoing_payments.c.id == payment_id,
                                                 outgoing_payments.c.status.in_(OPEN))
                 .values(updated_at=datetime.now(timezone.utc)))
    return get(conn, payment_id)


def mark_unknown(conn: Connection, payment_id: int, error: str) -> OutgoingRow:
    row = get(conn, payment_id, lock=True)
    if row.status in OPEN:
        # updated_at is left alone: it dates the last attempt, not the last look.
        conn.execute(update(outgoing_payments).where(outgoing_payments.c.id == payment_id).values(
            status="unknown", error=error[:2000]))
    return get(conn, payment_id)


def settle(conn: Connection, payment_id: int, fee_msat: int, preimage: str | None) -> OutgoingRow:
    """The node paid: release the unused reserve. Only an open payment can settle (once)."""
    row = get(conn, payment_id, lock=True)
    if row.status not in OPEN:
        return row
    if row.purpose == "disbursement":
        from marketplace.db import disbursements  # a disbursement settles the loan too

        assert row.loan_id is not None
        entry_id = disbursements.settle(conn, row.id, row.loan_id, row.payment_hash, fee_msat, preimage)
        disbursements.mark(conn, row.id, status="succeeded", fee_msat=fee_msat, payment_preimage=preimage,
                           settle_entry_id=entry_id, error="")
        return get(conn, payment_id)
    user_fee = min(fee_msat, row.fee_reserve_msat)
    available = ledger.account_id(conn, ledger.user_account_code(row.user_id, AccountKind.USER_AVAILABLE))
    pending = ledger.account_id(conn, ledger.user_account_code(row.user_id, AccountKind.USER_PENDING_OUT))
    node = ledger.account_id(conn, "system:node_asset")
    drafts = [settle_entry(pending, available, node, row.amount_msat, row.fee_reserve_msat, user_fee, row.payment_hash)]
    if fee_msat > user_fee:  # the node overspent its cap: the operator bears it, not the user
        fees = ledger.account_id(conn, "system:node_fees_paid")
        excess = fee_msat - user_fee
        drafts.append(EntryDraft("fee_overrun", (LineDraft(fees, excess), LineDraft(node, -excess)),
                                 f"overrun:{row.payment_hash}"))
    entry = ledger.post(conn, drafts)[0]
    conn.execute(update(outgoing_payments).where(outgoing_payments.c.id == payment_id).values(
        status="succeeded", fee_msat=fee_msat, payment_preimage=preimage, settle_entry_id=entry.id,
        error="", updated_at=datetime.now(timezone.utc)))
    return get(conn, payment_id)


def release(conn: Connection, payment_id: int, error: str) -> OutgoingRow:
    """The payment clearly failed: everything held goes back. Only an open payment can be released."""
    row = get(conn, payment_id, lock=True)
    if row.status not in OPEN:
        return row
    if row.purpose == "disbursement":
        from marketplace.db import disbursements

        assert row.loan_id is not None
        entry_id = disbursements.release(conn, row.loan_id, row.payment_hash)
        disbursements.mark(conn, row.id, status="failed", settle_entry_id=entry_id, error=error[:2000])
        return get(conn, payment_id)
    available = ledger.account_id(conn, ledger.user_account_code(row.user_id, AccountKind.USER_AVAILABLE))
    pending = ledger.account_id(conn, ledger.user_account_code(row.user_id, AccountKind.USER_PENDING_OUT))
    entry = ledger.post(conn, [release_entry(pending, available, row.amount_msat + row.fee_reserve_msat,
                                             row.payment_hash)])[0]
    conn.execute(update(outgoing_payments).where(outgoing_payments.c.id == payment_id).values(
        status="failed", settle_entry_id=entry.id, error=error[:2000], updated_at=datetime.now(timezone.utc)))
    return get(conn, payment_id)


def stale_cutoff(retry_for_s: int, margin_s: int = 60) -> datetime:
    """Attempts begun before this have ended at the node (xpay gives up after retry_for)."""
    return datetime.now(timezone.utc) - timedelta(seconds=retry_for_s + margin_s)
