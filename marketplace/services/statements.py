"""A user's statement: every journal line on their own accounts, newest first, and its CSV export.

Amounts are shown as the user sees them: + when money comes in to that balance
of theirs, - when it goes out (the natural side of their credit-normal accounts).
Only accounts whose `user_id` is the user's own are read: nobody else's lines.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Connection, Select, func, select

from marketplace.db.engine import Database
from marketplace.db.tables import accounts, journal_entries, journal_lines
from marketplace.domain import numbers
from marketplace.domain.errors import InvalidInput
from marketplace.domain.journal import AccountKind, NormalSide, natural_delta
from marketplace.domain.money import plain_sat
from marketplace.domain.messages import N_

PAGE_SIZE = 50
PAGE_MAX = 100_000
CSV_BATCH = 500

BALANCE_WORDS = {
    AccountKind.USER_AVAILABLE.value: "available",
    AccountKind.USER_RESERVED.value: "reserved",
    AccountKind.USER_PENDING_OUT.value: "pending",
}

# Marked for the catalog: pages show them in the reader's language (marketplace/web/words.py), the CSV in English.
KIND_WORDS = {
    "deposit": N_("Deposit"),
    "withdrawal_hold": N_("Withdrawal started (held)"),
    "withdrawal_settle": N_("Withdrawal paid"),
    "withdrawal_release": N_("Withdrawal failed, money returned"),
    "pledge": N_("Note pledged"),
    "pledge_withdrawn": N_("Pledge withdrawn"),
    "request_expired": N_("Request expired, pledge released"),
    "disbursement_hold": N_("Loan payout started (held)"),
    "disbursement": N_("Loan paid out"),
    "disbursement_release": N_("Loan payout failed, money returned"),
    "repayment": N_("Repayment"),
    "fee_overrun": N_("Routing fee above the reserve"),
}

CSV_HEADER = ("date", "entry_id", "kind", "kind_words", "balance", "amount_msat", "amount_sat", "memo")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def kind_words(kind: str) -> str:
    known = KIND_WORDS.get(kind)
    return str(known) if known is not None else kind.replace("_", " ").capitalize()


@dataclass(frozen=True)
class StatementLine:
    line_id: int
    entry_id: int
    posted_at: datetime
    kind: str
    balance: str  # available, reserved or pending
    amount_msat: int  # + in to the user, - out
    memo: str

    @property
    def kind_words(self) -> str:
        return kind_words(self.kind)

    @property
    def amount_sat(self) -> str:
        """Exact sat with up to three decimals, signed: '-1234.5', '+20000'."""
        return plain_sat(self.amount_msat, signed=True)


@dataclass(frozen=True)
class StatementPage:
    lines: tuple[StatementLine, ...]
    total: int
    page: int
    size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def has_more(self) -> bool:
        return self.page < self.pages


def parse_page(raw: str | None) -> int:
    """The page number from the query string ('' or absent: 1); anything else is an InvalidInput."""
    if raw is None or not raw.strip():
        return 1
    said = N_("The page number must be a whole number from 1 to %(most)s.", most=format(PAGE_MAX, ","))
    return numbers.whole(raw, label=N_("page number"), minimum=1, maximum=PAGE_MAX,
                         not_number=said, too_small=said, too_big=said)


def _query(user_id: int) -> Select[Any]:
    return (
        select(journal_lines.c.id, journal_lines.c.entry_id, journal_lines.c.amount_msat,
               journal_entries.c.kind, journal_entries.c.memo, journal_entries.c.posted_at_us,
               accounts.c.kind.label("account_kind"), accounts.c.normal_side)
        .select_from(journal_lines.join(accounts, accounts.c.id == journal_lines.c.account_id)
                     .join(journal_entries, journal_entries.c.id == journal_lines.c.entry_id))
        .where(accounts.c.user_id == user_id)
        .order_by(journal_lines.c.entry_id.desc(), journal_lines.c.position.desc())
    )


def _line(r: object) -> StatementLine:
    amount = int(getattr(r, "amount_msat"))
    side = NormalSide(getattr(r, "normal_side"))
    account_kind = str(getattr(r, "account_kind"))
    moment = datetime.fromtimestamp(int(getattr(r, "posted_at_us")) / 1_000_000, tz=timezone.utc)
    return StatementLine(int(getattr(r, "id")), int(getattr(r, "entry_id")), moment, str(getattr(r, "kind")),
                         BALANCE_WORDS.get(account_kind, account_kind), natural_delta(side, amount),
                         str(getattr(r, "memo") or ""))


def line_count(conn: Connection, user_id: int) -> int:
    return int(conn.execute(
        select(func.count()).select_from(journal_lines.join(accounts, accounts.c.id == journal_lines.c.account_id))
        .where(accounts.c.user_id == user_id)).scalar_one())


def statement_page(conn: Connection, user_id: int, page: int, size: int = PAGE_SIZE) -> StatementPage:
    """One page of the user's lines, newest first."""
    page = max(page, 1)
    rows = conn.execute(_query(user_id).limit(size).offset((page - 1) * size)).all()
    return StatementPage(tuple(_line(r) for r in rows), line_count(conn, user_id), page, size)


def all_lines(conn: Connection, user_id: int) -> list[StatementLine]:
    """Every line, newest first (for the CSV; read in one transaction so it is one consistent picture)."""
    return [_line(r) for r in conn.execute(_query(user_id)).all()]


def safe_cell(value: str) -> str:
    """Neutralise CSV/formula injection: a cell a spreadsheet would read as a formula gets a leading quote."""
    if value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def csv_rows(lines: list[StatementLine]) -> Iterator[str]:
    """The CSV text in chunks: a header row, then one row per line (ISO 8601 UTC dates).

    Text cells go through `safe_cell`; the amount cells are numbers we write ourselves
    ('-1500', '20000.5'), which a spreadsheet reads as numbers, never as formulas.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for index, line in enumerate(lines, 1):
        writer.writerow([
            line.posted_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
            str(line.entry_id), safe_cell(line.kind), safe_cell(line.kind_words), line.balance,
            str(line.amount_msat), line.amount_sat.lstrip("+"), safe_cell(line.memo),
        ])
        if index % CSV_BATCH == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


# --- the JSON API's statement: one line per ledger line, newest entry first ----------------------------------------

_API_ACCOUNT_NAMES = {AccountKind.USER_AVAILABLE: "available", AccountKind.USER_RESERVED: "reserved",
                      AccountKind.USER_PENDING_OUT: "pending"}


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _api_lines(conn: Connection, user_id: int, limit: int, offset: int) -> list[dict[str, Any]]:
    """The user's own ledger lines (available, reserved, pending), newest entry first."""
    rows = conn.execute(
        select(journal_entries.c.id, journal_entries.c.posted_at_us, journal_entries.c.kind, journal_entries.c.memo,
               accounts.c.kind.label("account_kind"), journal_lines.c.amount_msat)
        .select_from(journal_lines.join(accounts, accounts.c.id == journal_lines.c.account_id)
                     .join(journal_entries, journal_entries.c.id == journal_lines.c.entry_id))
        .where(accounts.c.user_id == user_id)
        .order_by(journal_entries.c.id.desc(), journal_lines.c.position)
        .limit(limit).offset(offset))
    lines = []
    for r in rows:
        kind = AccountKind(r.account_kind)
        lines.append({
            "entry_id": int(r.id), "posted_at": (_EPOCH + timedelta(microseconds=int(r.posted_at_us))).isoformat(),
            "kind": r.kind, "account": _API_ACCOUNT_NAMES.get(kind, kind.value),
            "amount_msat": natural_delta(kind.normal_side, int(r.amount_msat)), "memo": r.memo or "",
        })
    return lines


def api_lines(database: Database, user_id: int, limit: int, offset: int) -> list[dict[str, Any]]:
    """The user's own ledger lines for /api/v1/statement (`limit` of them from `offset`)."""
    return database.read(lambda c: _api_lines(c, user_id, limit, offset))
