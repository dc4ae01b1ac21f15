"""A market of 10,000 open requests under load: p50/p99 latency and throughput per route.

Run by hand:
    .venv/bin/python -m bench.market_load [--database-url postgresql://...] [--workers 1] [--clients 50]
                                          [--seconds 10] [--loans 10000] [--lenders 1000] [--notes 100000]

Seeds (in bulk, through the db layer and the ledger, not the demo): lenders
with deposits, 10,000 open requests from as many borrowers, 100,000 pledged
notes, one lender holding 2,000 of them (each its own pledge entry, so their
statement is long). Then starts a real `microlend serve` (with `--workers N`)
and a dev node, signs one client in per simulated user, and for each route
runs `--clients` concurrent clients for `--seconds` (asyncio + httpx):
the market list (filters and sorts varying per request), a loan page,
/portfolio and /statement for the 2,000-note lender, and deposit invoice
creation. Prints one row per route. The baseline in the same run is one
client alone on the same route (its throughput and latency), so the ratio
shows what concurrency costs whatever the machine is doing.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from argon2 import PasswordHasher, Type
from sqlalchemy import Connection, insert, select, update

from bench.common import REPO, BenchNode, fresh_database, scratch_dir
from marketplace.db import ledger
from marketplace.db.engine import Database
from marketplace.db.tables import accounts, loans, notes, users
from marketplace.domain.journal import AccountKind, EntryDraft, LineDraft

PASSWORD = "bench password 1"
PURPOSES = ("business", "farming", "education", "health", "transport")
FREQUENCIES = (("weekly", 10, 52), ("daily", 60, 365), ("monthly", 6, 12))


def seed(database: Database, n_loans: int, n_lenders: int, n_notes: int, heavy_notes: int) -> tuple[str, list[int]]:
    """Returns the heavy lender's email and the open loan ids."""
    rng = random.Random(11)
    hashed = PasswordHasher(time_cost=1, memory_cost=8192, type=Type.ID).hash(PASSWORD)
    now = datetime.now(timezone.utc)

    def people(conn: Connection) -> tuple[list[int], list[int]]:
        rows = ([{"email": f"lender{i}@bench.test", "password_hash": hashed, "role": "lender",
                  "display_name": f"Lender {i}", "created_at": now} for i in range(n_lenders)]
                + [{"email": f"borrower{i}@bench.test", "password_hash": hashed, "role": "borrower",
                    "display_name": f"Borrower {i}", "created_at": now} for i in range(n_loans)])
        conn.execute(insert(users), rows)
        ids = {r.email: int(r.id) for r in conn.execute(select(users.c.id, users.c.email))}
        lender_ids = [ids[f"lender{i}@bench.test"] for i in range(n_lenders)]
        borrower_ids = [ids[f"borrower{i}@bench.test"] for i in range(n_loans)]
        acct_rows = []
        for user_id in lender_ids + borrower_ids:
            for kind in (AccountKind.USER_AVAILABLE, AccountKind.USER_RESERVED, AccountKind.USER_PENDING_OUT):
                acct_rows.append({"code": ledger.user_account_code(user_id, kind), "kind": kind.value,
                                  "user_id": user_id, "normal_side": kind.normal_side.value,
                                  "non_negative": kind.non_negative, "balance_msat": 0, "created_at": now})
        acct_rows += [{"code": f"loan:bench{j}:escrow", "kind": AccountKind.LOAN_ESCROW.value, "user_id": None,
                       "normal_side": AccountKind.LOAN_ESCROW.normal_side.value, "non_negative": True,
                       "balance_msat": 0, "created_at": now} for j in range(n_loans)]
        conn.execute(insert(accounts), acct_rows)
        return lender_ids, borrower_ids

    lender_ids, borrower_ids = database.run(people)
    escrow = database.read(lambda c: {str(code): int(i) for code, i in c.execute(
        select(accounts.c.code, accounts.c.id).where(accounts.c.code.like("loan:bench%")))})

    def requests(conn: Connection) -> list[int]:
        rows = []
        for j, borrower in enumerate(borrower_ids):
            frequency, count, _ = rng.choice(FREQUENCIES)
            grade = rng.choice("ABCDE")
            rows.append({
                "borrower_id": borrower, "amount_msat": rng.randint(20, 100) * 1_000_000,
                "purpose": rng.choice(PURPOSES), "story": "A benchmark request, repaid in small steps.",
                "annual_rate_bps": rng.randint(800, 5000), "term_count": count, "frequency": frequency,
                "method": "annuity", "prepayment": "reduce_term", "apr_bps": 2000, "aprc_bps": 2190,
                "service_fee_bps": 1000, "grade": grade, "origination_grade": grade,
                "pd_ppm": rng.randint(5_000, 200_000), "origination_pd_ppm": 50_000, "status": "funding",
                "delinquency": "current", "funded_msat": 0, "escrow_account_id": escrow[f"loan:bench{j}:escrow"],
                "funding_deadline": now + timedelta(days=rng.randint(1, 14), minutes=rng.randint(0, 1440)),
                "created_at": now - timedelta(minutes=rng.randint(0, 20_000))})
        conn.execute(insert(loans), rows)
        return [int(i) for i in conn.execute(select(loans.c.id).order_by(loans.c.id)).scalars()]

    loan_ids = database.run(requests)
    heavy = lender_ids[0]
    pledged: dict[int, int] = {}
    funded: dict[int, int] = {}
    note_rows = []
    for k in range(n_notes):
        lender = heavy if k < heavy_notes else rng.choice(lender_ids[1:])
        loan = loan_ids[k % len(loan_ids)] if k < heavy_notes else rng.choice(loan_ids)
        amount = 1_000_000
        note_rows.append({"loan_id": loan, "lender_id": lender, "amount_msat": amount,
                          "principal_outstanding_msat": amount, "share_weight_msat": amount, "status": "pledged",
                          "created_at": now})
        pledged[lender] = pledged.get(lender, 0) + amount
        funded[loan] = funded.get(loan, 0) + amount
    database.run(lambda c: c.execute(insert(notes), note_rows))

    def books(conn: Connection) -> None:
        node = ledger.account_id(conn, "system:node_asset")
        ids = ledger.user_account_ids(conn, lender_ids, AccountKind.USER_AVAILABLE)
        reserved = ledger.user_account_ids(conn, lender_ids, AccountKind.USER_RESERVED)
        drafts = []
        for lender in lender_ids:
            total = pledged.get(lender, 0)
            drafts.append(EntryDraft("deposit", (LineDraft(node, total + 50_000_000),
                                                 LineDraft(ids[lender], -(total + 50_000_000)))))
            if lender == heavy:  # one entry per note: a long statement
                drafts += [EntryDraft("pledge", (LineDraft(ids[lender], 1_000_000),
                                                 LineDraft(reserved[lender], -1_000_000)))
                           for _ in range(total // 1_000_000)]
            elif total:
                drafts.append(EntryDraft("pledge", (LineDraft(ids[lender], total), LineDraft(reserved[lender], -total))))
        for start in range(0, len(drafts), 500):
            ledger.post(conn, drafts[start:start + 500])
        for loan, amount in funded.items():
            conn.execute(update(loans).where(loans.c.id == loan).values(
                funded_msat=loans.c.funded_msat + amount,
                amount_msat=select(loans.c.amount_msat).where(loans.c.id == loan).scalar_subquery()
                + (amount if amount >= 20_000_000 else 0)))

    database.run(books)
    if database.engine.dialect.name == "postgresql":
        # A bulk load leaves the planner no statistics until autovacuum comes by (a minute or so on a live
        # server); without them it guesses 16 open requests and sorts them all instead of walking an index.
        with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    return "lender0@bench.test", loan_ids


def start_server(url: str, root: Path, node: BenchNode, workers: int, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICROLEND_")}
    env.update({"MICROLEND_DATABASE_URL": url, "MICROLEND_DATA_DIR": str(root), "MICROLEND_SECRET_KEY": "bench",
                "MICROLEND_CLN_RPC": node.rpc("marketplace"), "MICROLEND_INVOICE_LIMIT_COUNT": "1000000000",
                "MICROLEND_DEVNODE_DIR": str(node.dir)})
    for name in ("MICROLEND_SIGNUP_PER_ADDRESS", "MICROLEND_INVOICE_UNPAID_PER_ADDRESS", "MICROLEND_INVOICE_UNPAID_TOTAL"):
        env[name] = "1000000000"  # hardening limits, if this version has them: the load is one address
    log = (root / "serve.log").open("ab")
    # Started through -c: on a shared machine, other runs stop their own servers by their command line.
    process = subprocess.Popen([sys.executable, "-c", "import sys; from marketplace.cli import main; sys.exit(main())",
                                "serve", "--port", str(port),
                                "--workers", str(workers)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240  # N workers each importing the app on a busy machine
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.terminate()  # uvicorn's supervisor stops its workers on SIGTERM, not on SIGKILL
    process.wait(30)
    raise RuntimeError("the server did not start; see serve.log")


_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


async def signed_in(base: str, email: str) -> httpx.AsyncClient:
    # Idle connections dropped before uvicorn's 5 s keep-alive closes them under us (while a client sits
    # out another route's run), so no request goes out on a socket the server is closing.
    client = httpx.AsyncClient(base_url=base, timeout=60, follow_redirects=False,
                               limits=httpx.Limits(keepalive_expiry=2))
    page = await client.get("/signin")
    token = _CSRF.search(page.text)
    assert token is not None
    answer = await client.post("/signin", data={"csrf_token": token.group(1), "email": email, "password": PASSWORD})
    assert answer.status_code == 303, answer.text
    return client


def market_query(rng: random.Random) -> str:
    params = [f"sort={rng.choice(['newest', 'rate', 'time_left', 'funded'])}",
              f"dir={rng.choice(['asc', 'desc'])}", f"page={rng.randint(1, 20)}"]
    if rng.random() < 0.5:
        params += [f"grade={g}" for g in rng.sample("ABCDE", rng.randint(1, 3))]
    if rng.random() < 0.3:
        params.append(f"purpose={rng.choice(PURPOSES)}")
    if rng.random() < 0.3:
        params.append(f"rate_min={rng.randint(5, 20)}")
    return "/loans/market?" + "&".join(params)


async def run_route(clients: list[httpx.AsyncClient], make: object, seconds: float) -> tuple[list[float], int]:
    """Each client loops for `seconds`: (latencies, errors)."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def loop(client: httpx.AsyncClient, rng: random.Random) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            method, path, data = make(rng, client)  # type: ignore[operator]
            started = time.perf_counter()
            try:
                answer = await (client.get(path) if method == "GET" else client.post(path, data=data))
            except httpx.RemoteProtocolError:
                # A kept-alive connection the server closed while this client sat out the "alone" run
                # (uvicorn's keep-alive is 5 s): ask again on a fresh one, timed from the new start.
                started = time.perf_counter()
                answer = await (client.get(path) if method == "GET" else client.post(path, data=data))
            latencies.append(time.perf_counter() - started)
            if answer.status_code >= 400:
                errors += 1

    await asyncio.gather(*(loop(c, random.Random(i)) for i, c in enumerate(clients)))
    return latencies, errors


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def load(base: str, heavy: str, loan_ids: list[int], n_clients: int, seconds: float) -> None:
    lenders = [await signed_in(base, f"lender{i}@bench.test") for i in range(1, n_clients + 1)]
    heavy_clients = [await signed_in(base, heavy) for _ in range(n_clients)]
    tokens: dict[int, str] = {}
    for client in lenders:
        found = _CSRF.search((await client.get("/deposit")).text)
        assert found is not None
        tokens[id(client)] = found.group(1)
    routes = {
        # The raw limit of this stack on this machine: the smallest answer, through every middleware.
        "baseline: /favicon.ico": (lenders, lambda rng, c: ("GET", "/favicon.ico", None)),
        "market list, first page": (lenders, lambda rng, c: ("GET", "/loans/market", None)),
        "market list": (lenders, lambda rng, c: ("GET", market_query(rng), None)),
        "loan page": (lenders, lambda rng, c: ("GET", f"/loans/{rng.choice(loan_ids)}", None)),
        "portfolio (2,000 notes)": (heavy_clients, lambda rng, c: ("GET", "/portfolio", None)),
        "statement (2,000 notes)": (heavy_clients, lambda rng, c: ("GET", f"/statement?page={rng.randint(1, 20)}",
                                                                      None)),
        # A deposit invoice: a real BOLT11 from the dev node over its socket, and its row.
        "invoice creation": (lenders, lambda rng, c: ("POST", "/deposit", {
            "csrf_token": tokens[id(c)], "amount_sat": str(rng.randint(1_000, 50_000))})),
    }
    print(f"{'route':26} {'clients':>7} {'requests':>8} {'per s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}"
          f" {'of limit':>8} | alone: {'per s':>6} {'p50 ms':>7}", flush=True)
    limit = 0.0
    for name, (pool, make) in routes.items():
        alone, _ = await run_route(pool[:1], make, min(seconds, 3))
        many, errors = await run_route(pool, make, seconds)
        rate = len(many) / seconds
        limit = limit or rate
        print(f"{name:26} {len(pool):7} {len(many):8} {rate:8.0f} {pct(many, .5) * 1e3:8.1f} "
              f"{pct(many, .99) * 1e3:8.1f} {errors:6} {rate / limit:8.2f} | {len(alone) / min(seconds, 3):12.0f} "
              f"{pct(alone, .5) * 1e3:7.1f}", flush=True)
    for client in lenders + heavy_clients:
        await client.aclose()


def memory_of(pid: int) -> str:
    """The server's resident memory by process: the supervisor, its workers, and helpers (multiprocessing's
    resource tracker) apart."""
    found = subprocess.run(["ps", "-o", "pid=,rss=,args=", "--ppid", str(pid), "-p", str(pid)],
                           capture_output=True, text=True).stdout.splitlines()
    parts: dict[str, list[str]] = {"supervisor": [], "workers": [], "helpers": []}
    for line in found:
        child, rss, command = line.split(None, 2)
        kind = ("supervisor" if int(child) == pid else "helpers" if "resource_tracker" in command else "workers")
        parts[kind].append(f"{int(rss) // 1024} MiB")
    return "; ".join(f"{kind} {', '.join(sizes)}" for kind, sizes in parts.items() if sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--loans", type=int, default=10_000)
    parser.add_argument("--lenders", type=int, default=1_000)
    parser.add_argument("--notes", type=int, default=100_000)
    parser.add_argument("--port", type=int, default=8791)
    args = parser.parse_args()
    root = scratch_dir()
    node = BenchNode(root)
    try:
        database = fresh_database(root, args.database_url)
        started = time.perf_counter()
        heavy, loan_ids = seed(database, args.loans, args.lenders, args.notes, 2_000)
    except BaseException:
        node.stop()
        raise
    print(f"seeded {args.loans:,} requests, {args.notes:,} notes, {args.lenders:,} lenders in "
          f"{time.perf_counter() - started:.1f} s ({database.engine.dialect.name})", flush=True)
    url = database.url
    database.dispose()
    server = start_server(url, root, node, args.workers, args.port)
    try:
        asyncio.run(load(f"http://127.0.0.1:{args.port}", heavy, loan_ids, args.clients, args.seconds))
        print(f"resident memory after the run: {memory_of(server.pid)}", flush=True)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        node.stop()


if __name__ == "__main__":
    main()
