"""Settlement benchmarks: invoice creation, listener drain, end-to-end rate, app memory.

Run by hand:  .venv/bin/python -m bench.settlement [--payments 10000] [--database-url postgresql://...]
"""
from __future__ import annotations

import argparse
import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import anyio
from sqlalchemy import Connection, func, select

from lightning.cln import ClnAdapter
from marketplace.db import invoices
from marketplace.db.engine import Database
from marketplace.db.tables import invoices as invoices_table
from marketplace.services.deposits import create_deposit_invoice
from marketplace.settings import Settings
from marketplace.workers.listener import PaymentListener
from tests.ledger_helpers import make_user
from bench.common import BenchNode, fresh_database, scratch_dir


def rate(count: int, seconds: float) -> str:
    return f"{count:,} in {seconds:.2f} s = {count / seconds:,.0f}/s"


async def invoice_rate_adapter(port: ClnAdapter, count: int) -> float:
    start = time.perf_counter()
    for i in range(count):
        await port.create_invoice(1000, f"bench-raw-{time.time_ns()}-{i}", "bench", 3600)
    return time.perf_counter() - start


async def issue_deposits(database: Database, port: ClnAdapter, settings: Settings, user_ids: list[int],
                         count: int) -> list[str]:
    bolt11s: list[str] = []
    for i in range(count):
        row = await create_deposit_invoice(database, port, settings, user_ids[i % len(user_ids)], 1_000 + i)
        assert row.bolt11
        bolt11s.append(row.bolt11)
    return bolt11s


def pay_all(wallet_rpc: str, bolt11s: list[str], threads: int = 2) -> float:
    wallet = ClnAdapter(wallet_rpc)

    def pay(chunk: list[str]) -> None:
        async def run() -> None:
            for b in chunk:
                await wallet.pay(b, None, 10_000, 10)
        anyio.run(run)

    chunks = [bolt11s[i::threads] for i in range(threads)]
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(pay, chunks))
    return time.perf_counter() - start


def paid_count(database: Database) -> int:
    return database.read(lambda c: int(c.execute(
        select(func.count()).select_from(invoices_table).where(invoices_table.c.status == "paid")).scalar_one()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--payments", type=int, default=10_000)
    parser.add_argument("--database-url", default=None, help="PostgreSQL server URL (default: SQLite)")
    parser.add_argument("--users", type=int, default=100)
    args = parser.parse_args()

    root = scratch_dir()
    node = BenchNode(root)
    database = fresh_database(root, args.database_url)
    settings = Settings(data_dir=root, database_url=database.url, secret_key="bench", invoice_limit_count=10**9,
                        invoice_unpaid_total=10**9)
    port = ClnAdapter(node.rpc("marketplace"))
    print(f"database: {database.engine.dialect.name}; payments: {args.payments:,}")

    seconds = anyio.run(invoice_rate_adapter, port, 2000)
    print(f"invoice via adapter + dev node:        {rate(2000, seconds)}")

    user_ids = database.run(lambda c: [make_user(c)[0] for _ in range(args.users)])
    start = time.perf_counter()
    bolt11s = anyio.run(issue_deposits, database, port, settings, user_ids, args.payments)
    print(f"deposit invoices via service:          {rate(args.payments, time.perf_counter() - start)}")

    seconds = pay_all(node.rpc("wallet"), bolt11s)
    print(f"wallet paid (app stopped):             {rate(args.payments, seconds)}")

    listener = PaymentListener(database, port, page_size=1000)
    start = time.perf_counter()
    anyio.run(listener.drain)
    drained = time.perf_counter() - start
    assert paid_count(database) == args.payments, paid_count(database)
    print(f"listener drain of the backlog:         {rate(args.payments, drained)}")

    e2e_count = max(1000, args.payments // 5)
    bolt11s = anyio.run(issue_deposits, database, port, settings, user_ids, e2e_count)
    seconds = anyio.run(end_to_end, database, port, node.rpc("wallet"), bolt11s)
    print(f"end to end, listener running:          {rate(e2e_count, seconds)} (pay -> credited)")

    http_rate, rss_kib = http_deposits(root, database.url, node.rpc("marketplace"), 500)
    print(f"deposit invoices via HTTP (POST /deposit, 4 clients): {http_rate:,.0f}/s")
    print(f"app resident memory after the HTTP run: {rss_kib / 1024:,.1f} MiB")
    node.stop()


async def end_to_end(database: Database, port: ClnAdapter, wallet_rpc: str, bolt11s: list[str]) -> float:
    """The listener runs while the wallet keeps paying; time from the first payment to the last credit."""
    before = paid_count(database)
    listener = PaymentListener(database, port, page_size=1000, wait_s=5)
    async with anyio.create_task_group() as group:
        group.start_soon(listener.run)
        await anyio.sleep(0.5)
        start = time.perf_counter()
        await anyio.to_thread.run_sync(pay_all, wallet_rpc, bolt11s)
        while paid_count(database) < before + len(bolt11s):
            await anyio.sleep(0.01)
        elapsed = time.perf_counter() - start
        group.cancel_scope.cancel()
    return elapsed


def http_deposits(root: object, database_url: str, rpc: str, count: int) -> tuple[float, int]:
    """A real `microlend serve` process; signed-in clients POST /deposit; its RSS afterwards."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    import httpx

    from bench.common import REPO

    env = {k: v for k, v in os.environ.items() if not k.startswith("MICROLEND_")}
    env.update({"MICROLEND_DATABASE_URL": database_url, "MICROLEND_CLN_RPC": rpc,
                "MICROLEND_DATA_DIR": str(Path(str(root)) / "appdata"), "MICROLEND_INVOICE_LIMIT_COUNT": "1000000"})
    server = subprocess.Popen([sys.executable, "-m", "marketplace.cli", "serve", "--port", "8765"], cwd=REPO,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = "http://127.0.0.1:8765"
    try:
        for _ in range(100):
            try:
                httpx.get(base + "/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        token = re.compile(r'name="csrf_token" value="([^"]*)"')

        def client_run(n: int, index: int) -> None:
            with httpx.Client(base_url=base, timeout=30) as client:
                page = client.get("/signup")
                csrf = token.search(page.text).group(1)  # type: ignore[union-attr]
                client.post("/signup", data={"csrf_token": csrf, "email": f"bench{index}-{time.time_ns()}@x.org",
                                             "password": "benchmark password", "role": "lender"})
                csrf = token.search(client.get("/deposit").text).group(1)  # type: ignore[union-attr]
                for _ in range(n):
                    response = client.post("/deposit", data={"csrf_token": csrf, "amount_sat": "1000"})
                    assert response.status_code == 303, response.text

        clients = 4
        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(lambda i: client_run(count // clients, i), range(clients)))
        elapsed = time.perf_counter() - start
        status = Path(f"/proc/{server.pid}/status").read_text()
        rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        return (count // clients) * clients / elapsed, rss
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
