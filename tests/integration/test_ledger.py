"""Posting rules of the ledger, on each database backend."""
from __future__ import annotations

import pytest
from sqlalchemy import Connection, text

from marketplace.db import ledger
from marketplace.db.engine import Database
from marketplace.db.verify import verify_ledger
from marketplace.domain.errors import (
    IdempotencyConflict,
    InsufficientFunds,
    UnbalancedEntry,
    UnknownAccount,
)
from marketplace.domain.journal import AccountKind, EntryDraft, LineDraft, transfer
from tests.ledger_helpers import balance, deposit_entry, make_user, table_counts

AVAILABLE, RESERVED = AccountKind.USER_AVAILABLE, AccountKind.USER_RESERVED


def funded_user(database: Database, amount_msat: int) -> dict[AccountKind, int]:
    def work(conn: Connection) -> dict[AccountKind, int]:
        _, accts = make_user(conn)
        ledger.post(conn, [deposit_entry(conn, accts[AVAILABLE], amount_msat)])
        return accts

    return database.run(work)


def test_deposit_and_pledge_move_natural_balances(database: Database) -> None:
    accts = funded_user(database, 10_000)
    database.run(lambda c: ledger.post(c, [transfer("pledge", accts[AVAILABLE], accts[RESERVED], 3_500)]))
    with database.transaction(write=False) as conn:
        assert balance(conn, accts[AVAILABLE]) == 6_500
        assert balance(conn, accts[RESERVED]) == 3_500
        assert balance(conn, ledger.account_id(conn, "system:node_asset")) == 10_000
        report = verify_ledger(conn)
    assert report.ok, report.problems
    assert report.entries == 2


def test_overdraft_is_refused_and_changes_nothing(database: Database) -> None:
    accts = funded_user(database, 1_000)
    before = database.read(table_counts)
    with pytest.raises(InsufficientFunds, match="holds 1 sat"):
        database.run(lambda c: ledger.post(c, [transfer("pledge", accts[AVAILABLE], accts[RESERVED], 1_001)]))
    assert database.read(table_counts) == before
    assert database.read(lambda c: balance(c, accts[AVAILABLE])) == 1_000


def test_a_batch_is_all_or_nothing(database: Database) -> None:
    accts = funded_user(database, 1_000)
    before = database.read(table_counts)
    ok = transfer("pledge", accts[AVAILABLE], accts[RESERVED], 600)
    too_much = transfer("pledge", accts[AVAILABLE], accts[RESERVED], 600)
    with pytest.raises(InsufficientFunds):
        database.run(lambda c: ledger.post(c, [ok, too_much]))
    assert database.read(table_counts) == before


@pytest.mark.parametrize(
    "lines, error",
    [
        ((LineDraft(1, 5),), UnbalancedEntry),
        ((LineDraft(1, 5), LineDraft(2, -4)), UnbalancedEntry),
        ((LineDraft(1, 0), LineDraft(2, 0)), UnbalancedEntry),
        ((LineDraft(1, 5), LineDraft(999_999, -5)), UnknownAccount),
    ],
)
def test_malformed_entries_are_refused(database: Database, lines: tuple[LineDraft, ...], error: type) -> None:
    before = database.read(table_counts)
    with pytest.raises(error):
        database.run(lambda c: ledger.post(c, [EntryDraft("bad", lines)]))
    assert database.read(table_counts) == before


def test_idempotency_key_returns_the_first_posting(database: Database) -> None:
    accts = funded_user(database, 5_000)
    entry = transfer("pledge", accts[AVAILABLE], accts[RESERVED], 1_000, idempotency_key="pledge:1")
    first = database.run(lambda c: ledger.post(c, [entry]))[0]
    again = database.run(lambda c: ledger.post(c, [entry]))[0]
    assert not first.replayed and again.replayed
    assert (again.id, again.hash) == (first.id, first.hash)
    assert database.read(lambda c: balance(c, accts[RESERVED])) == 1_000
    # Twice in one batch counts once too.
    twice = transfer("pledge", accts[AVAILABLE], accts[RESERVED], 500, idempotency_key="pledge:2")
    results = database.run(lambda c: ledger.post(c, [twice, twice]))
    assert results[0].id == results[1].id and results[1].replayed
    assert database.read(lambda c: balance(c, accts[RESERVED])) == 1_500


def test_idempotency_key_with_other_details_is_refused(database: Database) -> None:
    accts = funded_user(database, 5_000)
    database.run(lambda c: ledger.post(
        c, [transfer("pledge", accts[AVAILABLE], accts[RESERVED], 1_000, idempotency_key="k")]))
    with pytest.raises(IdempotencyConflict):
        database.run(lambda c: ledger.post(
            c, [transfer("pledge", accts[AVAILABLE], accts[RESERVED], 2_000, idempotency_key="k")]))
    assert database.read(lambda c: balance(c, accts[RESERVED])) == 1_000


def test_chain_links_each_entry_to_the_one_before(database: Database) -> None:
    accts = funded_user(database, 5_000)
    for _ in range(3):
        database.run(lambda c: ledger.post(c, [transfer("pledge", accts[AVAILABLE], accts[RESERVED], 100)]))
    rows = database.read(lambda c: c.execute(
        text("SELECT id, prev_hash, hash FROM journal_entries ORDER BY id")).all())
    assert [r.id for r in rows] == [1, 2, 3, 4]
    assert rows[0].prev_hash == "0" * 64
    for before, after in zip(rows, rows[1:]):
        assert after.prev_hash == before.hash


TAMPERING = [
    ("UPDATE journal_lines SET amount_msat = amount_msat + 1 WHERE id = 2", "does not balance"),
    ("UPDATE journal_entries SET memo = 'edited' WHERE id = 1", "was altered"),
    ("UPDATE journal_entries SET kind = 'gift' WHERE id = 2", "was altered"),
    ("UPDATE accounts SET balance_msat = balance_msat + 7 WHERE code = 'system:node_asset'", "add up to"),
    ("DELETE FROM journal_lines WHERE entry_id = 2", "does not"),
]


@pytest.mark.parametrize("statement, finding", TAMPERING, ids=[t[1] for t in TAMPERING])
def test_tampering_is_detected(database: Database, statement: str, finding: str) -> None:
    accts = funded_user(database, 5_000)
    database.run(lambda c: ledger.post(c, [transfer("pledge", accts[AVAILABLE], accts[RESERVED], 100)]))
    assert database.read(verify_ledger).ok
    with database.transaction() as conn:
        conn.execute(text(statement))
    report = database.read(verify_ledger)
    assert not report.ok
    assert any(finding in problem for problem in report.problems), report.problems


def test_removing_the_last_entry_is_detected(database: Database) -> None:
    accts = funded_user(database, 5_000)
    database.run(lambda c: ledger.post(c, [transfer("pledge", accts[AVAILABLE], accts[RESERVED], 100)]))
    with database.transaction() as conn:
        conn.execute(text("DELETE FROM journal_lines WHERE entry_id = 2"))
        conn.execute(text("DELETE FROM journal_entries WHERE id = 2"))
        conn.execute(text(
            "UPDATE accounts SET balance_msat = 5000 WHERE id = :a"), {"a": accts[AVAILABLE]})
        conn.execute(text("UPDATE accounts SET balance_msat = 0 WHERE id = :a"), {"a": accts[RESERVED]})
    report = database.read(verify_ledger)
    assert not report.ok
    assert any("chain head" in p for p in report.problems)


def test_database_refuses_a_negative_balance_even_behind_the_ledgers_back(database: Database) -> None:
    accts = funded_user(database, 1_000)
    with pytest.raises(Exception, match="(?i)check|constraint"):
        with database.transaction() as conn:
            conn.execute(text("UPDATE accounts SET balance_msat = -1 WHERE id = :a"), {"a": accts[AVAILABLE]})
