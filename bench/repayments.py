"""Repayments settled per second: listener drain of paid installment invoices -> allocation -> share-out -> ledger.

Run by hand:  .venv/bin/python -m bench.repayments [--repayments 2000] [--notes 1 10 100] [--database-url ...]

For each note count: loans are requested, funded by that many lenders, and
disbursed through the dev node; the borrowers' wallet then pays a backlog of
small repayment invoices while no listener runs; the timed part is the
listener draining that backlog (pages of up to 1,000, one transaction each).

In the same run, the limit: raw sqlite3 writing the same rows a naive
settlement writes — one payment row, one ledger line and one balance update
per note per repayment, 50 repayments per transaction, WAL,
synchronous=NORMAL, no Python work at all — so the ratio to it is printed
beside our figure whatever the machine is doing.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import anyio
from sqlalchemy import Connection, func, select

from bench.common import BenchNode, fresh_database, scratch_dir
from bench.settlement import pay_all
from lightning.cln import ClnAdapter
from marketplace.db import ledger
from marketplace.db.engine import Database
from marketplace.db.tables import repayments
from marketplace.db.verify import verify_ledger
from marketplace.domain.journal import AccountKind
from marketplace.domain.loans.schedules import Frequency, Method
from marketplace.domain.loans.terms import LoanTerms
from marketplace.services import loans as loan_service
from marketplace.services.lightning_calls import NodeFacts
from marketplace.settings import Settings
from marketplace.workers.listener import PaymentListener
from tests.ledger_helpers import deposit_entry, make_user

LOANS = 20
PROFILE = False
STORY = "Benchmark loan: stock for a market stall, repaid in small steps."


def setup_loans(database: Database, settings: Settings, port: ClnAdapter, wallet: ClnAdapter,
                notes_per_loan: int) -> list[tuple[int, int]]:
    """(borrower, loan) pairs, each loan funded by `notes_per_loan` lenders and disbursed."""
    def people(conn: Connection) -> tuple[list[int], list[int]]:
        lenders = []
        for _ in range(notes_per_loan):
            lender, accts = make_user(conn, "lender")
            ledger.post(conn, [deposit_entry(conn, accts[AccountKind.USER_AVAILABLE], 10**12)])
            lenders.append(lender)
        return lenders, [make_user(conn, "borrower")[0] for _ in range(LOANS)]

    lenders, borrowers = database.run(people)
    note_sat = 1_000
    amount_sat = note_sat * notes_per_loan
    limits = settings.replace(loan_min_sat=min(1_000, amount_sat), loan_first_max_sat=max(amount_sat, 10_000),
                              loan_max_sat=max(amount_sat, 10_000))
    facts = NodeFacts(port)
    pairs = []
    for borrower in borrowers:
        # 50 weekly installments: the classic microloan (Grameen's) shape.
        terms = LoanTerms(amount_sat * 1000, 1800, 50, Frequency.WEEKLY, Method.ANNUITY)
        loan_id = loan_service.request_loan(database, limits, borrower, terms, "business", STORY)
        for lender in lenders:
            loan_service.pledge(database, limits, lender, loan_id, note_sat * 1000)
        invoice = anyio.run(wallet.create_invoice, amount_sat * 1000, f"bench-{time.time_ns()}", "p", 600)
        outcome = anyio.run(loan_service.disburse, database, port, facts, limits, borrower, loan_id, invoice.bolt11)
        assert outcome.status == "succeeded", outcome.error
        pairs.append((borrower, loan_id))
    return pairs


def count(database: Database, table: object) -> int:
    return database.read(lambda c: int(c.execute(select(func.count()).select_from(table)).scalar_one()))  # type: ignore[arg-type]


def run_case(root: object, node: BenchNode, database_url: str | None, notes_per_loan: int, total: int) -> None:
    database = fresh_database(Path(str(root)) / f"n{notes_per_loan}", database_url) if database_url else \
        fresh_database(_mk(Path(str(root)) / f"n{notes_per_loan}"), None)
    settings = Settings(data_dir=Path(str(root)), database_url=database.url, secret_key="bench",
                        invoice_limit_count=10**9, invoice_unpaid_total=10**9)
    port = ClnAdapter(node.rpc("marketplace"))
    wallet = ClnAdapter(node.rpc("wallet"))
    pairs = setup_loans(database, settings, port, wallet, notes_per_loan)

    async def issue() -> list[str]:
        bolt11s = []
        for i in range(total):
            borrower, loan_id = pairs[i % len(pairs)]
            invoice = await loan_service.repayment_invoice(database, port, settings, borrower, loan_id, 1_000 + i % 7)
            assert invoice.bolt11
            bolt11s.append(invoice.bolt11)
        return bolt11s

    bolt11s = anyio.run(issue)
    pay_all(node.rpc("wallet"), bolt11s)
    listener = PaymentListener(database, port, page_size=1000)
    profiler = None
    if PROFILE:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    start = time.perf_counter()
    if profiler is None:
        anyio.run(listener.drain)
    else:  # the same work on this thread, so the profiler sees it
        from marketplace.db import invoices
        from marketplace.db.crediting import apply_updates

        while True:
            cursor = database.read(invoices.cursor)
            page = anyio.run(port.list_paid_since, cursor.last_updated_index + 1, 1000)
            if not page:
                break
            database.run(lambda c: apply_updates(c, page))
    elapsed = time.perf_counter() - start
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    settled = count(database, repayments)
    assert settled == total, (settled, total)
    shares = total * notes_per_loan
    report = database.read(verify_ledger)
    assert report.ok, report.problems
    limit = raw_sqlite_rate(Path(str(root)) / f"raw{notes_per_loan}.sqlite3", notes_per_loan, total)
    rate = total / elapsed
    print(f"{database.engine.dialect.name:10} notes/loan {notes_per_loan:4}: {total:,} repayments, {shares:,} lender "
          f"shares in {elapsed:.2f} s = {rate:,.0f} repayments/s, {shares / elapsed:,.0f} shares/s, "
          f"{elapsed / total * 1e6:,.0f} µs per repayment | raw sqlite3, same rows: {limit:,.0f}/s "
          f"(ours = {rate / limit:.2f} x the raw limit)", flush=True)
    database.dispose()


def raw_sqlite_rate(path: object, notes_per_loan: int, total: int) -> float:
    """Repayments/s for raw sqlite3 writing one payment row + per note one ledger line and one balance update."""
    import sqlite3
    from pathlib import Path

    file = Path(str(path))
    for suffix in ("", "-wal", "-shm"):
        Path(str(file) + suffix).unlink(missing_ok=True)
    db = sqlite3.connect(file, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE payments (id INTEGER PRIMARY KEY, payment_hash TEXT UNIQUE, amount INTEGER)")
    db.execute("CREATE TABLE lines (id INTEGER PRIMARY KEY, entry INTEGER, account INTEGER, amount INTEGER)")
    db.execute("CREATE TABLE balances (account INTEGER PRIMARY KEY, balance INTEGER)")
    db.executemany("INSERT INTO balances VALUES (?, 0)", [(a,) for a in range(notes_per_loan)])
    start = time.perf_counter()
    for first in range(0, total, 50):
        db.execute("BEGIN IMMEDIATE")
        for n in range(first, min(first + 50, total)):
            db.execute("INSERT INTO payments (payment_hash, amount) VALUES (?, ?)", (f"{n:064x}", 1000))
            db.executemany("INSERT INTO lines (entry, account, amount) VALUES (?, ?, ?)",
                           [(n, a, 10) for a in range(notes_per_loan)])
            db.executemany("UPDATE balances SET balance = balance + ? WHERE account = ?",
                           [(10, a) for a in range(notes_per_loan)])
        db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    db.close()
    return total / elapsed


def _mk(path: object) -> object:
    from pathlib import Path

    Path(str(path)).mkdir(parents=True, exist_ok=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repayments", type=int, default=2000)
    parser.add_argument("--notes", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--profile", action="store_true", help="cProfile the drain (worker threads included)")
    args = parser.parse_args()
    global PROFILE
    PROFILE = args.profile
    root = scratch_dir()
    node = BenchNode(root)
    try:
        for notes_per_loan in args.notes:
            run_case(root, node, args.database_url, notes_per_loan, args.repayments)
    finally:
        node.stop()


if __name__ == "__main__":
    main()
