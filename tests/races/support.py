"""A real `microlend serve` on a fresh database and the session's dev node, and many API clients at once.

One server per backend per test module (starting one costs a couple of
seconds); each race makes its own people and loans, so races never share a
balance. People are made through the services, their money arrives as real
deposits (an invoice of the marketplace node paid by the wallet node, credited
by the server's own payment listener), and every race is fought over HTTP.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio
import httpx
from sqlalchemy import Connection, func, select, update

from lightning.cln import ClnAdapter
from marketplace.db import ledger
from marketplace.db.engine import Database
from marketplace.db.tables import accounts, journal_entries, journal_lines, loans, notes
from marketplace.db.verify import verify_ledger
from marketplace.domain.journal import AccountKind
from marketplace.domain.loans.schedules import Frequency, Method
from marketplace.domain.loans.terms import LoanTerms
from marketplace.services import accounts as account_service
from marketplace.services import api_tokens
from marketplace.services import loans as loan_service
from marketplace.services.deposits import create_deposit_invoice
from marketplace.settings import Settings
from tests.crash.support import AppProcess, wait_for
from tests.fixtures.devnode import DevNode

PREFIX = "/api/v1"
PASSWORD = "a long enough race password"
SERVER_ENV = {
    "MICROLEND_LISTENER_WAIT_S": "1", "MICROLEND_RECONCILE_EVERY_S": "1", "MICROLEND_LEADER_POLL_S": "0.2",
    # The races drive auto-invest and aging themselves, at the moment they choose.
    "MICROLEND_AUTOINVEST_EVERY_S": "3600", "MICROLEND_AGING_EVERY_S": "3600",
    "MICROLEND_INVOICE_UNPAID_PER_ADDRESS": "10000", "MICROLEND_INVOICE_LIMIT_COUNT": "10000",
    "MICROLEND_SIGNUP_PER_ADDRESS": "10000",
}


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]

    @property
    def message(self) -> str:
        return str(self.body.get("error", {}).get("message", ""))

    @property
    def code(self) -> str:
        return str(self.body.get("error", {}).get("code", ""))


@dataclass
class RaceRig:
    database: Database
    settings: Settings
    app: AppProcess
    devnode: DevNode
    tokens: dict[int, str] = field(default_factory=dict)
    _made: int = 0

    @property
    def port(self) -> ClnAdapter:
        return self.devnode.adapter("marketplace")

    @property
    def wallet(self) -> ClnAdapter:
        return self.devnode.adapter("wallet")

    # --- people and money ------------------------------------------------------------------------------------

    def people(self, role: str, count: int) -> list[int]:
        """`count` new users of `role`, each with an API token."""
        made = []
        for _ in range(count):
            self._made += 1
            user_id = account_service.create_user(self.database, self.settings, f"racer{self._made}@race.test",
                                                  PASSWORD, role, f"Racer {self._made}")
            self.tokens[user_id] = api_tokens.create_token(self.database, user_id, "race bot").token
            made.append(user_id)
        return made

    def deposit(self, user_ids: Sequence[int], amount_msat: int) -> None:
        """A real deposit for each: the service makes the invoice, the wallet pays it, the server credits it."""
        before = {u: self.available(u) for u in user_ids}

        async def all_of_them() -> None:
            limiter = anyio.CapacityLimiter(8)

            async def one(user_id: int) -> None:
                async with limiter:
                    row = await create_deposit_invoice(self.database, self.port, self.settings, user_id, amount_msat)
                    assert row.bolt11 is not None
                    await self.wallet.pay(row.bolt11, None, 100_000, 30)

            async with anyio.create_task_group() as group:
                for user_id in user_ids:
                    group.start_soon(one, user_id)

        anyio.run(all_of_them)
        wait_for(lambda: all(self.available(u) == before[u] + amount_msat for u in user_ids), 30,
                 "the server crediting the deposits", self.app)

    def available(self, user_id: int) -> int:
        return self.balances(user_id)[AccountKind.USER_AVAILABLE]

    def balances(self, user_id: int) -> dict[AccountKind, int]:
        return self.database.read(lambda c: ledger.user_balances(c, user_id))

    def wallet_invoices(self, count: int, amount_msat: int) -> list[str]:
        async def make() -> list[str]:
            stamp = time.time_ns()
            return [(await self.wallet.create_invoice(amount_msat, f"race-{stamp}-{i}", "race", 600)).bolt11
                    for i in range(count)]

        return anyio.run(make)

    # --- loans ---------------------------------------------------------------------------------------------

    def loan(self, borrower_id: int, amount_sat: int) -> int:
        terms = LoanTerms(amount_sat * 1000, 1800, 4, Frequency.WEEKLY, Method.ANNUITY)
        return loan_service.request_loan(self.database, self.settings, borrower_id, terms, "farming",
                                         "Seeds and a water pump for the dry season.")

    def loan_row(self, loan_id: int) -> Any:
        return self.database.read(lambda c: c.execute(select(loans).where(loans.c.id == loan_id)).one())

    def notes_of(self, loan_id: int) -> list[Any]:
        return self.database.read(lambda c: list(c.execute(select(notes).where(notes.c.loan_id == loan_id)
                                                           .order_by(notes.c.id))))

    def move_deadline(self, loan_id: int, deadline: datetime) -> None:
        self.database.run(lambda c: c.execute(update(loans).where(loans.c.id == loan_id)
                                              .values(funding_deadline=deadline)))

    # --- HTTP ----------------------------------------------------------------------------------------------

    def at_once(self, calls: Sequence[tuple[int, str, str, dict[str, Any] | None]]) -> list[Answer]:
        """Every (user, method, path, body) sent at the same moment, each from its own client."""
        return asyncio.run(_at_once(self.app.base_url, self.tokens, calls))

    def call(self, user_id: int, method: str, path: str, body: dict[str, Any] | None = None) -> Answer:
        return self.at_once([(user_id, method, path, body)])[0]

    # --- the checks every race ends with -----------------------------------------------------------------

    def check_books(self) -> None:
        """Ledger verify clean, every entry balanced, every user balance non-negative, everything sums to zero."""
        report = self.database.read(verify_ledger)
        assert report.ok, report

        def sums(c: Connection) -> tuple[list[int], int, int]:
            per_entry = [int(s) for s in c.execute(select(func.sum(journal_lines.c.amount_msat))
                                                   .group_by(journal_lines.c.entry_id)).scalars()]
            negative = int(c.execute(select(func.count()).select_from(accounts).where(
                accounts.c.user_id.is_not(None), accounts.c.balance_msat < 0)).scalar_one())
            entries = int(c.execute(select(func.count()).select_from(journal_entries)).scalar_one())
            return per_entry, negative, entries

        per_entry, negative, entries = self.database.read(sums)
        assert len(per_entry) == entries and all(s == 0 for s in per_entry)
        assert negative == 0


async def _at_once(base_url: str, tokens: dict[int, str],
                   calls: Sequence[tuple[int, str, str, dict[str, Any] | None]]) -> list[Answer]:
    limits = httpx.Limits(max_connections=1)
    clients = [httpx.AsyncClient(base_url=base_url + PREFIX, timeout=120, limits=limits,
                                 headers={"Authorization": f"Bearer {tokens[user]}"}) for user, _, _, _ in calls]
    try:
        go = asyncio.Event()

        async def one(client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None) -> Answer:
            await go.wait()
            response = await client.request(method, path, json=body)
            return Answer(response.status_code, response.json())

        jobs = [asyncio.ensure_future(one(client, method, path, body))
                for client, (_, method, path, body) in zip(clients, calls)]
        go.set()
        return list(await asyncio.gather(*jobs))
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))


def assert_refusals(answers: Sequence[Answer], winners: Callable[[Answer], bool]) -> list[Answer]:
    """Every answer is a win or a clear refusal (409/422/429 with a message); never a 5xx. The losers."""
    losers = [a for a in answers if not winners(a)]
    for answer in losers:
        assert answer.status in (409, 422, 429), answer
        assert answer.code and len(answer.message) > 10, answer
    return losers


def start_server(tmp_path: Path, database_url: str, devnode: DevNode) -> AppProcess:
    app = AppProcess(tmp_path, database_url, devnode.rpc_path("marketplace"), name="race-app", env=SERVER_ENV)
    app.start()
    app.wait_ready(60)
    return app


def settings_for(tmp_path: Path, database_url: str, devnode: DevNode) -> Settings:
    return Settings(mode="embedded", data_dir=tmp_path / "data", devnode_dir=tmp_path / "data" / "devnode",
                    database_url=database_url, secret_key="race-test-secret", argon2_time_cost=1,
                    argon2_memory_kib=8192, signup_per_address=10_000, cln_rpc=devnode.rpc_path("marketplace"),
                    invoice_unpaid_per_address=10_000, invoice_limit_count=10_000)


def soon(seconds: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)
