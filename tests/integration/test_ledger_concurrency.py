"""Many postings racing for one balance: none overdraws it, on either database."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Connection

from marketplace.db import ledger
from marketplace.db.engine import Database
from marketplace.db.verify import verify_ledger
from marketplace.domain.errors import InsufficientFunds
from marketplace.domain.journal import AccountKind, transfer
from tests.ledger_helpers import balance, deposit_entry, make_user

WORKERS = 16
ATTEMPTS = 48
START_MSAT = 10_000
AMOUNT_MSAT = 700  # 14 fit; the other 34 must be refused


def test_concurrent_withdrawals_never_overdraw(database: Database) -> None:
    def setup(conn: Connection) -> dict[AccountKind, int]:
        _, accts = make_user(conn)
        ledger.post(conn, [deposit_entry(conn, accts[AccountKind.USER_AVAILABLE], START_MSAT)])
        return accts

    accts = database.run(setup)
    source, hold = accts[AccountKind.USER_AVAILABLE], accts[AccountKind.USER_PENDING_OUT]
    barrier = threading.Barrier(WORKERS)

    def attempt(i: int) -> bool:
        if i < WORKERS:
            barrier.wait()

        def work(conn: Connection) -> None:
            # Read-then-write, the pattern that pays twice without a write lock.
            if balance(conn, source) < AMOUNT_MSAT:
                raise InsufficientFunds("balance checked before posting")
            ledger.post(conn, [transfer("withdrawal_hold", source, hold, AMOUNT_MSAT)])

        try:
            database.run(work)
            return True
        except InsufficientFunds:
            return False

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        outcomes = list(pool.map(attempt, range(ATTEMPTS)))

    succeeded = sum(outcomes)
    assert succeeded == START_MSAT // AMOUNT_MSAT
    with database.transaction(write=False) as conn:
        assert balance(conn, source) == START_MSAT - succeeded * AMOUNT_MSAT
        assert balance(conn, hold) == succeeded * AMOUNT_MSAT
        report = verify_ledger(conn)
    assert report.ok, report.problems


def test_concurrent_idempotent_postings_post_once(database: Database) -> None:
    def setup(conn: Connection) -> dict[AccountKind, int]:
        _, accts = make_user(conn)
        ledger.post(conn, [deposit_entry(conn, accts[AccountKind.USER_AVAILABLE], START_MSAT)])
        return accts

    accts = database.run(setup)
    entry = transfer("pledge", accts[AccountKind.USER_AVAILABLE], accts[AccountKind.USER_RESERVED], 1_000,
                     idempotency_key="same-request")
    barrier = threading.Barrier(8)

    def attempt(_: int) -> int:
        barrier.wait()
        return database.run(lambda c: ledger.post(c, [entry]))[0].id

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = set(pool.map(attempt, range(8)))
    assert len(ids) == 1
    assert database.read(lambda c: balance(c, accts[AccountKind.USER_RESERVED])) == 1_000
