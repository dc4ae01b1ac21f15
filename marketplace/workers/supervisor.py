"""The background workers of an app process, run only by the process that holds the worker lock.

Several app processes may share one database (`microlend serve --workers N`,
or N `microlend serve` processes behind a load balancer). Exactly one of
them — whoever holds the lock in marketplace/workers/leadership.py (a
PostgreSQL advisory lock, or a file lock beside SQLite) — runs the payment
listener, the reconciler, the daily aging job and the reminder sender. The
others serve requests and poll for the lock every `leader_poll_s`; when the
holder dies (even by SIGKILL: the lock lives in its database session or its
open file) one of them takes over.

The holder checks its lock each poll too: if it lost it (its database session
was cut), it stops the workers and goes back to standby rather than run them
beside a new holder.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any
from dataclasses import dataclass

import anyio
import anyio.to_thread

from lightning.port import LightningPort
from marketplace.db.engine import Database
from marketplace.settings import Settings
from marketplace.workers.health import WorkerHealth
from marketplace.workers.leadership import Leadership
from marketplace.workers.listener import PaymentListener
from marketplace.payments.reconciler import reconcile_outgoing

log = logging.getLogger("microlend.workers")

STANDBY = "standby (another process holds the worker lock)"


@dataclass
class WorkerSet:
    """What the workers need, and where they report."""

    database: Database
    port: LightningPort
    settings: Settings
    listener_health: WorkerHealth
    reconciler_health: WorkerHealth
    aging_health: WorkerHealth
    notices_health: WorkerHealth
    autoinvest_health: WorkerHealth

    def healths(self) -> list[WorkerHealth]:
        return [self.listener_health, self.reconciler_health, self.aging_health, self.notices_health,
                self.autoinvest_health]


async def run_workers_when_leader(workers: WorkerSet) -> None:
    """Forever: wait for the lock, run every worker while it is held, stand by again if it is lost."""
    leadership = Leadership(workers.database)
    poll_s = max(workers.settings.leader_poll_s, 0.05)
    try:
        while True:
            if not await anyio.to_thread.run_sync(leadership.try_acquire):
                for health in workers.healths():
                    health.state = STANDBY
                await anyio.sleep(poll_s)
                continue
            log.warning("process %d holds the worker lock: running the payment listener, reconciler, "
                        "aging job, reminder sender and auto-invest engine", os.getpid())
            async with anyio.create_task_group() as group:
                for work in _workers(workers):
                    group.start_soon(work)
                while await anyio.to_thread.run_sync(leadership.still_held):
                    await anyio.sleep(poll_s)
                log.warning("process %d lost the worker lock: standing by", os.getpid())
                group.cancel_scope.cancel()
            await anyio.to_thread.run_sync(leadership.release)
    finally:
        with anyio.CancelScope(shield=True):  # also when cancelled (shutdown): let the next holder in now
            await anyio.to_thread.run_sync(leadership.release)


def _workers(w: WorkerSet) -> list[Callable[[], Coroutine[Any, Any, None]]]:
    settings = w.settings

    async def listen() -> None:
        listener = PaymentListener(w.database, w.port, page_size=settings.listener_page_size,
                                   wait_s=settings.listener_wait_s, health=w.listener_health,
                                   crash_point=settings.fault_injection)
        await listener.run()

    async def reconcile() -> None:
        async def one_pass() -> None:
            resolved = await reconcile_outgoing(w.database, w.port, settings, resubmit=True)
            w.reconciler_health.count("resolved", resolved)

        await _every(settings.reconcile_every_s, w.reconciler_health, "reconciler", one_pass)

    async def age() -> None:
        from marketplace.services.loans import age_loans

        async def one_pass() -> None:
            report = await anyio.to_thread.run_sync(age_loans, w.database, settings)
            w.aging_health.count("state_changes", report.changed)

        await _every(settings.aging_every_s, w.aging_health, "aging", one_pass)

    async def notify() -> None:
        from marketplace.services.reminders import run_notices

        async def one_pass() -> None:
            queued, sent, failed = await anyio.to_thread.run_sync(run_notices, w.database, settings)
            w.notices_health.count("queued", queued)
            w.notices_health.count("sent", sent)
            w.notices_health.count("failed", failed)

        await _every(settings.aging_every_s, w.notices_health, "notices", one_pass)

    async def autoinvest() -> None:
        from marketplace.services.autoinvest import run_autoinvest

        async def one_pass() -> None:
            report = await anyio.to_thread.run_sync(run_autoinvest, w.database, settings)
            w.autoinvest_health.count("notes_bought", report.bought)

        await _every(settings.autoinvest_every_s, w.autoinvest_health, "auto-invest", one_pass)

    return [listen, reconcile, age, notify, autoinvest]


async def _every(interval_s: float, health: WorkerHealth, name: str, one_pass: Callable[[], Awaitable[None]]) -> None:
    while True:
        try:
            await one_pass()
            health.count("passes")
            health.ok()
        except Exception as exc:  # each job is idempotent: the next pass retries; the operator page shows this
            log.exception("%s pass failed", name)
            health.failed(f"{type(exc).__name__}: {exc}", interval_s)
        await anyio.sleep(interval_s)
