"""A person's data: everything the marketplace holds about them (export), and erasure for borrowers.

Erasure removes what identifies the person — email, display name, stories,
network addresses, their wallet's invoices — and ends every way to sign in,
but keeps the money's record whole: the ledger (its hash chain included),
loans, schedules, repayments and the lenders' notes stay as they were, now
tied to a pseudonymous account. Nothing personal lives in a hashed ledger
field: entries carry kinds, payment hashes and loan or note numbers only
(tests/lightning_app/test_privacy.py checks), so the chain verifies after.
"""
from __future__ import annotations

import dataclasses
from functools import partial
import secrets
from collections.abc import Mapping
from datetime import date, datetime, timezone
from typing import Any

import anyio.to_thread
from sqlalchemy import Connection, Table, delete, func, select, update

from lightning.errors import NodeUnreachable
from lightning.port import InvoiceStatus, LightningPort
from marketplace.db import ledger
from marketplace.db.engine import Database
from marketplace.db.invoices import COLUMNS, InvoiceRow, row_from
from marketplace.db.tables import (
    api_tokens,
    autoinvest_rules,
    installments,
    invoices,
    loans,
    notes,
    outbox,
    outgoing_payments,
    pay_handles,
    repayments,
    sessions,
    signin_failures,
    users,
)
from marketplace.domain.errors import Conflict, Forbidden, InvalidInput, LightningUnavailable, NotFound
from marketplace.domain.journal import AccountKind
from marketplace.domain.money import format_msat
from marketplace.services.lightning_calls import in_transaction, reading
from marketplace.services.statements import all_lines
from marketplace.settings import Settings
from marketplace.domain.messages import N_

EXPORT_FORMAT = "microlend-export/1"
CONFIRM_WORD = "ERASE"
ERASED_NAME = "Erased borrower"
ERASED_DOMAIN = "erased.invalid"  # .invalid never resolves (RFC 2606): no mail can reach it
# A hash no password verifies (argon2 refuses it as malformed): the account cannot sign in.
ERASED_PASSWORD_HASH = "!erased"
# Loans that still owe or may still move money: a borrower with one of these cannot be erased yet.
OPEN_LOAN_STATUSES = ("funding", "funded", "active", "written_off")
OPEN_PAYMENT_STATUSES = ("pending", "unknown")


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
        return moment.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _rows(conn: Connection, table: Table, *where: Any, leave_out: tuple[str, ...] = (),
          order: Any = None) -> list[dict[str, object]]:
    columns = [c for c in table.c if c.name not in leave_out]
    query = select(*columns).where(*where).order_by(order if order is not None else columns[0])
    return [{key: _plain(value) for key, value in row._mapping.items()} for row in conn.execute(query)]


def _one(mapping: Mapping[str, object]) -> dict[str, object]:
    return {key: _plain(value) for key, value in mapping.items()}


def export_data(conn: Connection, user_id: int, now: datetime | None = None) -> dict[str, object]:
    """Everything held about `user_id`, as JSON-ready data. Secrets (password and token hashes) are left out:
    they identify nothing and would only help someone who stole the file."""
    moment = now or datetime.now(timezone.utc)
    account = conn.execute(select(users).where(users.c.id == user_id)).one_or_none()
    if account is None:
        raise NotFound(N_("There is no such account."))
    own_loans = _rows(conn, loans, loans.c.borrower_id == user_id)
    loan_ids = [int(str(loan["id"])) for loan in own_loans]
    handles = {int(r.loan_id): str(r.handle) for r in conn.execute(
        select(pay_handles.c.loan_id, pay_handles.c.handle).where(pay_handles.c.loan_id.in_(loan_ids)))}
    for loan in own_loans:
        loan_id = int(str(loan["id"]))
        loan["pay_handle"] = handles.get(loan_id)
        loan["schedule"] = _rows(conn, installments, installments.c.loan_id == loan_id, leave_out=("loan_id",),
                                 order=installments.c.number)
        loan["repayments"] = _rows(conn, repayments, repayments.c.loan_id == loan_id, leave_out=("loan_id",))
    balances = ledger.user_balances(conn, user_id)
    return {
        "format": EXPORT_FORMAT,
        "exported_at": moment.isoformat(),
        "account": _one({k: v for k, v in account._mapping.items() if k != "password_hash"}),
        "balances_msat": {kind.value: amount for kind, amount in sorted(balances.items())},
        "loans": own_loans,
        "notes": _rows(conn, notes, notes.c.lender_id == user_id),
        "autoinvest_rules": _rows(conn, autoinvest_rules, autoinvest_rules.c.lender_id == user_id),
        # Not the address a request came from (a keyed hash; for pay-code invoices a payer's, not theirs).
        "invoices": _rows(conn, invoices, invoices.c.user_id == user_id, leave_out=("address",)),
        "payments_out": _rows(conn, outgoing_payments, outgoing_payments.c.user_id == user_id),
        "statement": [_one(dataclasses.asdict(line)) for line in reversed(all_lines(conn, user_id))],
        "sessions": _rows(conn, sessions, sessions.c.user_id == user_id, leave_out=("id_hash", "user_id"),
                          order=sessions.c.created_at),
        "api_tokens": _rows(conn, api_tokens, api_tokens.c.user_id == user_id, leave_out=("token_hash", "user_id")),
        "notices": _rows(conn, outbox, outbox.c.user_id == user_id, leave_out=("user_id",)),
        # When someone failed to sign in as this account (the addresses are theirs, not the account holder's).
        "failed_sign_ins_at": [_plain(at) for at in conn.execute(
            select(signin_failures.c.at).where(signin_failures.c.email == account.email)
            .order_by(signin_failures.c.at)).scalars()],
    }


def export_for(database: Database, user_id: int) -> dict[str, object]:
    return database.read(lambda conn: export_data(conn, user_id))


@dataclasses.dataclass(frozen=True)
class Erasure:
    user_id: int
    pseudonym: str  # the account's email now
    loans: int  # loans whose stories were removed
    left_msat: int  # dust too small to withdraw, left in the books


def withdrawable_msat(settings: Settings) -> int:
    """The smallest balance a withdrawal can take out: the minimum payout plus the fee reserve held with it."""
    return settings.withdrawal_min_sat * 1000 + settings.fee_reserve_min_msat


def check_erasable(conn: Connection, settings: Settings, user_id: int) -> int:
    """Why this person cannot be erased yet, as a refusal; else what stays behind (dust too small to withdraw)."""
    role = conn.execute(select(users.c.role).where(users.c.id == user_id).with_for_update()).scalar()
    if role is None:
        raise NotFound(N_("There is no such account."))
    if role != "borrower":
        raise Forbidden(N_("Erasing an account here is for borrowers; lenders and operators, ask the operator."))
    open_loan = conn.execute(select(loans.c.id, loans.c.status).where(
        loans.c.borrower_id == user_id, loans.c.status.in_(OPEN_LOAN_STATUSES)).limit(1)).first()
    if open_loan is not None:
        words = {"funding": N_("still open for funding"), "funded": N_("funded and waiting to be paid out"),
                 "active": N_("being repaid"), "written_off": N_("written off but still owed")}
        raise Conflict(N_("Your loan %(loan)s is %(state)s. Your data can be erased once no loan of yours is open.",
                          loan=open_loan.id, state=words[str(open_loan.status)]))
    moving = conn.execute(select(func.count()).select_from(outgoing_payments).where(
        outgoing_payments.c.user_id == user_id, outgoing_payments.c.status.in_(OPEN_PAYMENT_STATUSES))).scalar_one()
    if int(moving):
        raise Conflict(N_("A payment to your wallet is still on its way; try again once it has arrived."))
    balances = ledger.user_balances(conn, user_id)
    available = balances.get(AccountKind.USER_AVAILABLE, 0)
    elsewhere = sum(balances.values()) - available
    if elsewhere or available >= withdrawable_msat(settings):
        raise Conflict(N_("You still hold %(amount)s here. Withdraw it to your wallet first: "
                          "after erasure nobody could sign in to take it.", amount=format_msat(available + elsewhere)))
    return available


def _open_invoices(conn: Connection, user_id: int) -> list[InvoiceRow]:
    """The person's invoices someone might still pay (or the node might still make)."""
    return [row_from(r) for r in conn.execute(select(*COLUMNS).where(
        invoices.c.user_id == user_id, invoices.c.status.in_(("creating", "unpaid"))).order_by(invoices.c.id))]


def _cancelled(conn: Connection, invoice_id: int) -> None:
    conn.execute(update(invoices).where(invoices.c.id == invoice_id, invoices.c.status.in_(("creating", "unpaid")))
                 .values(status="expired"))


def _refuse_open_invoices(conn: Connection, user_id: int) -> None:
    if _open_invoices(conn, user_id):
        raise Conflict(N_("An invoice of yours can still be paid; it has to be cancelled first. Try again in a "
                          "minute; nothing was erased."))


async def erase_borrower_cancelling(database: Database, port: LightningPort, settings: Settings, user_id: int,
                                    confirmation: str, now: datetime | None = None) -> Erasure:
    """Erasure as a person asks for it: first every open invoice of theirs is deleted at the node (`delinvoice`),
    so nobody can pay one after (its money would have nobody to go to), then `erase_borrower`.

    One the node says was paid meanwhile: refused until the listener has counted it (the person may then
    hold money to withdraw). A node that cannot be reached: refused, nothing erased. Money that arrives all
    the same goes to the operator's refund queue (marketplace.db.refunds), never to the erased account."""
    check_confirmation(confirmation)
    await in_transaction(database, lambda c: check_erasable(c, settings, user_id))
    for row in await reading(database, lambda c: _open_invoices(c, user_id)):
        try:
            status = await port.cancel_invoice(row.label)
        except NodeUnreachable as exc:
            raise LightningUnavailable(N_(
                "The Lightning node cannot be reached, so your unpaid invoices cannot be cancelled; nothing was "
                "erased. Try again in a minute.")) from exc
        if status is InvoiceStatus.PAID:
            raise Conflict(N_("A payment to one of your invoices has just arrived. Once it is counted (within a "
                              "minute) you can withdraw it and then erase your data; nothing was erased."))
        await in_transaction(database, partial(_cancelled, invoice_id=row.id))
    return await anyio.to_thread.run_sync(
        lambda: erase_borrower(database, settings, user_id, confirmation, now))


def check_confirmation(confirmation: str) -> None:
    if confirmation.strip().upper() != CONFIRM_WORD:
        raise InvalidInput(N_("Type %(word)s in the box to confirm; nothing was erased.", word=CONFIRM_WORD))


def erase_borrower(database: Database, settings: Settings, user_id: int, confirmation: str,
                   now: datetime | None = None) -> Erasure:
    """Remove the person and keep the record. One transaction: all of it happens, or none.

    Refused while an invoice of theirs is open (`erase_borrower_cancelling` cancels them at the node first).
    A balance too small to withdraw (below the minimum payout plus its fee reserve) stays in the books,
    under the pseudonym: refusing would leave such a person no way to be erased at all."""
    check_confirmation(confirmation)
    moment = now or datetime.now(timezone.utc)

    def work(conn: Connection) -> Erasure:
        left = check_erasable(conn, settings, user_id)
        _refuse_open_invoices(conn, user_id)
        email = str(conn.execute(select(users.c.email).where(users.c.id == user_id)).scalar_one())
        pseudonym = f"erased-{secrets.token_hex(8)}@{ERASED_DOMAIN}"
        conn.execute(update(users).where(users.c.id == user_id).values(
            email=pseudonym, display_name=ERASED_NAME, password_hash=ERASED_PASSWORD_HASH, erased_at=moment))
        stories = conn.execute(update(loans).where(loans.c.borrower_id == user_id).values(story="")).rowcount
        # Every way in ends: sessions (with their network addresses) go, API tokens are revoked and unnamed.
        conn.execute(delete(sessions).where(sessions.c.user_id == user_id))
        conn.execute(update(api_tokens).where(api_tokens.c.user_id == user_id, api_tokens.c.revoked_at.is_(None))
                     .values(revoked_at=moment))
        conn.execute(update(api_tokens).where(api_tokens.c.user_id == user_id).values(name=""))
        conn.execute(delete(signin_failures).where(signin_failures.c.email == email))
        # Their wallet's invoices (disbursements, withdrawals) name its node and carry its words: the payment
        # hash stays, as the ledger's idempotency keys use it.
        conn.execute(update(outgoing_payments).where(outgoing_payments.c.user_id == user_id)
                     .values(bolt11="", error=""))
        if "address" in invoices.c:  # the hardening's per-address invoice caps keep where an invoice was asked from
            conn.execute(update(invoices).where(invoices.c.user_id == user_id).values(address=None))
        conn.execute(delete(outbox).where(outbox.c.user_id == user_id, outbox.c.status == "pending"))
        return Erasure(user_id, pseudonym, int(stories or 0), left)

    return database.run(work)
