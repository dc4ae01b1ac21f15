"""Several app processes, one database: exactly one runs the payment listener, and another takes over.

Three real `microlend serve` processes on one PostgreSQL database and one dev
node (its own process). 1,000 deposit invoices are paid while the process
holding the worker lock is killed with SIGKILL twice; each time another takes
over, and in the end every payment is credited exactly once.

On SQLite two processes on one file work the same way (the worker lock is a
file lock beside the database; writes serialize on SQLite's own lock).
"""
from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from marketplace.db import ledger
from marketplace.db.engine import Database
from marketplace.db.verify import verify_ledger
from marketplace.domain.journal import AccountKind
from marketplace.settings import Settings
from tests.crash.support import wait_for
from tests.databases import PostgresTemplate, SqliteTemplate
from tests.fixtures.devnode import DevNode
from tests.ledger_helpers import make_user
from tests.multiprocess.cluster import (
    Cluster,
    credited,
    credits_per_hash,
    issue_invoices,
    kill_leader_and_time_catch_up,
    pay,
)

AMOUNT_MSAT = 1_000_000


def _settings(tmp_path: Path, url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=url, secret_key="multi-test", invoice_limit_count=10**6)


def _run(tmp_path: Path, url: str, devnode: DevNode, *, size: int, count: int, kills: tuple[int, ...]) -> None:
    database = Database(url)
    settings = _settings(tmp_path, url)
    users = [database.run(make_user)[0] for _ in range(10)]
    made = issue_invoices(database, devnode.adapter("marketplace"), settings, users, count, AMOUNT_MSAT)
    cluster = Cluster(tmp_path, url, devnode.rpc_path("marketplace"), size=size)
    cluster.start()
    wallet = devnode.rpc("wallet")
    try:
        first = cluster.leader()
        killed = []
        failovers = []
        for i, (_, bolt11) in enumerate(made):
            if i in kills:
                leader, seconds = kill_leader_and_time_catch_up(cluster, database, wallet, bolt11, i)
                killed.append(leader)
                failovers.append(seconds)
                assert cluster.leader() is not leader
            else:
                pay(wallet, bolt11)
        wait_for(lambda: credited(database) == count, 60, "every payment credited", *cluster.apps)
        survivor = cluster.leader()
        assert first in killed and survivor not in killed and len(set(killed)) == len(kills)
        print(f"\nfailover (kill -> every paid invoice credited again): "
              f"{', '.join(f'{s:.2f} s' for s in failovers)}; median {statistics.median(failovers):.2f} s")
    finally:
        cluster.stop()

    per_hash = credits_per_hash(database)
    assert sorted(per_hash) == sorted(h for h, _ in made)
    assert set(per_hash.values()) == {1}  # every payment credited exactly once
    total = sum(database.read(lambda c: ledger.user_balances(c, u))[AccountKind.USER_AVAILABLE] for u in users)
    assert total == count * AMOUNT_MSAT
    assert database.read(verify_ledger).ok
    database.dispose()


def test_three_processes_on_postgresql_fail_over_twice_and_credit_every_payment_once(
        tmp_path: Path, postgres_template: PostgresTemplate, devnode: DevNode) -> None:
    url = postgres_template.new_url()
    try:
        _run(tmp_path, url, devnode, size=3, count=1000, kills=(333, 666))
    finally:
        postgres_template.drop(url)


def test_two_processes_on_one_sqlite_file_work_by_the_file_lock(
        tmp_path: Path, sqlite_template: SqliteTemplate, devnode: DevNode) -> None:
    url = sqlite_template.new_url()
    _run(tmp_path, url, devnode, size=2, count=60, kills=(30,))
