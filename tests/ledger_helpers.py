"""Small builders for ledger tests: users with accounts, deposits, raw table reads."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

from sqlalchemy import Connection, func, insert, select

from marketplace.db import ledger
from marketplace.db.tables import accounts, journal_entries, journal_lines, users
from marketplace.domain.journal import AccountKind, EntryDraft, LineDraft


def make_user(conn: Connection, role: str = "lender") -> tuple[int, dict[AccountKind, int]]:
    """A user row plus its ledger accounts (no password: these users never sign in)."""
    result = conn.execute(
        insert(users).values(
            email=f"{uuid.uuid4().hex[:12]}@example.test",
            password_hash="!",
            role=role,
            display_name="test",
            created_at=datetime.now(timezone.utc),
        )
    )
    assert result.inserted_primary_key is not None
    user_id = int(result.inserted_primary_key[0])
    return user_id, ledger.open_user_accounts(conn, user_id)


def deposit_entry(conn: Connection, user_available: int, amount_msat: int, key: str | None = None) -> EntryDraft:
    node = ledger.account_id(conn, "system:node_asset")
    return EntryDraft(
        kind="deposit",
        lines=(LineDraft(node, amount_msat), LineDraft(user_available, -amount_msat)),
        idempotency_key=key,
    )


def balance(conn: Connection, account: int) -> int:
    return int(conn.execute(select(accounts.c.balance_msat).where(accounts.c.id == account)).scalar_one())


def table_counts(conn: Connection) -> tuple[int, int]:
    entries = conn.execute(select(func.count()).select_from(journal_entries)).scalar_one()
    lines = conn.execute(select(func.count()).select_from(journal_lines)).scalar_one()
    return int(entries), int(lines)
