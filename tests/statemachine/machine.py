"""The service layer as a state machine (issue 12, part 3), with a plain model of every user's money beside it.

Each rule calls the service function a web handler calls (sign-up, deposit
invoices, pledges, disbursement, repayment invoices, the aging job,
withdrawals, auto-invest) on a fresh, migrated database and the real dev node:
deposits and repayments are real invoices of the marketplace node paid by the
wallet node and credited through the listener's own path (its sweep), and
withdrawals and disbursements are real payments to wallet-node invoices.

The model knows only the rules a person can read (what a note may be, what a
withdrawal costs, that a pledge reserves money and a disbursement spends it);
it predicts whether a pledge must be accepted and what every balance is. Time
moves by shifting every date of the loans a day (or several) into the past and
running the daily aging job: a day passes for the loans exactly as on a moved
clock. Delinquency is shortened (grace 2 days, default at 6, write-off at 12) so
defaults and write-offs happen within a short sequence.

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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import anyio
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import Connection, func, select, update

from lightning.cln import ClnAdapter
from marketplace.db import ledger
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
from marketplace.domain.payments import fee_reserve_msat
from marketplace.domain.loans.schedules import Frequency, Method
from marketplace.domain.loans.terms import LoanTerms
from marketplace.services import accounts as account_service
from marketplace.services import autoinvest
from marketplace.services import loans as loan_service
from marketplace.services.deposits import create_deposit_invoice
from marketplace.services.lightning_calls import NodeFacts
from marketplace.services.withdrawals import withdraw
from marketplace.settings import Settings
from marketplace.workers import payment_locks as payment_locks_module
from marketplace.workers.listener import PaymentListener

SAT = 1000
NOTE_MIN_SAT = 1_000
LOAN_DATE_COLUMNS = ("funding_deadline", "funded_at", "disbursed_at", "start_date", "defaulted_on", "closed_on",
                     "disburse_by", "accrued_on")
_labels = itertools.count()


class Templates(Protocol):
    def new_url(self) -> str: ...

    def drop(self, url: str) -> None: ...


@dataclass
class World:
    """What every sequence shares: a database template, the dev node's two sockets, the settings and a tally."""

    templates: Templates
    marketplace_rpc: str
    wallet_rpc: str
    data_dir: Path
    sequences: int = 0
    steps: int = 0
    seconds_in_steps: float = 0.0
    happened: Counter[str] = field(default_factory=Counter)  # what the sequences reached: coverage, not a check

    def settings(self, database_url: str) -> Settings:
        return Settings(
            mode="embedded", data_dir=self.data_dir, devnode_dir=self.data_dir / "devnode",
            database_url=database_url, secret_key="state-machine-secret", argon2_time_cost=1,
            argon2_memory_kib=8192, signup_per_address=1_000_000, cln_rpc=self.marketplace_rpc,
            invoice_limit_count=1_000_000, invoice_unpaid_per_address=1_000_000,
            grace_days=2, default_after_days=6, write_off_after_days=12, funding_days=10, disbursement_days=3)


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
    notes: list[int] = field(default_factory=list)
    days_aged: int = 0  # the funding deadline is `funding_days` after the request

    def funded(self, model_notes: dict[int, ModelNote]) -> int:
        return sum(model_notes[n].amount for n in self.notes if model_notes[n].status != "released")


class ServiceMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        assert WORLD is not None, "set machine.WORLD first"
        self.world = WORLD
        self.url = self.world.templates.new_url()
        self.database = Database(self.url)
        self.settings = self.world.settings(self.url)
        self.port = ClnAdapter(self.world.marketplace_rpc)
        self.wallet = ClnAdapter(self.world.wallet_rpc)
        self.facts = NodeFacts(self.port)
        self.listener = PaymentListener(self.database, self.port)
        self.available: dict[int, int] = {}
        self.reserved: dict[int, int] = {}
        self.roles: dict[int, str] = {}
        self.notes: dict[int, ModelNote] = {}
        self.loans: dict[int, ModelLoan] = {}
        self.robots: set[int] = set()
        self.net_in = 0  # what came from the wallet node into the marketplace's node, less what went back
        self.world.sequences += 1

    def teardown(self) -> None:
        # The dev node keeps channel balances: give the wallet back what this sequence took, or a long run
        # drains it and every later payment fails for want of a route.
        if self.net_in > 0:
            try:
                anyio.run(self.port.pay, self._wallet_invoice(self.net_in), None, 100_000, 30)
            except Exception:  # a refill that fails must not hide the sequence's own outcome
                pass
        locks = payment_locks_module._BY_URL.pop(self.database.url, None)
        if locks is not None:
            locks._close_backends()
        self.database.dispose()
        self.world.templates.drop(self.url)

    # --- helpers ----------------------------------------------------------------------------------------------

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
        for loan_id, model in self.loans.items():
            status = self._loan_status(loan_id)
            if status in ("expired", "lapsed") and model.status in ("funding", "funded"):
                for note_id in model.notes:
                    note = self.notes[note_id]
                    if note.status == "pledged":
                        note.status = "released"
                        self.reserved[note.lender] -= note.amount
                        self.available[note.lender] += note.amount
            if status != model.status:
                self.world.happened[f"aged to {status}"] += 1
            model.status = status
        delinquent = self.database.read(lambda c: c.execute(select(loans.c.delinquency, func.count())
                                                           .group_by(loans.c.delinquency)).all())
        for state, n in delinquent:
            if state != "current":
                self.world.happened[f"loans {state} after aging"] += int(n)

    # --- rules ------------------------------------------------------------------------------------------------

    @initialize(deposit_sat=st.sampled_from([8_000, 20_000, 50_000]), loan_sat=st.sampled_from([10_000, 20_000]))
    def start(self, deposit_sat: int, loan_sat: int) -> None:
        """Two lenders with money and a borrower with a request: the interesting steps are reachable at once."""
        for role in ("lender", "lender", "borrower"):
            self.sign_up(role)
        for lender in self._users("lender"):
            self._deposit(lender, deposit_sat)
        self.request_loan(loan_sat, 2, Frequency.WEEKLY)

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

    @precondition(lambda self: sum(m.status == "funding" for m in self.loans.values()) < 2)
    @rule(amount_sat=st.sampled_from([10_000, 12_000, 20_000, 30_000]), count=st.integers(1, 4),
          frequency=st.sampled_from([Frequency.DAILY, Frequency.WEEKLY]))
    def request_loan(self, amount_sat: int, count: int, frequency: Frequency) -> None:
        # A borrower with no open loan (one open loan each is a rule of its own), a new one if need be.
        busy = {m.borrower for m in self.loans.values() if m.status in ("funding", "funded", "active")}
        free = [b for b in self._users("borrower") if b not in busy]
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
            self.world.happened[f"loan refused: {refusal.message[:60]}"] += 1
            return
        self.world.happened["loan requested"] += 1
        self.loans[loan_id] = ModelLoan(borrower, amount_sat * SAT)

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
        allowed = (model.days_aged < self.settings.funding_days and 0 < amount <= remaining and (amount >= NOTE_MIN_SAT * SAT or amount == remaining)
                   and amount <= self.available[lender])
        try:
            note_id = self._step(lambda: loan_service.pledge(self.database, self.settings, lender, loan_id, amount))
        except Refusal as refusal:
            assert not allowed, f"a pledge the rules allow was refused: {refusal.message}"
            assert refusal.status in (409, 422) and refusal.message
            self.world.happened["pledge refused"] += 1
            return
        self.world.happened["pledge"] += 1
        assert allowed, f"a pledge of {amount} msat was taken: remaining {remaining}, available " \
                        f"{self.available[lender]}"
        self.notes[note_id] = ModelNote(lender, loan_id, amount, "pledged")
        model.notes.append(note_id)
        self.available[lender] -= amount
        self.reserved[lender] += amount
        if model.funded(self.notes) == model.amount:
            model.status = "funded"

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

    @precondition(lambda self: any(m.status == "funded" for m in self.loans.values()))
    @rule(data=st.data())
    def disburse(self, data: st.DataObject) -> None:
        loan_id = data.draw(st.sampled_from(sorted(k for k, m in self.loans.items() if m.status == "funded")))
        model = self.loans[loan_id]
        bolt11 = self._wallet_invoice(model.amount)
        row = self._step(lambda: anyio.run(loan_service.disburse, self.database, self.port, self.facts,
                                           self.settings, model.borrower, loan_id, bolt11))
        assert row.status == "succeeded", row
        self.net_in -= model.amount
        self.world.happened["disbursed"] += 1
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
        loan_id = data.draw(st.sampled_from(sorted(
            k for k, m in self.loans.items() if m.status in ("active", "written_off"))))
        model = self.loans[loan_id]
        payoff = self.database.read(lambda c: _payoff(c, loan_id))
        if payoff == 0:
            return
        amount = None if exact_due else max(1, payoff * share // 100)
        before, escrow_before = self._note_received(loan_id), self._escrow(loan_id)

        def work() -> Any:
            row = anyio.run(lambda: loan_service.repayment_invoice(self.database, self.port, self.settings,
                                                                   model.borrower, loan_id, amount))
            assert row.bolt11 is not None
            self._pay_from_wallet(row.bolt11)
            assert self._credit_by_sweep() == 1
            return row

        row = self._step(work)
        paid = self.database.read(lambda c: c.execute(select(repayments)
                                                      .where(repayments.c.payment_hash == row.payment_hash)).one())
        assert paid.received_msat == row.amount_msat
        self.net_in += row.amount_msat
        assert paid.applied_msat + paid.refund_msat == paid.received_msat
        after = self._note_received(loan_id)
        got = {note_id: after[note_id] - before.get(note_id, 0) for note_id in after}
        # The lenders' part is paid out to the notes but for the msats rounding leaves over, which the loan's
        # escrow holds until the loan closes (then the notes with the largest remainders get them).
        held = self._escrow(loan_id) - escrow_before
        assert sum(got.values()) + held + paid.service_fee_msat == paid.applied_msat
        for note_id, cash in got.items():
            assert cash >= 0
            self.available[self.notes[note_id].lender] += cash
        self.available[model.borrower] += paid.refund_msat
        model.status = self._loan_status(loan_id)
        self.world.happened["repaid in full" if model.status == "repaid" else "repayment"] += 1

    def _escrow(self, loan_id: int) -> int:
        return int(self.database.read(lambda c: c.execute(
            select(accounts.c.balance_msat).select_from(loans.join(accounts, accounts.c.id == loans.c.escrow_account_id))
            .where(loans.c.id == loan_id)).scalar_one()))

    def _note_received(self, loan_id: int) -> dict[int, int]:
        return {int(r.id): int(r.received_msat) for r in self.database.read(lambda c: c.execute(
            select(notes.c.id, notes.c.received_msat).where(notes.c.loan_id == loan_id)).all())}

    @rule(days=st.sampled_from([1, 1, 1, 2, 3, 7, 14]))
    def age(self, days: int) -> None:
        """Days pass (every loan date moves into the past) and the daily job runs: expiry, lapse, late fees,
        default, write-off."""
        for model in self.loans.values():
            model.days_aged += days

        def work() -> None:
            self.database.run(lambda c: _shift_dates(c, days))
            loan_service.age_loans(self.database, self.settings)

        self._step(work)
        self._sync_loan_statuses()

    @rule(data=st.data(), share=st.sampled_from([1, 50, 100]))
    def withdraw(self, data: st.DataObject, share: int) -> None:
        user = data.draw(st.sampled_from(sorted(self.roles)))
        amount = self.available[user] * share // 100 // SAT * SAT
        while amount >= SAT and amount + self._reserve(amount) > self.available[user]:
            amount -= SAT
        if amount < SAT:
            return
        bolt11 = self._wallet_invoice(amount)
        row = self._step(lambda: anyio.run(withdraw, self.database, self.port, self.facts, self.settings, user,
                                           bolt11, None))
        assert row.status == "succeeded", row
        self.world.happened["withdrawal"] += 1
        self.net_in -= amount
        self.available[user] -= amount + (row.fee_msat or 0)

    @rule(data=st.data(), budget_sat=st.integers(0, 40_000), note_units=st.integers(1, 5))
    def auto_invest(self, data: st.DataObject, budget_sat: int, note_units: int) -> None:
        """A lender's rules (sometimes new), then one engine run: what it buys moves like a hand-bought note."""
        lender = data.draw(st.sampled_from(self._users("lender")))
        rules = Rules(enabled=True, budget_msat=min(budget_sat * SAT, self.available[lender]) // SAT * SAT,
                      note_msat=note_units * NOTE_MIN_SAT * SAT, max_per_loan_msat=5 * NOTE_MIN_SAT * SAT,
                      max_per_loan_bps=10_000, max_expected_loss_bps=10_000, max_term_days=365)
        try:
            autoinvest.save_rules(self.database, self.settings, lender, rules)
        except Refusal as refusal:
            assert refusal.status == 422 and refusal.message
        known = set(self.notes)
        report = self._step(lambda: autoinvest.run_autoinvest(self.database, self.settings))
        bought = self.database.read(lambda c: c.execute(
            select(autoinvest_orders.c.note_id, autoinvest_orders.c.lender_id, autoinvest_orders.c.loan_id,
                   autoinvest_orders.c.amount_msat)
            .where(autoinvest_orders.c.run_id == report.run_id, autoinvest_orders.c.status == "bought")).all()) \
            if report.run_id is not None else []
        assert len(bought) == report.bought
        self.world.happened["auto-invest notes"] += len(bought)
        for note_id, robot, loan_id, amount in bought:
            assert int(note_id) not in known
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
    def books_hold(self) -> None:
        problems = self.database.read(_book_problems)
        assert problems == [], problems

    @invariant()
    def model_matches_ledger(self) -> None:
        found = self.database.read(lambda c: {u: ledger.user_balances(c, u) for u in self.roles})
        for user, kinds in found.items():
            ledger_view = (kinds.get(AccountKind.USER_AVAILABLE, 0), kinds.get(AccountKind.USER_RESERVED, 0),
                           kinds.get(AccountKind.USER_PENDING_OUT, 0))
            assert ledger_view == (self.available[user], self.reserved[user], 0), (user, ledger_view)

    @invariant()
    def loans_match_model(self) -> None:
        rows = self.database.read(lambda c: {int(r.id): r for r in c.execute(select(loans))})
        for loan_id, model in self.loans.items():
            row = rows[loan_id]
            assert row.status == model.status, (loan_id, row.status, model.status)
            if model.status in ("funding", "funded"):
                assert row.funded_msat == model.funded(self.notes) <= row.amount_msat


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
                problems.append(f"loan {i}: installments paid {tuple(inst)[1:4]} != repayments {tuple(r or ())}")
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
