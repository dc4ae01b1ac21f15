"""The service layer as a state machine (issue 12, part 3), with a plain model of every user's money beside it.

Each rule calls the service function a web handler calls (sign-up, deposit
invoices, pledges, disbursement, repayment invoices, the aging job,
withdrawals, auto-invest) on a freshly reset, migrated database and the real
dev node: deposits and repayments are real invoices of the marketplace node
paid by the wallet node and credited through the listener's own path (its
sweep), and withdrawals and disbursements are real payments to wallet-node
invoices.

The model knows only the rules a person can read (what a note may be, what a
withdrawal costs, that a pledge reserves money and a disbursement spends it);
it predicts whether a pledge must be accepted and what every balance is. Time
moves by shifting every date of the loans a day (or several) into the past and
running the daily aging job: a day passes for the loans exactly as on a moved
clock. Delinquency is shortened (grace 2 days, default at 6, write-off at 12) so
defaults and write-offs happen within a short sequence.

Deep states are common, not lucky: each sequence starts (its one @initialize
step, through the same services and model checks as the rules) at a drawn
depth — a listed request, a request fully pledged by several lenders, or a
loan already disbursed with several notes — so disbursements, repayments of a
running loan, defaults, write-offs and repayments of written-off loans happen
in a good share of sequences; time passes by a day (`age_a_day`) or by larger
steps (`age`), and auto-invest is given budgets that can buy.

After every step: every entry balanced, all balances sum to zero, user
balances non-negative, the hash chain valid (`ledger verify`), every loan's
installments and notes consistent with its repayments, and the model's
balances equal to the ledger's.

Used by tests/statemachine/test_service_state_machine.py (CI size) and
bench/state_machine.py (thousands of sequences).
"""
from __future__ import annotations

import itertools
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import anyio
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import Connection, MetaData, Table, delete, func, insert, select, text, update
from sqlalchemy.exc import SAWarning

from lightning.cln import ClnAdapter
from marketplace.db.engine import Database
from marketplace.db.tables import (
    accounts,
    autoinvest_orders,
    installments,
    journal_entries,
    journal_lines,
    loans,
    notes,
    repayments,
)
from marketplace.db.verify import verify_ledger
from marketplace.domain.autoinvest import Rules
from marketplace.domain.errors import Refusal
from marketplace.domain.journal import AccountKind, NormalSide
from marketplace.domain.loans.schedules import Frequency, Method
from marketplace.domain.loans.terms import LoanTerms
from marketplace.domain.payments import fee_reserve_msat
from marketplace.services import accounts as account_service
from marketplace.services import autoinvest
from marketplace.services import loans as loan_service
from marketplace.services.deposits import create_deposit_invoice
from marketplace.services.lightning_calls import NodeFacts
from marketplace.services.withdrawals import withdraw
from marketplace.settings import Settings
from marketplace.payments import locks as payment_locks_module
from marketplace.workers.listener import PaymentListener

SAT = 1000
NOTE_MIN_SAT = 1_000
LOAN_DATE_COLUMNS = ("funding_deadline", "funded_at", "disbursed_at", "start_date", "defaulted_on", "closed_on",
                     "disburse_by", "accrued_on")
USER_KINDS = (AccountKind.USER_AVAILABLE.value, AccountKind.USER_RESERVED.value, AccountKind.USER_PENDING_OUT.value)
MAX_USERS = 8
_labels = itertools.count()


class Templates(Protocol):
    def new_url(self) -> str: ...

    def drop(self, url: str) -> None: ...


class Sandbox:
    """One database for all of a world's sequences, put back to its freshly migrated state before each one.

    A new database per sequence cost about 0.65 s on PostgreSQL (CREATE DATABASE ... TEMPLATE, then DROP
    DATABASE, which forces a checkpoint on a server the test suite shares) and a new engine and pool on
    both. The reset empties every table in one transaction (foreign keys deferred on SQLite, the
    replication role on PostgreSQL, so the order does not matter), puts back the rows the migrations left
    (the system accounts, the chain head, the listener's and the market's state rows) and every sequence
    where it stood. It proves itself each time: every table then holds exactly as many rows as after the
    migrations, and `ledger verify` after the first step checks the chain from entry 1 again.
    """

    def __init__(self, templates: Templates) -> None:
        self.templates = templates
        self.url = templates.new_url()
        self.database = Database(self.url)
        meta = MetaData()
        with warnings.catch_warnings():  # "skipped unsupported reflection of expression-based index": not needed
            warnings.simplefilter("ignore", SAWarning)
            meta.reflect(self.database.engine)
        # alembic_version is the schema's, not the data's: left as it is.
        self.tables: list[Table] = [t for name, t in sorted(meta.tables.items()) if name != "alembic_version"]
        self.is_sqlite = self.database.is_sqlite

        def snapshot(conn: Connection) -> tuple[dict[str, list[dict[str, Any]]], list[tuple[Any, ...]]]:
            rows = {t.name: [dict(r._mapping) for r in conn.execute(select(t))] for t in self.tables}
            if self.is_sqlite:
                has_seq = conn.execute(text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_sequence'"))
                counters = ([tuple(r) for r in conn.execute(text("SELECT name, seq FROM sqlite_sequence"))]
                            if has_seq.scalar_one() else [])
            else:
                counters = [tuple(r) for r in conn.execute(text(
                    "SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename), "
                    "coalesce(last_value, start_value), last_value IS NOT NULL FROM pg_sequences"))]
            return rows, counters

        self.seed, self.counters = self.database.read(snapshot)
        self.seed_counts = {name: len(rows) for name, rows in self.seed.items()}

    def reset(self) -> Database:
        def work(conn: Connection) -> None:
            if self.is_sqlite:
                conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")  # off again at the commit
            else:
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            for table in self.tables:
                conn.execute(delete(table))
            for table in self.tables:
                if self.seed[table.name]:
                    conn.execute(insert(table), self.seed[table.name])
            if self.is_sqlite:
                if self.counters:
                    conn.exec_driver_sql("DELETE FROM sqlite_sequence")
                    for name, seq in self.counters:
                        conn.execute(text("INSERT INTO sqlite_sequence (name, seq) VALUES (:n, :s)"),
                                     {"n": name, "s": seq})
            elif self.counters:
                conn.execute(text("SELECT " + ", ".join(
                    f"setval(:n{i}, :v{i}, :c{i})" for i in range(len(self.counters)))),
                    {k: v for i, (n, value, called) in enumerate(self.counters)
                     for k, v in ((f"n{i}", n), (f"v{i}", value), (f"c{i}", called))})
            counted = conn.execute(text("SELECT " + ", ".join(
                f'(SELECT count(*) FROM "{t.name}")' for t in self.tables))).one()
            found = {t.name: int(n) for t, n in zip(self.tables, counted)}
            assert found == self.seed_counts, f"the reset left {found}, not {self.seed_counts}"

        self.database.run(work)
        return self.database

    def close(self) -> None:
        locks = payment_locks_module._BY_URL.pop(self.database.url, None)
        if locks is not None:
            locks._close_backends()
        self.database.dispose()
        self.templates.drop(self.url)


@dataclass
class World:
    """What every sequence shares: a database, the dev node's two sockets, the settings and a tally."""

    templates: Templates
    marketplace_rpc: str
    wallet_rpc: str
    data_dir: Path
    sequences: int = 0
    steps: int = 0
    seconds_in_steps: float = 0.0
    happened: Counter[str] = field(default_factory=Counter)  # how often each thing happened: coverage, not a check
    reached: Counter[str] = field(default_factory=Counter)  # in how many sequences each thing happened
    sandbox: Sandbox | None = None

    def settings(self, database_url: str) -> Settings:
        # Cheap password hashing (argon2id at 64 KiB): sign-ups are steps here, not what is tested.
        return Settings(
            mode="embedded", data_dir=self.data_dir, devnode_dir=self.data_dir / "devnode",
            database_url=database_url, secret_key="state-machine-secret", argon2_time_cost=1,
            argon2_memory_kib=64, signup_per_address=1_000_000, cln_rpc=self.marketplace_rpc,
            invoice_limit_count=1_000_000, invoice_unpaid_per_address=1_000_000,
            grace_days=2, default_after_days=6, write_off_after_days=12, funding_days=10, disbursement_days=3)

    def fresh_database(self) -> Database:
        """The world's database, as the migrations left it."""
        if self.sandbox is None:
            self.sandbox = Sandbox(self.templates)
        return self.sandbox.reset()

    def close(self) -> None:
        if self.sandbox is not None:
            self.sandbox.close()
            self.sandbox = None


# The world the machine runs in; set by the test module or the bench before running it.
WORLD: World | None = None


@dataclass
class ModelNote:
    lender: int
    loan: int
    amount: int
    status: str  # pledged, active (or later), released


@dataclass
class ModelLoan:
    borrower: int
    amount: int
    status: str = "funding"
    delinquency: str = "current"
    notes: list[int] = field(default_factory=list)
    days_aged: int = 0  # the funding deadline is `funding_days` after the request

    def funded(self, model_notes: dict[int, ModelNote]) -> int:
        return sum(model_notes[n].amount for n in self.notes if model_notes[n].status != "released")


class ServiceMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        assert WORLD is not None, "set machine.WORLD first"
        self.world = WORLD
        self.database = self.world.fresh_database()
        self.settings = self.world.settings(self.database.url)
        self.port = ClnAdapter(self.world.marketplace_rpc)
        self.wallet = ClnAdapter(self.world.wallet_rpc)
        self.facts = NodeFacts(self.port)
        self.listener = PaymentListener(self.database, self.port)
        self.available: dict[int, int] = {}
        self.reserved: dict[int, int] = {}
        self.roles: dict[int, str] = {}
        self.notes: dict[int, ModelNote] = {}
        self.loans: dict[int, ModelLoan] = {}
        self.seen: set[str] = set()
        self.robots: set[int] = set()  # lenders who saved auto-invest rules
        self.net_in = 0  # what came from the wallet node into the marketplace's node, less what went back
        self.world.sequences += 1

    def teardown(self) -> None:
        for what in self.seen:
            self.world.reached[what] += 1
        # The dev node keeps channel balances: give the wallet back what this sequence took, or a long run
        # drains it and every later payment fails for want of a route.
        if self.net_in > 0:
            try:
                anyio.run(self.port.pay, self._wallet_invoice(self.net_in), None, 100_000, 30)
            except Exception:  # a refill that fails must not hide the sequence's own outcome
                pass

    # --- helpers ----------------------------------------------------------------------------------------------

    def _happen(self, what: str, times: int = 1) -> None:
        if times > 0:
            self.world.happened[what] += times
            self.seen.add(what)

    def _step(self, work: Callable[[], Any]) -> Any:
        started = time.monotonic()
        try:
            return work()
        finally:
            self.world.steps += 1
            self.world.seconds_in_steps += time.monotonic() - started

    def _reserve(self, amount_msat: int) -> int:
        return fee_reserve_msat(amount_msat, self.settings.fee_reserve_ppm, self.settings.fee_reserve_min_msat)

    def _users(self, role: str) -> list[int]:
        return sorted(u for u, r in self.roles.items() if r == role)

    def _pay_from_wallet(self, bolt11: str) -> None:
        anyio.run(self.wallet.pay, bolt11, None, 100_000, 30)

    def _wallet_invoice(self, amount_msat: int) -> str:
        made = anyio.run(self.wallet.create_invoice, amount_msat, f"sm-{time.time_ns()}-{next(_labels)}", "sm", 600)
        return str(made.bolt11)

    def _credit_by_sweep(self) -> int:
        return int(anyio.run(self.listener.sweep))

    def _loan_status(self, loan_id: int) -> str:
        return str(self.database.read(lambda c: c.execute(select(loans.c.status)
                                                          .where(loans.c.id == loan_id)).scalar_one()))

    def _sync_loan_statuses(self) -> None:
        """Loans the aging job closed give their pledges back; the model moves that money itself."""
        found = {int(r.id): (str(r.status), str(r.delinquency)) for r in self.database.read(
            lambda c: c.execute(select(loans.c.id, loans.c.status, loans.c.delinquency)).all())}
        for loan_id, model in self.loans.items():
            status, delinquency = found[loan_id]
            if status in ("expired", "lapsed") and model.status in ("funding", "funded"):
                for note_id in model.notes:
                    note = self.notes[note_id]
                    if note.status == "pledged":
                        note.status = "released"
                        self.reserved[note.lender] -= note.amount
                        self.available[note.lender] += note.amount
            if status != model.status:
                self._happen(f"aged to {status}")
            if delinquency != model.delinquency:
                self._happen(f"became {delinquency}")
            model.status, model.delinquency = status, delinquency

    # --- the start: a drawn depth -----------------------------------------------------------------------------

    @initialize(depth=st.sampled_from(["disbursed", "funded", "requested", "disbursed"]),
                lenders=st.integers(2, 4), deposit_sat=st.sampled_from([16_000, 20_000, 50_000]),
                loan_sat=st.sampled_from([10_000, 12_000, 20_000, 30_000]), count=st.integers(1, 4),
                frequency=st.sampled_from([Frequency.DAILY, Frequency.WEEKLY]), robots=st.integers(0, 2))
    def start(self, depth: str, lenders: int, deposit_sat: int, loan_sat: int, count: int,
              frequency: Frequency, robots: int) -> None:
        """Lenders with money (up to two of them with auto-invest rules) and a borrower with a request; at
        depth "funded" the lenders pledge all of it between them (a note each) and a second borrower lists a
        request of their own, at "disbursed" the first borrower is paid too: every later rule has something
        to work on from the first step."""
        for _ in range(lenders):
            self.sign_up("lender")
        for lender in self._users("lender"):
            self._deposit(lender, deposit_sat)
        for lender in self._users("lender")[len(self._users("lender")) - robots:]:
            self._save_rules(lender, 0, True, 1)  # the last `robots` lenders let auto-invest use all they have
        loan_id = self._request_loan(loan_sat, count, frequency)
        if loan_id is None or depth == "requested":
            return
        holders = self._users("lender")
        share = loan_sat // len(holders) * SAT
        for i, lender in enumerate(holders):
            amount = share if i < len(holders) - 1 else loan_sat * SAT - share * (len(holders) - 1)
            assert self._pledge(lender, loan_id, amount), "a pledge of an even share was refused"
        assert self.loans[loan_id].status == "funded"
        if depth == "disbursed":
            self._disburse(loan_id)
        # Open for hand pledges, withdrawn pledges, auto-invest and expiry, with one note in it already.
        second = self._request_loan(12_000, 2, Frequency.WEEKLY)
        if second is not None:
            self._pledge(holders[0], second, 2_000 * SAT)

    # --- rules ------------------------------------------------------------------------------------------------

    @precondition(lambda self: len(self.roles) < MAX_USERS)
    @rule(role=st.sampled_from(["lender", "lender", "borrower"]))
    def sign_up(self, role: str) -> None:
        n = len(self.roles) + 1
        signed = self._step(lambda: account_service.sign_up(
            self.database, self.settings, f"person{n}@machine.test", "a long enough machine password", role,
            f"Person {n}", "127.0.0.1"))
        user_id = signed.user.id
        self.roles[user_id] = role
        self.available[user_id] = 0
        self.reserved[user_id] = 0
        self._happen("sign up")

    @rule(data=st.data(), amount_sat=st.integers(1, 60_000))
    def deposit(self, data: st.DataObject, amount_sat: int) -> None:
        self._deposit(data.draw(st.sampled_from(self._users("lender"))), amount_sat)

    def _deposit(self, lender: int, amount_sat: int) -> None:
        def work() -> None:
            row = anyio.run(create_deposit_invoice, self.database, self.port, self.settings, lender,
                            amount_sat * SAT)
            assert row.bolt11 is not None
            self._pay_from_wallet(row.bolt11)
            assert self._credit_by_sweep() == 1

        self._step(work)
        self.net_in += amount_sat * SAT
        self.available[lender] += amount_sat * SAT
        self._happen("deposit")

    @precondition(lambda self: sum(m.status == "funding" for m in self.loans.values()) < 2)
    @rule(amount_sat=st.sampled_from([10_000, 12_000, 20_000, 30_000]), count=st.integers(1, 4),
          frequency=st.sampled_from([Frequency.DAILY, Frequency.WEEKLY]), defaulter=st.booleans())
    def request_loan(self, amount_sat: int, count: int, frequency: Frequency, defaulter: bool) -> None:
        """A new request, by a borrower who defaulted before (refused: borrowing is frozen) if `defaulter` and
        there is one."""
        self._request_loan(amount_sat, count, frequency, defaulter)

    def _request_loan(self, amount_sat: int, count: int, frequency: Frequency, defaulter: bool = False) -> int | None:
        # A borrower with no open loan (one open loan each is a rule of its own), a new one if need be.
        busy = {m.borrower for m in self.loans.values() if m.status in ("funding", "funded", "active")}
        defaulted = {m.borrower for m in self.loans.values()
                     if m.status == "written_off" or m.delinquency == "defaulted"}
        free = [b for b in self._users("borrower") if b not in busy and (b in defaulted) == defaulter]
        if defaulter and not free:
            return None
        if not free:
            self.sign_up("borrower")
            free = [max(self._users("borrower"))]
        borrower = free[0]
        terms = LoanTerms(amount_sat * SAT, 2400, count, frequency, Method.ANNUITY)
        try:
            loan_id = self._step(lambda: loan_service.request_loan(
                self.database, self.settings, borrower, terms, "farming", "Seeds and a water pump for the season."))
        except Refusal as refusal:
            assert refusal.status in (409, 422), refusal  # a limit on the borrower's record: a clear refusal
            self._happen(f"loan refused: {refusal.message[:60]}")
            return None
        self._happen("loan requested")
        self.loans[loan_id] = ModelLoan(borrower, amount_sat * SAT)
        return int(loan_id)

    @precondition(lambda self: any(m.status == "funding" for m in self.loans.values()))
    @rule(data=st.data(), how=st.sampled_from(["rest", "all I can", "all I can", "half", "any"]),
          amount_sat=st.integers(1, 40_000))
    def pledge(self, data: st.DataObject, how: str, amount_sat: int) -> None:
        """The rest of the request, as much of it as the lender has, half of it, or any amount (often one the
        rules refuse)."""
        loan_id = data.draw(st.sampled_from(sorted(k for k, m in self.loans.items() if m.status == "funding")))
        lender = data.draw(st.sampled_from(self._users("lender")))
        model = self.loans[loan_id]
        remaining = model.amount - model.funded(self.notes)
        amount = {"rest": remaining, "all I can": min(remaining, self.available[lender] // SAT * SAT),
                  "half": remaining // 2 // SAT * SAT, "any": amount_sat * SAT}[how]
        self._pledge(lender, loan_id, amount)

    def _pledge(self, lender: int, loan_id: int, amount: int) -> bool:
        """One pledge through the service, the model deciding beforehand whether it must be taken."""
        model = self.loans[loan_id]
        remaining = model.amount - model.funded(self.notes)
        allowed = (model.days_aged < self.settings.funding_days and 0 < amount <= remaining
                   and (amount >= NOTE_MIN_SAT * SAT or amount == remaining) and amount <= self.available[lender])
        try:
            note_id = self._step(lambda: loan_service.pledge(self.database, self.settings, lender, loan_id, amount))
        except Refusal as refusal:
            assert not allowed, f"a pledge the rules allow was refused: {refusal.message}"
            assert refusal.status in (409, 422) and refusal.message
            self._happen("pledge refused")
            return False
        self._happen("pledge")
        assert allowed, f"a pledge of {amount} msat was taken: remaining {remaining}, available " \
                        f"{self.available[lender]}"
        self.notes[note_id] = ModelNote(lender, loan_id, amount, "pledged")
        model.notes.append(note_id)
        self.available[lender] -= amount
        self.reserved[lender] += amount
        if model.funded(self.notes) == model.amount:
            model.status = "funded"
        return True

    @precondition(lambda self: any(n.status == "pledged" and self.loans[n.loan].status == "funding"
                                   for n in self.notes.values()))
    @rule(data=st.data())
    def withdraw_pledge(self, data: st.DataObject) -> None:
        note_id = data.draw(st.sampled_from(sorted(
            k for k, n in self.notes.items() if n.status == "pledged" and self.loans[n.loan].status == "funding")))
        note = self.notes[note_id]
        self._step(lambda: loan_service.withdraw_pledge(self.database, note.lender, note_id))
        note.status = "released"
        self.available[note.lender] += note.amount
        self.reserved[note.lender] -= note.amount
        self._happen("pledge withdrawn")

    @precondition(lambda self: any(m.status == "funded" for m in self.loans.values()))
    @rule(data=st.data())
    def disburse(self, data: st.DataObject) -> None:
        self._disburse(data.draw(st.sampled_from(sorted(k for k, m in self.loans.items() if m.status == "funded"))))

    def _disburse(self, loan_id: int) -> None:
        model = self.loans[loan_id]
        bolt11 = self._wallet_invoice(model.amount)
        row = self._step(lambda: anyio.run(loan_service.disburse, self.database, self.port, self.facts,
                                           self.settings, model.borrower, loan_id, bolt11))
        assert row.status == "succeeded", row
        self.net_in -= model.amount
        self._happen("disbursed")
        self._happen(f"disbursed with {min(len([n for n in model.notes if self.notes[n].status == 'pledged']), 3)}"
                     "+ notes")
        model.status = "active"
        for note_id in model.notes:
            note = self.notes[note_id]
            if note.status == "pledged":
                note.status = "active"
                self.reserved[note.lender] -= note.amount

    @precondition(lambda self: any(m.status in ("active", "written_off") for m in self.loans.values()))
    @rule(data=st.data(), share=st.sampled_from([0, 1, 10, 33, 50, 99, 100]), exact_due=st.booleans())
    def repay(self, data: st.DataObject, share: int, exact_due: bool) -> None:
        """Any amount from 1 msat to the whole payoff (or just the next due amount)."""
        self._repay(data.draw(st.sampled_from(sorted(
            k for k, m in self.loans.items() if m.status in ("active", "written_off")))), share, exact_due)

    @precondition(lambda self: any(m.status == "active" for m in self.loans.values()))
    @rule(data=st.data())
    def pay_installment(self, data: st.DataObject) -> None:
        """The borrower pays what is due next (a rule of its own, so that a running loan is often paid on)."""
        self._repay(data.draw(st.sampled_from(sorted(k for k, m in self.loans.items() if m.status == "active"))),
                    100, True)

    @precondition(lambda self: any(m.status == "written_off" for m in self.loans.values()))
    @rule(data=st.data(), share=st.sampled_from([1, 33, 100]), exact_due=st.booleans())
    def recover(self, data: st.DataObject, share: int, exact_due: bool) -> None:
        """A borrower pays on a written-off loan: the recovery goes to the note holders like any repayment."""
        self._repay(data.draw(st.sampled_from(sorted(
            k for k, m in self.loans.items() if m.status == "written_off"))), share, exact_due)

    def _repay(self, loan_id: int, share: int, exact_due: bool) -> None:
        model = self.loans[loan_id]
        payoff, before, escrow_before = self.database.read(
            lambda c: (_payoff(c, loan_id), _note_received(c, loan_id), _escrow(c, loan_id)))
        if payoff == 0:
            return
        amount = None if exact_due else max(1, payoff * share // 100)
        status_before, delinquency_before = model.status, model.delinquency

        def work() -> Any:
            row = anyio.run(lambda: loan_service.repayment_invoice(self.database, self.port, self.settings,
                                                                   model.borrower, loan_id, amount))
            assert row.bolt11 is not None
            self._pay_from_wallet(row.bolt11)
            assert self._credit_by_sweep() == 1
            return row

        row = self._step(work)

        def after(c: Connection) -> tuple[Any, dict[int, int], int, str]:
            paid = c.execute(select(repayments).where(repayments.c.payment_hash == row.payment_hash)).one()
            status = str(c.execute(select(loans.c.status).where(loans.c.id == loan_id)).scalar_one())
            return paid, _note_received(c, loan_id), _escrow(c, loan_id), status

        paid, received, escrow_after, model.status = self.database.read(after)
        assert paid.received_msat == row.amount_msat
        self.net_in += row.amount_msat
        assert paid.applied_msat + paid.refund_msat == paid.received_msat
        got = {note_id: received[note_id] - before.get(note_id, 0) for note_id in received}
        # The lenders' part is paid out to the notes but for the msats rounding leaves over, which the loan's
        # escrow holds until the loan closes (then the notes with the largest remainders get them).
        held = escrow_after - escrow_before
        assert sum(got.values()) + held + paid.service_fee_msat == paid.applied_msat
        for note_id, cash in got.items():
            assert cash >= 0
            self.available[self.notes[note_id].lender] += cash
        self.available[model.borrower] += paid.refund_msat
        if status_before == "written_off":
            self._happen("repayment of a written-off loan")
        elif delinquency_before == "defaulted":
            self._happen("repayment of a defaulted loan")
        elif delinquency_before in ("grace", "late"):
            self._happen("repayment of a late loan")
        self._happen("repaid in full" if model.status == "repaid" else "repayment")
        self._happen("repaid (any amount)")

    @rule()
    def age_a_day(self) -> None:
        """A day passes and the daily job runs."""
        self._age(1)
        self._happen("aged a day")

    @precondition(lambda self: any(m.status in ("funding", "funded", "active") for m in self.loans.values()))
    @rule(days=st.sampled_from([2, 3, 7, 14]))
    def age(self, days: int) -> None:
        """Several days pass at once while a loan is open."""
        self._age(days)
        self._happen("aged days")

    @precondition(lambda self: any(m.status == "active" for m in self.loans.values()))
    @rule(days=st.sampled_from([14, 21, 30]))
    def age_weeks(self, days: int) -> None:
        """Weeks pass while a loan runs: late, defaulted or written off within a short sequence (unless it is
        repaid first)."""
        self._age(days)
        self._happen("aged weeks")

    def _age(self, days: int) -> None:
        """Days pass (every loan date moves into the past) and the daily job runs: expiry, lapse, late fees,
        default, write-off."""
        for model in self.loans.values():
            model.days_aged += days
        running = [k for k, m in self.loans.items() if m.status == "active"]
        before = self.database.read(lambda c: {k: (_note_received(c, k), _escrow(c, k)) for k in running})

        def work() -> None:
            self.database.run(lambda c: _shift_dates(c, days))
            loan_service.age_loans(self.database, self.settings)

        self._step(work)
        # A write-off pays the msats its escrow held to the notes with the largest remainders (issue 18).
        after = self.database.read(lambda c: {k: (_note_received(c, k), _escrow(c, k), str(c.execute(
            select(loans.c.status).where(loans.c.id == k)).scalar_one())) for k in running})
        for loan_id, (received, escrow, status) in after.items():
            if status != "written_off":
                continue
            got = {n: received[n] - before[loan_id][0].get(n, 0) for n in received}
            assert escrow == 0 and sum(got.values()) == before[loan_id][1], (loan_id, got, escrow)
            assert all(0 <= one <= 1 for one in got.values()), got
            for note_id, one in got.items():
                self.available[self.notes[note_id].lender] += one
            if before[loan_id][1]:
                self._happen("remainders paid at a write-off")
        self._sync_loan_statuses()

    @precondition(lambda self: any(a >= 2 * SAT for a in self.available.values()))
    @rule(data=st.data(), share=st.sampled_from([1, 50, 100]))
    def withdraw(self, data: st.DataObject, share: int) -> None:
        user = data.draw(st.sampled_from(sorted(u for u, a in self.available.items() if a >= 2 * SAT)))
        amount = self.available[user] * share // 100 // SAT * SAT
        while amount >= SAT and amount + self._reserve(amount) > self.available[user]:
            amount -= SAT
        if amount < SAT:
            return
        bolt11 = self._wallet_invoice(amount)
        row = self._step(lambda: anyio.run(withdraw, self.database, self.port, self.facts, self.settings, user,
                                           bolt11, None))
        assert row.status == "succeeded", row
        self._happen("withdrawal")
        self.net_in -= amount
        self.available[user] -= amount + (row.fee_msat or 0)

    @precondition(lambda self: any(m.status == "funding" for m in self.loans.values()))
    @rule(data=st.data(), budget_sat=st.integers(0, 40_000), all_of_it=st.booleans(), note_units=st.integers(1, 5))
    def auto_invest(self, data: st.DataObject, budget_sat: int, all_of_it: bool, note_units: int) -> None:
        """A lender's rules (sometimes new), then one engine run: what it buys moves like a hand-bought note.
        The budget is all the lender has, or a drawn amount up to that."""
        self._save_rules(data.draw(st.sampled_from(self._users("lender"))), budget_sat, all_of_it, note_units)
        self._run_autoinvest()

    @precondition(lambda self: self.robots and any(m.status == "funding" for m in self.loans.values()))
    @rule()
    def run_autoinvest(self) -> None:
        """The background run alone, with the rules lenders saved before (a request, a deposit or a repayment
        since then asked for it)."""
        self._run_autoinvest()

    def _save_rules(self, lender: int, budget_sat: int, all_of_it: bool, note_units: int) -> None:
        budget_msat = self.available[lender] if all_of_it else min(budget_sat * SAT, self.available[lender])
        rules = Rules(enabled=True, budget_msat=budget_msat // SAT * SAT,
                      note_msat=note_units * NOTE_MIN_SAT * SAT, max_per_loan_msat=5 * NOTE_MIN_SAT * SAT,
                      max_per_loan_bps=10_000, max_expected_loss_bps=10_000, max_term_days=365)
        try:
            self._step(lambda: autoinvest.save_rules(self.database, self.settings, lender, rules))
        except Refusal as refusal:
            assert refusal.status == 422 and refusal.message
            return
        self.robots.add(lender)

    def _run_autoinvest(self) -> None:
        known = set(self.notes)
        report = self._step(lambda: autoinvest.run_autoinvest(self.database, self.settings))
        bought = self.database.read(lambda c: c.execute(
            select(autoinvest_orders.c.note_id, autoinvest_orders.c.lender_id, autoinvest_orders.c.loan_id,
                   autoinvest_orders.c.amount_msat)
            .where(autoinvest_orders.c.run_id == report.run_id, autoinvest_orders.c.status == "bought")).all()) \
            if report.run_id is not None else []
        assert len(bought) == report.bought
        self._happen("auto-invest bought" if bought else "auto-invest bought nothing")
        self._happen("auto-invest notes", len(bought))
        for note_id, robot, loan_id, amount in bought:
            assert int(note_id) not in known
            assert int(robot) in self.robots, f"auto-invest bought for lender {robot}, who saved no rules"
            model = self.loans[int(loan_id)]
            assert model.status == "funding" and amount <= model.amount - model.funded(self.notes)
            assert amount <= self.available[int(robot)]
            self.notes[int(note_id)] = ModelNote(int(robot), int(loan_id), int(amount), "pledged")
            model.notes.append(int(note_id))
            self.available[int(robot)] -= int(amount)
            self.reserved[int(robot)] += int(amount)
            if model.funded(self.notes) == model.amount:
                model.status = "funded"

    # --- invariants -------------------------------------------------------------------------------------------

    @invariant()
    def books_loans_and_model_hold(self) -> None:
        """Every rule of the books, every loan against its repayments, and the model against the ledger,
        read in one transaction (one consistent view, one round trip fewer per check)."""
        problems = self.database.read(self._problems)
        assert problems == [], problems

    def _problems(self, conn: Connection) -> list[str]:
        problems = _book_problems(conn)
        ledger_view: dict[int, dict[str, int]] = {u: {} for u in self.roles}
        for user_id, kind, balance in conn.execute(
                select(accounts.c.user_id, accounts.c.kind, accounts.c.balance_msat)
                .where(accounts.c.user_id.is_not(None))):
            ledger_view.setdefault(int(user_id), {})[str(kind)] = int(balance)
        for user, kinds in ledger_view.items():
            found = tuple(kinds.get(k, 0) for k in USER_KINDS)
            expected = (self.available.get(user, 0), self.reserved.get(user, 0), 0)
            if found != expected:
                problems.append(f"user {user}: the ledger holds {found} (available, reserved, pending out), "
                                f"the model {expected}")
        rows = {int(r.id): r for r in conn.execute(select(loans.c.id, loans.c.status, loans.c.funded_msat,
                                                          loans.c.amount_msat))}
        for loan_id, model in self.loans.items():
            row = rows[loan_id]
            if row.status != model.status:
                problems.append(f"loan {loan_id}: {row.status} in the database, {model.status} in the model")
            elif model.status in ("funding", "funded") and not row.funded_msat == model.funded(self.notes) \
                    <= row.amount_msat:
                problems.append(f"loan {loan_id}: funded {row.funded_msat} in the database, "
                                f"{model.funded(self.notes)} in the model, of {row.amount_msat}")
        return problems


def _escrow(conn: Connection, loan_id: int) -> int:
    return int(conn.execute(
        select(accounts.c.balance_msat).select_from(loans.join(accounts, accounts.c.id == loans.c.escrow_account_id))
        .where(loans.c.id == loan_id)).scalar_one())


def _note_received(conn: Connection, loan_id: int) -> dict[int, int]:
    return {int(r.id): int(r.received_msat) for r in conn.execute(
        select(notes.c.id, notes.c.received_msat).where(notes.c.loan_id == loan_id)).all()}


def _payoff(conn: Connection, loan_id: int) -> int:
    from marketplace.db import loans as loan_rows

    loan = loan_rows.get_loan(conn, loan_id)
    state = loan_rows.loan_states(conn, [loan]).get(loan_id)
    return 0 if state is None else state.payoff_msat(loan_service.utc_today())


def _shift_dates(conn: Connection, days: int) -> None:
    back = timedelta(days=days)
    # Row by row in Python: date arithmetic in SQL is not portable between SQLite and PostgreSQL.
    for row in conn.execute(select(loans.c.id, *(loans.c[c] for c in LOAN_DATE_COLUMNS))).all():
        moved = {c: getattr(row, c) - back for c in LOAN_DATE_COLUMNS if getattr(row, c) is not None}
        if moved:
            conn.execute(update(loans).where(loans.c.id == row.id).values(moved))
    for row in conn.execute(select(installments.c.id, installments.c.due_date, installments.c.settled_on)).all():
        conn.execute(update(installments).where(installments.c.id == row.id).values(
            due_date=row.due_date - back, settled_on=None if row.settled_on is None else row.settled_on - back))


def _book_problems(conn: Connection) -> list[str]:
    """Every rule the books must keep after any step; the problems found (none, when all is well)."""
    problems: list[str] = []
    report = verify_ledger(conn)
    if not report.ok:
        problems.append(f"ledger verify: {report.summary()}")
    unbalanced = conn.execute(select(journal_lines.c.entry_id).group_by(journal_lines.c.entry_id)
                              .having(func.sum(journal_lines.c.amount_msat) != 0)).scalars().all()
    if unbalanced:
        problems.append(f"unbalanced entries: {list(unbalanced)}")
    lines = int(conn.execute(select(func.count(func.distinct(journal_lines.c.entry_id)))).scalar_one())
    entries = int(conn.execute(select(func.count()).select_from(journal_entries)).scalar_one())
    if lines != entries:
        problems.append(f"{entries} entries but {lines} with lines")
    total = 0
    for side, balance, user_id, code in conn.execute(
            select(accounts.c.normal_side, accounts.c.balance_msat, accounts.c.user_id, accounts.c.code)):
        total += int(balance) if side == NormalSide.DEBIT.value else -int(balance)
        if user_id is not None and int(balance) < 0:
            problems.append(f"{code} is negative: {balance}")
    if total != 0:
        problems.append(f"the balances sum to {total}, not 0")
    problems += _loan_problems(conn)
    return problems


def _loan_problems(conn: Connection) -> list[str]:
    """Each loan's notes and installments against its repayments, and its notes against its funding."""
    problems = []
    paid = {int(r.loan_id): r for r in conn.execute(
        select(repayments.c.loan_id, func.sum(repayments.c.principal_msat).label("principal"),
               func.sum(repayments.c.interest_msat).label("interest"),
               func.sum(repayments.c.late_fee_msat).label("late_fee"),
               func.sum(repayments.c.applied_msat - repayments.c.service_fee_msat).label("to_lenders"))
        .group_by(repayments.c.loan_id))}
    on_installments = {int(r.loan_id): r for r in conn.execute(
        select(installments.c.loan_id, func.sum(installments.c.principal_paid_msat).label("principal"),
               func.sum(installments.c.interest_paid_msat).label("interest"),
               func.sum(installments.c.late_fee_paid_msat).label("late_fee"),
               func.sum(installments.c.principal_msat).label("scheduled"))
        .group_by(installments.c.loan_id))}
    escrow = {int(r.id): int(r.balance_msat) for r in conn.execute(
        select(loans.c.id, accounts.c.balance_msat).select_from(
            loans.join(accounts, accounts.c.id == loans.c.escrow_account_id)))}
    held = {int(r.loan_id): r for r in conn.execute(
        select(notes.c.loan_id, func.sum(notes.c.amount_msat).label("amount"),
               func.sum(notes.c.principal_repaid_msat).label("principal"),
               func.sum(notes.c.received_msat).label("received"),
               func.sum(notes.c.principal_outstanding_msat).label("outstanding"), func.count().label("holders"))
        .where(notes.c.status != "released").group_by(notes.c.loan_id))}
    for loan in conn.execute(select(loans)).all():
        i = int(loan.id)
        r, inst, n = paid.get(i), on_installments.get(i), held.get(i)
        principal = int(r.principal) if r else 0
        if loan.status in ("funding", "funded", "active", "repaid", "written_off"):
            if (int(n.amount) if n else 0) != loan.funded_msat:
                problems.append(f"loan {i}: notes {n.amount if n else 0} != funded {loan.funded_msat}")
        if inst is not None:
            # Interest and late fees are paid on installments only; principal paid ahead of the schedule
            # (a prepayment: the term shrinks) leaves the installments it replaces, so what no installment
            # carries any more is exactly the principal repaid beyond what the installments record.
            if (int(inst.interest), int(inst.late_fee)) != (int(r.interest) if r else 0, int(r.late_fee) if r else 0):
                problems.append(f"loan {i}: installments paid {tuple(int(x) for x in tuple(inst)[1:4])} != "
                                f"repayments {tuple(int(x) for x in tuple(r or ())[1:4])}")
            prepaid = principal - int(inst.principal)
            if prepaid < 0 or loan.amount_msat - int(inst.scheduled) != prepaid:
                problems.append(f"loan {i}: installments carry {inst.scheduled} principal of {loan.amount_msat} "
                                f"and record {inst.principal} of the {principal} repaid")
        if loan.status in ("active", "repaid", "written_off") and n is not None:
            # Each note holds its exact part rounded down; the leftover msats (fewer than the notes) reach
            # the notes when the loan closes.
            short = principal - int(n.principal)
            if not 0 <= short < max(1, int(n.holders)) or (loan.status == "repaid" and short != 0):
                problems.append(f"loan {i}: notes repaid {n.principal} of the repayments' principal {principal}")
            to_lenders = int(r.to_lenders) if r else 0
            if int(n.received) + escrow[i] != to_lenders:
                problems.append(f"loan {i}: notes received {n.received} + held {escrow[i]} != lenders' part "
                                f"{to_lenders}")
            if loan.status == "repaid" and escrow[i] != 0:
                problems.append(f"loan {i}: repaid, yet its escrow still holds {escrow[i]}")
            if loan.status == "active" and int(n.outstanding) != loan.amount_msat - principal + short:
                problems.append(f"loan {i}: notes outstanding {n.outstanding} != {loan.amount_msat - principal}")
            if loan.shared_cash_msat != to_lenders:
                problems.append(f"loan {i}: shared cash {loan.shared_cash_msat} != lenders' part {to_lenders}")
    return problems
