"""`microlend demo`: a living marketplace made by the real services and paid through the dev node.

Lenders deposit by invoices the demo wallet pays; borrowers ask for loans;
lenders pledge notes; loans are disbursed to invoices of the demo wallet and
repaid by it. Time is the one thing faked: to show late, defaulted and
written-off loans, some loans' schedules are moved into the past after
disbursement, then the daily aging job runs as it would.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import anyio
from sqlalchemy import Connection, func, select, update

from lightning.cln import ClnAdapter
from marketplace.db import loans as loan_rows
from marketplace.db import migrate
from marketplace.db.engine import Database
from marketplace.db.tables import installments, loans, users
from marketplace.domain.loans.schedules import Frequency, Method
from marketplace.domain.loans.terms import LoanTerms
from marketplace.domain.autoinvest import Rules
from marketplace.services import autoinvest, deposits
from marketplace.services import loans as loan_service
from marketplace.services.accounts import create_user
from marketplace.services.lightning_calls import NodeFacts
from marketplace.settings import Settings
from marketplace.workers.listener import PaymentListener

PASSWORD = "demo-password"
DOMAIN = "demo.microlend.test"
STORIES = [
    ("business", "Restock my vegetable stall before the weekend market; I sell out every Saturday."),
    ("farming", "Seeds and fertiliser for two fields of maize; harvest in three months."),
    ("education", "School fees for my daughter's last term; I repay from my weekly wages."),
    ("transport", "A new tyre and a service for the motorbike I use for deliveries."),
    ("business", "A second-hand sewing machine for my tailoring shop to take more orders."),
    ("health", "Dental treatment that cannot wait; I am paid every Friday."),
    ("housing", "A new roof sheet before the rainy season starts."),
    ("business", "Flour and sugar in bulk for my bakery, cheaper than buying daily."),
    ("family", "Wedding costs for my brother; the family repays together."),
    ("business", "A solar panel to charge phones for customers at my kiosk."),
]


@dataclass(frozen=True)
class Plan:
    state: str
    amount_sat: int
    rate_bps: int
    count: int
    frequency: Frequency
    paid: int = 0  # installments to pay
    days_back: int = 0  # move the schedule this far into the past
    # After paying: move the schedule and the payments this far back, so what was paid was paid on time
    # and the next installment falls due in a day or two (a borrower with something to pay soon).
    shift_after: int = 0


# Open requests of every grade: a first request is graded by its amount and length (portfolio/pd.py).
FUNDING_TERMS = ((10, Frequency.WEEKLY), (30, Frequency.DAILY), (6, Frequency.MONTHLY), (12, Frequency.MONTHLY),
                 (18, Frequency.MONTHLY), (24, Frequency.MONTHLY), (36, Frequency.MONTHLY), (48, Frequency.MONTHLY))
PLANS = (
    [Plan("funding", 40_000 + 5_000 * (i % 8), 1500 + 300 * (i % 8), *FUNDING_TERMS[i % 8]) for i in range(12)]
    + [Plan("current", 30_000 + 10_000 * i, 2000 + 150 * i, 12, Frequency.WEEKLY, paid=1 + i % 3,
            shift_after=7 * (1 + i % 3) + 5) for i in range(8)]
    + [Plan("current-daily", 20_000, 1500, 30, Frequency.DAILY, paid=5, shift_after=5) for _ in range(2)]
    + [Plan("late", 50_000, 2400, 8, Frequency.WEEKLY, paid=1, days_back=7 * 1 + 25) for _ in range(4)]
    + [Plan("defaulted", 60_000, 3000, 6, Frequency.MONTHLY, paid=0, days_back=95) for _ in range(3)]
    + [Plan("written_off", 45_000, 3000, 4, Frequency.MONTHLY, paid=0, days_back=155) for _ in range(2)]
    + [Plan("repaid", 25_000 + 5_000 * i, 1200, 4, Frequency.WEEKLY, paid=4, shift_after=31) for i in range(5)]
    + [Plan("expired", 30_000, 2000, 6, Frequency.WEEKLY) for _ in range(2)]
)


def _has_users(database: Database) -> bool:
    return bool(database.read(lambda c: c.execute(select(func.count()).select_from(users)).scalar_one()))


def run_demo(settings: Settings, *, force: bool = False, quiet: bool = False) -> int:
    database = Database(settings.database_url)
    try:
        migrate.ensure_current(database.engine)
        if _has_users(database) and not force:
            print("microlend demo: the marketplace already has users; nothing added (use --force to add anyway)")
            return 0
        # A second demo (--force) gets its own addresses; the first gets the plain ones.
        suffix = f"-{int(time.time()) % 100000}" if _has_users(database) else ""
        return anyio.run(_demo, database, settings, quiet, suffix)
    finally:
        database.dispose()


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, flush=True)


async def _demo(database: Database, settings: Settings, quiet: bool, suffix: str) -> int:
    port = ClnAdapter(settings.cln_rpc_path)
    wallet = ClnAdapter(str(settings.devnode_dir / settings.demo_wallet_node / "lightning-rpc"))
    facts = NodeFacts(port)
    listener = PaymentListener(database, port)
    rng = random.Random(7)
    started = time.monotonic()

    def make(role: str, name: str) -> tuple[str, int]:
        email = f"{name}{suffix}@{DOMAIN}"
        return email, create_user(database, settings, email, PASSWORD, role, name.replace("-", " ").title())

    lenders = [make("lender", f"lender-{i + 1}") for i in range(12)]
    auto_lenders, hand_lenders = lenders[:4], lenders[4:]
    borrowers = [make("borrower", f"borrower-{i + 1}") for i in range(len(PLANS))]
    operator = make("operator", "operator")

    # Lenders deposit over Lightning: the demo wallet pays each invoice; the listener credits them.
    for _, lender_id in lenders:
        invoice = await deposits.create_deposit_invoice(database, port, settings, lender_id, 600_000_000)
        assert invoice.bolt11 is not None
        await wallet.pay(invoice.bolt11, None, 100_000, 30)
    await listener.drain()
    _say(quiet, f"demo: {len(lenders)} lenders deposited 600,000 sat each over Lightning")
    for index, (_, lender_id) in enumerate(auto_lenders):
        autoinvest.save_rules(database, settings, lender_id, Rules(
            enabled=True, budget_msat=150_000_000 + 50_000_000 * index, note_msat=(2 + index) * 1_000_000,
            max_per_loan_msat=10_000_000, max_per_loan_bps=500, max_per_borrower_msat=10_000_000,
            grades=frozenset("ABCDE"), max_term_days=1500, max_expected_loss_bps=1000 + 500 * index))

    counts: dict[str, int] = {}
    for index, (plan, (_, borrower_id)) in enumerate(zip(PLANS, borrowers)):
        purpose, story = STORIES[index % len(STORIES)]
        terms = LoanTerms(plan.amount_sat * 1000, plan.rate_bps, plan.count, plan.frequency, Method.ANNUITY)
        now = datetime.now(timezone.utc)
        created = now - timedelta(days=settings.funding_days + 1) if plan.state == "expired" else now
        loan_id = loan_service.request_loan(database, settings, borrower_id, terms, purpose, story, now=created)
        counts[plan.state] = counts.get(plan.state, 0) + 1
        share = 0.4 if plan.state in ("funding", "expired") else 1.0
        await _fund(database, settings, hand_lenders, loan_id, int(plan.amount_sat * share), rng, created)
        if plan.state in ("funding", "expired"):
            continue
        principal = await wallet.create_invoice(plan.amount_sat * 1000, f"demo-principal-{time.time_ns()}-{loan_id}",
                                                f"Loan {loan_id} principal", 3600)
        outcome = await loan_service.disburse(database, port, facts, settings, borrower_id, loan_id,
                                              principal.bolt11)
        if outcome.status != "succeeded":
            raise RuntimeError(f"demo disbursement failed: {outcome.error}")
        if plan.days_back:
            database.run(lambda c: _move_into_past(c, loan_id, plan.days_back))
        await _repay(database, port, wallet, settings, borrower_id, loan_id, plan, listener)
        if plan.shift_after:
            database.run(lambda c: _move_into_past(c, loan_id, plan.shift_after, settled_too=True))

    expired = loan_service.expire_requests(database)
    report = loan_service.age_loans(database, settings)
    run = await anyio.to_thread.run_sync(autoinvest.run_autoinvest, database, settings)
    _say(quiet, f"demo: auto-invest bought {run.bought} notes for {len(auto_lenders)} lenders "
                f"({', '.join(email for email, _ in auto_lenders)})")
    elapsed = time.monotonic() - started
    _say(quiet, f"demo: {sum(counts.values())} loans ({', '.join(f'{v} {k}' for k, v in counts.items())}); "
                f"{expired} request(s) expired; aging changed {report.changed} loan(s); {elapsed:.1f} s")
    _say(quiet, "demo accounts (password for all: " + PASSWORD + "):")
    _say(quiet, f"  operator:  {operator[0]}")
    _say(quiet, f"  lenders:   {lenders[0][0]} … {lenders[-1][0]}")
    _say(quiet, f"  borrowers: {borrowers[0][0]} … {borrowers[-1][0]}")
    return 0


async def _fund(database: Database, settings: Settings, lenders: list[tuple[str, int]], loan_id: int,
                amount_sat: int, rng: random.Random, now: datetime) -> None:
    left = amount_sat
    order = lenders[:]
    rng.shuffle(order)
    for _, lender_id in order:
        if left <= 0:
            break
        note = min(left, rng.choice([2_000, 5_000, 10_000, 15_000]))
        if 0 < left - note < settings.note_min_sat:
            note = left
        await anyio.to_thread.run_sync(
            lambda: loan_service.pledge(database, settings, lender_id, loan_id, note * 1000, now=now))
        left -= note
    while left > 0:  # every lender pledged once; the first tops it up
        note = left
        await anyio.to_thread.run_sync(
            lambda: loan_service.pledge(database, settings, order[0][1], loan_id, note * 1000, now=now))
        left -= note


def _move_into_past(conn: Connection, loan_id: int, days: int, settled_too: bool = False) -> None:
    """Demo only: as if the loan had been disbursed `days` ago (and, `settled_too`, paid then as well)."""
    shift = timedelta(days=days)
    loan = loan_rows.get_loan(conn, loan_id)
    assert loan.start_date is not None
    assert loan.accrued_on is not None
    conn.execute(update(loans).where(loans.c.id == loan_id).values(start_date=loan.start_date - shift,
                                                                   accrued_on=loan.accrued_on - shift))
    for row in conn.execute(select(installments.c.id, installments.c.due_date, installments.c.settled_on)
                            .where(installments.c.loan_id == loan_id)).all():
        values = {"due_date": row.due_date - shift}
        if settled_too and row.settled_on is not None:
            values["settled_on"] = row.settled_on - shift
        conn.execute(update(installments).where(installments.c.id == row.id).values(**values))


async def _repay(database: Database, port: ClnAdapter, wallet: ClnAdapter, settings: Settings, borrower_id: int,
                 loan_id: int, plan: Plan, listener: PaymentListener) -> None:
    for number in range(plan.paid):
        state = database.read(lambda c: loan_rows.loan_state(c, loan_rows.get_loan(c, loan_id)))
        today = datetime.now(timezone.utc).date()
        last = plan.state == "repaid" and number == plan.paid - 1
        amount = state.payoff_msat(today) if last else None
        if plan.state == "late":  # one installment's worth: the later ones stay overdue
            amount = state.installments[number].due_msat
        invoice = await loan_service.repayment_invoice(database, port, settings, borrower_id, loan_id, amount)
        assert invoice.bolt11 is not None
        await wallet.pay(invoice.bolt11, None, 100_000, 30)
        await listener.drain()
