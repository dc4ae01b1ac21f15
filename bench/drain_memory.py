"""Resident memory of the payment listener draining a large backlog: it pages, so memory stays flat.

Run by hand:  .venv/bin/python -m bench.drain_memory [--payments 100000] [--notes 10] [--page-size 1000]
                                                      [--database-url postgresql://...]

Loans funded by `--notes` lenders each are disbursed through the dev node
(`bench.repayments`' set-up); their borrowers' wallet pays `--payments` small
repayment invoices while no listener runs; then one PaymentListener in this
process drains the backlog (pages of `--page-size`, one transaction each)
while a thread samples this process's resident memory (/proc/self/status
VmRSS) every 20 ms. Prints RSS before the drain, its peak during it and after
it, and the growth per 1,000 payments: flat means the drain holds one page at
a time, not the backlog.
"""
from __future__ import annotations

import argparse
import gc
import threading
import time
from pathlib import Path

import anyio

from bench.common import BenchNode, fresh_database, scratch_dir
from bench.repayments import count, setup_loans
from bench.settlement import pay_all
from lightning.cln import ClnAdapter
from marketplace.db.tables import repayments
from marketplace.services import deposits, loans as loan_service
from marketplace.settings import Settings
from marketplace.workers.listener import PaymentListener


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


class Sampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = rss_kib()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.02):
            self.peak = max(self.peak, rss_kib())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--payments", type=int, default=100_000)
    parser.add_argument("--notes", type=int, default=10, help="notes per loan (each repayment is shared to them)")
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--database-url", default=None, help="PostgreSQL server URL (default: SQLite)")
    args = parser.parse_args()
    root = scratch_dir()
    node = BenchNode(root)
    try:
        database = fresh_database(root, args.database_url)
        settings = Settings(data_dir=root, database_url=database.url, secret_key="bench",
                            invoice_limit_count=10**9, invoice_unpaid_total=10**9)
        port = ClnAdapter(node.rpc("marketplace"))
        pairs = setup_loans(database, settings, port, ClnAdapter(node.rpc("wallet")), args.notes)

        # The caps are lifted for the backlog, but each creation would still count every open invoice made so
        # far (the per-user window and the marketplace-wide count): 100,000 of them made creation ~4x slower by
        # the end. Production never holds more open invoices than its caps; the drain is what is measured here.
        for check in ("check_invoice_rate", "check_open_invoices"):
            setattr(deposits, check, lambda *args, **kwargs: None)

        async def issue() -> list[str]:
            bolt11s = []
            made = time.perf_counter()
            for i in range(args.payments):
                if i and i % 10_000 == 0:
                    print(f"  {i:,} invoices made, {10_000 / (time.perf_counter() - made):.0f}/s lately", flush=True)
                    made = time.perf_counter()
                borrower, loan_id = pairs[i % len(pairs)]
                invoice = await loan_service.repayment_invoice(database, port, settings, borrower, loan_id,
                                                               1_000 + i % 7)
                assert invoice.bolt11
                bolt11s.append(invoice.bolt11)
            return bolt11s

        started = time.perf_counter()
        bolt11s = anyio.run(issue)
        pay_all(node.rpc("wallet"), bolt11s)
        del bolt11s
        print(f"backlog: {args.payments:,} paid repayment invoices, {args.notes} notes a loan "
              f"({time.perf_counter() - started:.0f} s to make; {database.engine.dialect.name})", flush=True)
        gc.collect()
        before = rss_kib()
        sampler = Sampler()
        sampler.start()
        started = time.perf_counter()
        anyio.run(PaymentListener(database, port, page_size=args.page_size).drain)
        elapsed = time.perf_counter() - started
        sampler.done.set()
        sampler.join()
        gc.collect()
        after = rss_kib()
        settled = count(database, repayments)
        assert settled == args.payments, (settled, args.payments)
        growth = sampler.peak - before
        print(f"listener drain, pages of {args.page_size:,}: {settled:,} repayments in {elapsed:.1f} s | RSS before "
              f"{before / 1024:.0f} MiB, peak {sampler.peak / 1024:.0f} MiB, after {after / 1024:.0f} MiB "
              f"(peak growth {growth / 1024:.1f} MiB = {growth / max(1, args.payments / 1000):.0f} KiB per 1,000 "
              "payments)", flush=True)
        database.dispose()
    finally:
        node.stop()


if __name__ == "__main__":
    main()
