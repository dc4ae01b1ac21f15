"""Crash trials, the CI version: every named point on a money path once, and a random moment, on each database.

The app (`microlend serve`, forked from a launcher that has imported it), the dev node and the database are
real processes; see tests/crash/trials.py for the driver and the checker, and bench/crash_trials.py for the long
run. After every restart the checker must find nothing lost, doubled, stuck or out of balance; and it must see
each kind of damage when the database is tampered with afterwards (a checker that finds nothing proves nothing).
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from marketplace.db.tables import invoices, notes, outgoing_payments
from tests.crash.forked import Launcher
from tests.crash.trials import NAMED_POINTS, RANDOM, Trials, check, verify_with_cli
from tests.fixtures.devnode import DevNode


@pytest.fixture(scope="session")
def launcher() -> Iterator[Launcher]:
    started = Launcher()
    yield started
    started.close()


def test_every_named_point_and_a_random_moment_lose_and_double_nothing(
        tmp_path: Path, db_url: str, devnode: DevNode, launcher: Launcher) -> None:
    trials = Trials(tmp_path, db_url, devnode, seed=7, cli_verify=False, launcher=launcher)
    try:
        results = [trials.trial(point) for point in (*NAMED_POINTS, RANDOM)]
    finally:
        trials.stop()
    assert [r.point for r in results if not r.reached] == [], trials.app.log()[-3000:]
    assert [(r.point, r.report.violations) for r in results if not r.report.ok] == []
    assert verify_with_cli(db_url) == []
    database = trials.database

    # The checker sees damage: an invoice paid at the node but not credited ...
    paid = database.read(lambda c: c.execute(select(invoices.c.id, invoices.c.payment_hash)
                                             .where(invoices.c.status == "paid", invoices.c.purpose == "deposit")
                                             .limit(1)).one())
    database.run(lambda c: c.execute(update(invoices).where(invoices.c.id == paid.id).values(status="unpaid")))
    found = check(database, devnode, db_url, cli=False)
    assert any(paid.payment_hash[:12] in text for text in found.lost), found.violations
    # ... a share-out that gave a note more than the repayments brought ...
    note_id = database.read(lambda c: c.execute(select(notes.c.id).where(notes.c.received_msat > 0).limit(1))
                            .scalar_one())
    database.run(lambda c: c.execute(update(notes).where(notes.c.id == note_id)
                                     .values(received_msat=notes.c.received_msat + 1)))
    found = check(database, devnode, db_url, cli=False)
    assert any("notes received" in text for text in found.other), found.violations
    # ... and a payment the node made recorded as released back to the user.
    paid_out = database.read(lambda c: c.execute(select(outgoing_payments.c.id)
                                                 .where(outgoing_payments.c.status == "succeeded").limit(1))
                             .scalar_one())
    database.run(lambda c: c.execute(update(outgoing_payments).where(outgoing_payments.c.id == paid_out)
                                     .values(status="failed")))
    found = check(database, devnode, db_url, cli=False)
    assert any("released back to the user, yet the node paid it" in text for text in found.doubled)
    database.dispose()
