"""The payment listener: credits each paid invoice exactly once, resuming where it stopped.

Only the process holding the worker lock runs it (marketplace/workers/supervisor.py).
Loop: drain changes in pages (`listinvoices index=updated`), one transaction
per page that credits the page and stores both cursors; when nothing is new,
block on `waitanyinvoice lastpay_index=N` and credit what it returns. At
start-up (and after every reconnect) the marketplace's own open invoices are
looked up one by one, so a payment the cursor missed is still found. A node
that is down is retried with backoff; the listener never takes the app down.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import anyio
from sqlalchemy import Connection

from lightning.errors import InvoiceError, LightningError, NodeUnreachable
from lightning.port import CreatedInvoice, InvoiceStatus, InvoiceUpdate, LightningPort
from marketplace.db import invoices
from marketplace.db.engine import Database
from marketplace.db.crediting import CreditReport, apply_updates
from marketplace.services.lightning_calls import in_transaction, reading
from marketplace.payments.faults import crash_at
from marketplace.workers.health import WorkerHealth

log = logging.getLogger("microlend.listener")

MAX_BACKOFF_S = 30.0
# A row younger than this in 'creating' may belong to an invoice call still on its way.
CREATING_GRACE_S = 30


class PaymentListener:
    def __init__(self, database: Database, port: LightningPort, *, page_size: int = 1000,
                 wait_s: int = 30, health: WorkerHealth | None = None, crash_point: str = "") -> None:
        self.database = database
        self.crash_point = crash_point
        self.port = port
        self.page_size = page_size
        self.wait_s = wait_s
        self.health = health or WorkerHealth("payment listener")
        self._last_creating_sweep = time.monotonic()

    async def credit(self, updates: Sequence[InvoiceUpdate], *, advance_cursor: bool = True) -> CreditReport:
        def apply(conn: Connection) -> CreditReport:
            applied = apply_updates(conn, updates, advance_cursor=advance_cursor, fault=self._maybe_crash)
            if applied.credited:
                self._maybe_crash("listener:before-commit")
            return applied

        report = await in_transaction(self.database, apply)
        if report.credited:
            self._maybe_crash("listener:after-commit")
        self.health.count("credited", report.credited)
        self.health.count("stepped_over", report.stepped_over)
        self.health.last_pay_index = report.cursor.last_pay_index
        if report.credited or report.stepped_over:
            log.info("credited %d invoice(s), stepped over %d; pay_index now %d",
                     report.credited, report.stepped_over, report.cursor.last_pay_index)
        return report

    async def drain(self) -> int:
        """Credit every change since the cursor, a page per transaction; the number of changes."""
        total = 0
        while True:
            cursor = await reading(self.database, invoices.cursor)
            page = await self.port.list_paid_since(cursor.last_updated_index + 1, self.page_size)
            if not page:
                return total
            await self.credit(page)
            total += len(page)
            self.health.ok()
            if len(page) < self.page_size:
                return total

    async def sweep(self) -> int:
        """Ask the node about each of our invoices that may still be paid; credit the paid ones.

        Rows left in 'creating' (the app died before or while asking the node) are
        settled here once: found by label -> unpaid (and credited if paid); not
        found -> failed, so no later start asks about them again.
        """
        rows = await reading(self.database, lambda c: invoices.open_invoices(c, int(time.time())))
        return await self._look_up(rows)

    async def sweep_creating(self) -> int:
        """The same for rows still 'creating' only (cheap: usually none); run between waits."""
        self._last_creating_sweep = time.monotonic()
        rows = await reading(self.database, invoices.creating)
        return await self._look_up(rows) if rows else 0

    async def _look_up(self, rows: Sequence[invoices.InvoiceRow]) -> int:
        found: list[InvoiceUpdate] = []
        for row in rows:
            current = await self.port.lookup_invoice(row.label)
            if current is None:
                if row.status == "creating":
                    await in_transaction(self.database, lambda c: invoices.fail_lost_creation(
                        c, row.id, CREATING_GRACE_S))
                continue
            if row.status == "creating" and current.bolt11:
                created = CreatedInvoice(current.label, current.payment_hash, current.bolt11, "",
                                         current.expires_at, current.created_index)
                await in_transaction(self.database, lambda c: invoices.mark_created(c, row.id, created))
            if current.status in (InvoiceStatus.PAID, InvoiceStatus.EXPIRED):
                found.append(current)
        if not found:
            return 0
        # The sweep never moves the cursor: pages and waits own it.
        return (await self.credit(found, advance_cursor=False)).credited

    async def wait_once(self) -> None:
        cursor = await reading(self.database, invoices.cursor)
        self.health.last_pay_index = cursor.last_pay_index
        paid = await self.port.wait_any_paid(cursor.last_pay_index, self.wait_s)
        if paid is not None:
            await self.credit([paid])

    async def run(self) -> None:
        """Forever: sweep, drain, wait. Errors are logged and retried with backoff."""
        backoff = 0.5
        while True:
            try:
                # Drain first: after a failover the cursor catches up at once; then the
                # slower invoice-by-invoice sweep makes sure nothing depended on the cursor alone.
                await self.drain()
                await self.sweep()
                self.health.ok()
                while True:
                    await self.drain()
                    await self.wait_once()
                    if time.monotonic() - self._last_creating_sweep > CREATING_GRACE_S:
                        await self.sweep_creating()
                    self.health.ok()
                    backoff = 0.5
            except NodeUnreachable as exc:
                self._retry(f"Lightning node unreachable: {exc.message}", backoff)
            except (LightningError, InvoiceError) as exc:
                self._retry(f"Lightning node error: {exc.message}", backoff)
            except Exception as exc:  # a database hiccup must not end the listener
                log.exception("payment listener failed")
                self._retry(f"{type(exc).__name__}: {exc}", backoff)
            await anyio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    def _maybe_crash(self, point: str) -> None:
        crash_at(self.crash_point, point)

    def _retry(self, message: str, backoff: float) -> None:
        log.warning("%s; retrying in %.1f s", message, backoff)
        self.health.failed(message, backoff)
