"""Posting to and reading from the journal. Call inside a writing transaction.

All postings serialize on the chain-head row (`FOR UPDATE` on PostgreSQL; the
`BEGIN IMMEDIATE` write lock on SQLite), which also orders the hash chain.
Balances move by relative updates and are guarded twice: a check here that
names the account, and the table's CHECK constraint underneath.
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Connection, bindparam, func, insert, select, update

from marketplace.db.bulk import insert_rows
from marketplace.db.tables import accounts, journal_entries, journal_lines, ledger_head
from marketplace.domain.errors import IdempotencyConflict, InsufficientFunds, UnknownAccount
from marketplace.domain.journal import (
    AccountKind,
    EntryDraft,
    NormalSide,
    check_entry,
    entry_hash,
    natural_delta,
    net_by_account,
    payload_hash,
)
from marketplace.domain.money import format_msat
from marketplace.domain.messages import Message, N_


@dataclass(frozen=True)
class PostedEntry:
    id: int
    hash: str
    replayed: bool  # True when an idempotency key returned an earlier entry


@dataclass(frozen=True)
class AccountRow:
    id: int
    code: str
    kind: AccountKind
    normal_side: NormalSide
    non_negative: bool
    balance_msat: int


# What a refusal calls an account: words, never its internal code (user:26:available).
_ACCOUNT_WORDS = {
    AccountKind.USER_AVAILABLE: N_("your available balance"),
    AccountKind.USER_RESERVED: N_("your money set aside for loans you are funding"),
    AccountKind.USER_PENDING_OUT: N_("your payments on their way out"),
    AccountKind.LOAN_ESCROW: N_("the loan's money waiting to be paid out"),
    AccountKind.NOTE: N_("the note"),
}


def account_words(kind: AccountKind) -> Message:
    return _ACCOUNT_WORDS.get(kind) or N_("the marketplace's own books")


def now_us() -> int:
    return time.time_ns() // 1000


def create_account(conn: Connection, code: str, kind: AccountKind, user_id: int | None = None) -> int:
    result = conn.execute(
        insert(accounts).values(
            code=code,
            kind=kind.value,
            user_id=user_id,
            normal_side=kind.normal_side.value,
            non_negative=kind.non_negative,
            balance_msat=0,
            created_at=datetime.now(timezone.utc),
        )
    )
    pk = result.inserted_primary_key
    assert pk is not None
    return int(pk[0])


def open_user_accounts(conn: Connection, user_id: int) -> dict[AccountKind, int]:
    """Every user's balances: available, reserved (pledged) and pending out (withdrawal holds)."""
    kinds = (AccountKind.USER_AVAILABLE, AccountKind.USER_RESERVED, AccountKind.USER_PENDING_OUT)
    return {kind: create_account(conn, user_account_code(user_id, kind), kind, user_id) for kind in kinds}


def user_account_code(user_id: int, kind: AccountKind) -> str:
    return f"user:{user_id}:{kind.value.removeprefix('user_')}"


def account_id(conn: Connection, code: str) -> int:
    found = conn.execute(select(accounts.c.id).where(accounts.c.code == code)).scalar()
    if found is None:
        raise UnknownAccount(N_("There is no account %(code)s.", code=repr(code)))
    return int(found)


def user_account_ids(conn: Connection, user_ids: Iterable[int], kind: AccountKind) -> dict[int, int]:
    """One kind of account for many users, in one query."""
    wanted = sorted(set(user_ids))
    rows = conn.execute(
        select(accounts.c.user_id, accounts.c.id).where(accounts.c.user_id.in_(wanted), accounts.c.kind == kind.value)
    )
    found = {int(user_id): int(acct) for user_id, acct in rows}
    missing = [u for u in wanted if u not in found]
    if missing:
        raise UnknownAccount(N_("User %(user)s has no %(kind)s account.", user=missing[0], kind=kind.value))
    return found


def user_balances(conn: Connection, user_id: int) -> dict[AccountKind, int]:
    rows = conn.execute(
        select(accounts.c.kind, accounts.c.balance_msat).where(accounts.c.user_id == user_id)
    )
    return {AccountKind(kind): int(balance) for kind, balance in rows}


def _lock_accounts(conn: Connection, ids: Iterable[int]) -> dict[int, AccountRow]:
    wanted = sorted(set(ids))
    rows = conn.execute(
        select(
            accounts.c.id, accounts.c.code, accounts.c.kind, accounts.c.normal_side,
            accounts.c.non_negative, accounts.c.balance_msat,
        )
        .where(accounts.c.id.in_(wanted))
        .order_by(accounts.c.id)
        .with_for_update()
    ).all()
    found = {
        int(r.id): AccountRow(int(r.id), r.code, AccountKind(r.kind), NormalSide(r.normal_side),
                              bool(r.non_negative), int(r.balance_msat))
        for r in rows
    }
    missing = [i for i in wanted if i not in found]
    if missing:
        raise UnknownAccount(N_("There is no account with id %(id)s.", id=missing[0]))
    return found


def _earlier_entries(conn: Connection, drafts: Sequence[EntryDraft]) -> dict[str, tuple[int, str, str]]:
    keys = [d.idempotency_key for d in drafts if d.idempotency_key is not None]
    if not keys:
        return {}
    rows = conn.execute(
        select(journal_entries.c.idempotency_key, journal_entries.c.id,
               journal_entries.c.hash, journal_entries.c.payload_hash)
        .where(journal_entries.c.idempotency_key.in_(keys))
    )
    return {r.idempotency_key: (int(r.id), r.hash, r.payload_hash) for r in rows}


_ENTRY_COLUMNS = ("id", "kind", "idempotency_key", "payload_hash", "memo", "posted_at_us", "prev_hash", "hash")
_LINE_COLUMNS = ("entry_id", "position", "account_id", "amount_msat")


def post(conn: Connection, drafts: Sequence[EntryDraft]) -> list[PostedEntry]:
    """Post entries atomically, in order; all or none.

    A draft whose idempotency key was posted before returns that entry
    (`replayed=True`) if its payload is the same, and is refused otherwise.
    """
    for draft in drafts:
        check_entry(draft)
    head = conn.execute(
        select(ledger_head.c.last_entry_id, ledger_head.c.last_hash)
        .where(ledger_head.c.id == 1)
        .with_for_update()
    ).one()
    last_id, last_hash = int(head.last_entry_id), str(head.last_hash)

    earlier = _earlier_entries(conn, drafts)
    seen_in_batch: dict[str, tuple[int, str, str]] = {}
    account_rows = _lock_accounts(conn, (line.account_id for d in drafts for line in d.lines))
    balances = {i: row.balance_msat for i, row in account_rows.items()}

    results: list[PostedEntry] = []
    entry_rows: list[tuple[object, ...]] = []
    line_rows: list[tuple[object, ...]] = []
    posted_at = now_us()
    for draft in drafts:
        digest = payload_hash(draft)
        key = draft.idempotency_key
        if key is not None and (key in earlier or key in seen_in_batch):
            first_id, first_hash, first_digest = earlier.get(key) or seen_in_batch[key]
            if first_digest != digest:
                raise IdempotencyConflict(N_(
                    "The request %(key)s was already made with different details; it was not repeated.",
                    key=repr(key)))
            results.append(PostedEntry(first_id, first_hash, replayed=True))
            continue
        for acct, raw in net_by_account(draft.lines).items():
            row = account_rows[acct]
            balance = balances[acct] + natural_delta(row.normal_side, raw)
            if row.non_negative and balance < 0:
                raise InsufficientFunds(N_(
                    "Not enough funds in %(account)s: it holds %(holds)s, this needs %(needs)s.",
                    account=account_words(row.kind), holds=format_msat(balances[acct]),
                    needs=format_msat(-natural_delta(row.normal_side, raw))))
            balances[acct] = balance
        last_id += 1
        prev_hash = last_hash
        last_hash = entry_hash(
            prev_hash, last_id, draft.kind, key, posted_at, draft.memo,
            ((line.account_id, line.amount_msat) for line in draft.lines),
        )
        entry_rows.append((last_id, draft.kind, key, digest, draft.memo, posted_at, prev_hash, last_hash))
        line_rows.extend(
            (last_id, pos, line.account_id, line.amount_msat) for pos, line in enumerate(draft.lines)
        )
        if key is not None:
            seen_in_batch[key] = (last_id, last_hash, digest)
        results.append(PostedEntry(last_id, last_hash, replayed=False))

    if not entry_rows:
        return results
    insert_rows(conn, journal_entries, _ENTRY_COLUMNS, entry_rows)
    insert_rows(conn, journal_lines, _LINE_COLUMNS, line_rows)
    deltas = [
        {"acct": i, "delta": balances[i] - account_rows[i].balance_msat}
        for i in sorted(balances)
        if balances[i] != account_rows[i].balance_msat
    ]
    if deltas:
        conn.execute(
            update(accounts)
            .where(accounts.c.id == bindparam("acct"))
            .values(balance_msat=accounts.c.balance_msat + bindparam("delta")),
            deltas,
        )
    conn.execute(
        update(ledger_head).where(ledger_head.c.id == 1).values(last_entry_id=last_id, last_hash=last_hash)
    )
    return results


def entry_count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(journal_entries)).scalar_one())
