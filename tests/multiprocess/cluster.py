"""Several real `microlend serve` processes on one database and one dev node: who holds the worker lock,
deposit invoices to pay, and the failover clock. Used by the tests here and by bench/failover.py."""
from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from pyln.client import LightningRpc
from sqlalchemy import func, select

from lightning.cln import ClnAdapter
from marketplace.db.engine import Database
from marketplace.db.tables import invoices, journal_entries
from marketplace.services.deposits import create_deposit_invoice
from marketplace.settings import Settings
from tests.crash.support import AppProcess, wait_for

_HOLDS = re.compile(r"process (\d+) holds the worker lock")
_LOST = re.compile(r"process (\d+) lost the worker lock")
FAST_ENV = {"MICROLEND_LEADER_POLL_S": "0.2", "MICROLEND_LISTENER_WAIT_S": "1", "MICROLEND_RECONCILE_EVERY_S": "1"}


@dataclass
class Cluster:
    tmp_path: Path
    database_url: str
    rpc_path: str
    size: int = 3
    env: dict[str, str] = field(default_factory=lambda: dict(FAST_ENV))
    apps: list[AppProcess] = field(default_factory=list)

    def start(self) -> None:
        self.apps = [AppProcess(self.tmp_path, self.database_url, self.rpc_path, name=f"app{i}", env=self.env)
                     for i in range(self.size)]
        for app in self.apps:
            app.start()
        for app in self.apps:
            app.wait_ready()

    def holders(self) -> list[AppProcess]:
        """Live processes whose log says they hold the worker lock (and have not lost it since)."""
        found = []
        for app in self.apps:
            if not app.alive():
                continue
            text = app.log()
            held = [m for m in _HOLDS.finditer(text) if int(m.group(1)) == app.pid]
            lost = [m for m in _LOST.finditer(text) if int(m.group(1)) == app.pid]
            if held and (not lost or lost[-1].start() < held[-1].start()):
                found.append(app)
        return found

    def leader(self, timeout_s: float = 30) -> AppProcess:
        wait_for(lambda: len(self.holders()) == 1, timeout_s, "exactly one worker-lock holder", *self.apps)
        return self.holders()[0]

    def stop(self) -> None:
        for app in self.apps:
            if app.alive():
                app.kill9()


def issue_invoices(database: Database, port: ClnAdapter, settings: Settings, user_ids: Sequence[int], count: int,
                   amount_msat: int) -> list[tuple[str, str]]:
    """(payment hash, bolt11) of `count` deposit invoices made by the real service, spread over the users."""
    made: list[tuple[str, str]] = []

    async def one(i: int, limiter: anyio.CapacityLimiter) -> None:
        async with limiter:
            row = await create_deposit_invoice(database, port, settings, user_ids[i % len(user_ids)], amount_msat)
            assert row.payment_hash is not None and row.bolt11 is not None
            made.append((row.payment_hash, row.bolt11))

    async def all_of_them() -> None:
        limiter = anyio.CapacityLimiter(8)
        async with anyio.create_task_group() as group:
            for i in range(count):
                group.start_soon(one, i, limiter)

    anyio.run(all_of_them)
    return made


def pay(wallet: LightningRpc, bolt11: str) -> None:
    wallet.call("xpay", {"invstring": bolt11, "maxfee": 10_000})


def credited(database: Database) -> int:
    return database.read(lambda c: int(c.execute(
        select(func.count()).select_from(invoices).where(invoices.c.status == "paid")).scalar_one()))


def credits_per_hash(database: Database) -> dict[str, int]:
    rows = database.read(lambda c: list(c.execute(
        select(journal_entries.c.idempotency_key, func.count()).where(journal_entries.c.kind == "deposit")
        .group_by(journal_entries.c.idempotency_key))))
    return {str(key).removeprefix("invoice:"): int(n) for key, n in rows}


def kill_leader_and_time_catch_up(cluster: Cluster, database: Database, wallet: LightningRpc, bolt11: str,
                                  paid_so_far: int, timeout_s: float = 30) -> tuple[AppProcess, float]:
    """SIGKILL the holder, pay one invoice, and time until every paid invoice is credited again."""
    leader = cluster.leader()
    started = time.monotonic()
    leader.kill9()
    pay(wallet, bolt11)
    wait_for(lambda: credited(database) >= paid_so_far + 1, timeout_s, "the new holder catching up", *cluster.apps)
    return leader, time.monotonic() - started
