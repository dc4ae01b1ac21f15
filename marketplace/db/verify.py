"""Recompute the ledger from its lines: chain, balance of every entry, stored balances."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from marketplace.db.tables import accounts, journal_entries, journal_lines, ledger_head
from marketplace.domain.journal import GENESIS_HASH, NormalSide, entry_hash, natural_delta

MAX_PROBLEMS = 50


@dataclass
class VerifyReport:
    entries: int = 0
    lines: int = 0
    accounts: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)

    def summary(self) -> str:
        counts = f"{self.entries} entries, {self.lines} lines, {self.accounts} accounts"
        if self.ok:
            return f"ledger OK: {counts}; chain intact, every entry balances, every balance matches its lines"
        return f"ledger FAILED: {counts}; {len(self.problems)} problem(s), first: {self.problems[0]}"


def verify_ledger(conn: Connection) -> VerifyReport:
    report = VerifyReport()
    sums: dict[int, int] = {}
    rows = conn.execution_options(yield_per=5000).execute(
        select(
            journal_entries.c.id, journal_entries.c.kind, journal_entries.c.idempotency_key,
            journal_entries.c.posted_at_us, journal_entries.c.memo, journal_entries.c.prev_hash,
            journal_entries.c.hash, journal_lines.c.account_id, journal_lines.c.amount_msat,
        )
        .select_from(journal_entries.outerjoin(journal_lines, journal_lines.c.entry_id == journal_entries.c.id))
        .order_by(journal_entries.c.id, journal_lines.c.position)
    )
    expected_prev = GENESIS_HASH
    expected_id = 1
    current: tuple[object, ...] | None = None
    lines: list[tuple[int, int]] = []

    def close(entry: tuple[object, ...], entry_lines: list[tuple[int, int]]) -> str:
        entry_id, kind, key, posted_at, memo, prev_hash, stored_hash = entry
        if len(entry_lines) < 2:
            report.problem(f"entry {entry_id} has {len(entry_lines)} line(s)")
        total = sum(amount for _, amount in entry_lines)
        if total != 0:
            report.problem(f"entry {entry_id} does not balance: off by {total} msat")
        if prev_hash != expected_prev:
            report.problem(f"entry {entry_id} does not link to the entry before it")
        recomputed = entry_hash(str(prev_hash), int(str(entry_id)), str(kind), key if key is None else str(key),
                                int(str(posted_at)), str(memo), entry_lines)
        if recomputed != stored_hash:
            report.problem(f"entry {entry_id} was altered: its hash does not match its contents")
        return recomputed

    for row in rows:
        entry = (row.id, row.kind, row.idempotency_key, row.posted_at_us, row.memo, row.prev_hash, row.hash)
        if current is None or entry[0] != current[0]:
            if current is not None:
                expected_prev = close(current, lines)
                report.entries += 1
            current, lines = entry, []
            if int(row.id) != expected_id:
                report.problem(f"entry ids jump from {expected_id - 1} to {row.id}")
            expected_id = int(row.id) + 1
        if row.account_id is not None:
            lines.append((int(row.account_id), int(row.amount_msat)))
            sums[int(row.account_id)] = sums.get(int(row.account_id), 0) + int(row.amount_msat)
            report.lines += 1
    if current is not None:
        expected_prev = close(current, lines)
        report.entries += 1

    head = conn.execute(select(ledger_head.c.last_entry_id, ledger_head.c.last_hash)).one()
    if int(head.last_entry_id) != expected_id - 1 or head.last_hash != expected_prev:
        report.problem("the chain head does not point at the last entry (entries removed or added)")

    raw_total = 0
    for acct in conn.execute(select(accounts.c.id, accounts.c.code, accounts.c.normal_side,
                                    accounts.c.non_negative, accounts.c.balance_msat)):
        report.accounts += 1
        side = NormalSide(acct.normal_side)
        raw = sums.get(int(acct.id), 0)
        raw_total += raw
        expected = natural_delta(side, raw)
        if int(acct.balance_msat) != expected:
            report.problem(f"account {acct.code} stores {acct.balance_msat} msat but its lines add up to {expected}")
        if acct.non_negative and expected < 0:
            report.problem(f"account {acct.code} is negative: {expected} msat")
    if raw_total != 0:
        report.problem(f"all balances together are off by {raw_total} msat")
    return report
