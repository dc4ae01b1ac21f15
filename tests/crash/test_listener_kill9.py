"""kill -9 between a payment and its credit: after a restart it is credited exactly once.

The app runs as a real `microlend serve` subprocess on a SQLite file and a
real dev node. Fault injection makes the listener SIGKILL its own process at
the worst moments (inside the credit transaction before commit, and right
after commit); an outside `kill -9` covers the rest.
"""
from __future__ import annotations

import signal
import time
from pathlib import Path

import anyio
from sqlalchemy import Connection, func, select

from marketplace.db import invoices, ledger, migrate
from marketplace.db.engine import Database
from marketplace.db.tables import journal_entries
from marketplace.db.verify import verify_ledger
from marketplace.domain.journal import AccountKind
from marketplace.services.deposits import create_deposit_invoice
from marketplace.settings import Settings
from tests.crash.support import AppProcess, wait_for
from tests.fixtures.devnode import DevNode
from tests.ledger_helpers import make_user

AMOUNT_MSAT = 7_000_000


def credits_for(database: Database, payment_hash: str) -> int:
    key = f"invoice:{payment_hash}"
    return database.read(lambda c: int(c.execute(
        select(func.count()).select_from(journal_entries).where(journal_entries.c.idempotency_key == key)
    ).scalar_one()))


def test_kill9_at_every_point_credits_exactly_once(tmp_path: Path, devnode: DevNode) -> None:
    url = f"sqlite:///{tmp_path / 'crash.sqlite3'}"
    settings = Settings(data_dir=tmp_path / "data", database_url=url, secret_key="crash-test")
    database = Database(url)
    migrate.upgrade(database.engine)
    user_id = database.run(lambda c: make_user(c)[0])
    port = devnode.adapter("marketplace")
    wallet = devnode.adapter("wallet")
    app = AppProcess(tmp_path, url, devnode.rpc_path("marketplace"))

    def available() -> int:
        return database.read(lambda c: ledger.user_balances(c, user_id)[AccountKind.USER_AVAILABLE])

    def new_paid_invoice() -> str:
        row = anyio.run(create_deposit_invoice, database, port, settings, user_id, AMOUNT_MSAT)
        assert row.bolt11 is not None and row.payment_hash is not None
        anyio.run(wallet.pay, row.bolt11, None, 10_000, 10)
        return row.payment_hash

    # 1. Paid while the app is down; the listener dies inside the credit transaction.
    first = new_paid_invoice()
    app.start(fault="listener:before-commit")
    assert app.wait_exit() == -signal.SIGKILL, app.log()
    assert "fault injection: SIGKILL at listener:before-commit" in app.log()
    assert available() == 0 and credits_for(database, first) == 0
    assert database.read(invoices.cursor).last_pay_index == 0

    # 2. Restarted normally: credited once.
    app.start()
    wait_for(lambda: available() == AMOUNT_MSAT, 60, "the first credit", app)
    assert credits_for(database, first) == 1

    # 3. Paid while the app runs; it dies right after committing the credit.
    app.kill9()
    app.start(fault="listener:after-commit")
    time.sleep(0.5)
    second = new_paid_invoice()
    assert app.wait_exit() == -signal.SIGKILL, app.log()
    assert available() == 2 * AMOUNT_MSAT and credits_for(database, second) == 1

    # 4. Paid, then an outside kill -9 at an arbitrary moment, twice over.
    app.start()
    third = new_paid_invoice()
    time.sleep(0.02)
    app.kill9()
    app.start()
    wait_for(lambda: available() == 3 * AMOUNT_MSAT, 60, "the third credit", app)
    app.kill9()
    app.start()
    # Credits found by the start-up sweep leave the cursor alone; the drain that follows moves it.
    wait_for(lambda: database.read(invoices.cursor).last_pay_index == 3, 60, "the cursor catching up", app)
    app.kill9()

    assert available() == 3 * AMOUNT_MSAT
    assert [credits_for(database, h) for h in (first, second, third)] == [1, 1, 1]
    assert database.read(invoices.cursor).last_pay_index == 3
    assert database.read(verify_ledger).ok
    database.dispose()
